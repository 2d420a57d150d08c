"""Lineages order states across stores and modes; state.import and state.seal follow them."""

from __future__ import annotations

import json

from ringrift_cluster.state import StateMachine, commands as c
from ringrift_cluster.state.lineage import Lineage, Relation, newest, relation
from ringrift_cluster.store.reconcile import Report, choose, seal_term


def run(machine: StateMachine, cmd: dict, now: float = 10.0) -> dict:
    return machine.apply(json.loads(json.dumps(c.stamp(cmd, now))))


def L(*seals: tuple[str, int], changes: int = 0) -> Lineage:
    return Lineage(tuple(seals), changes)


A, B, C = ("a", 0), ("b", 5), ("c", 5)


def test_relations() -> None:
    assert relation(L(A, changes=3), L(A, changes=3)) is Relation.SAME
    assert relation(L(A, changes=4), L(A, changes=3)) is Relation.AHEAD
    assert relation(L(A, changes=2), L(A, changes=3)) is Relation.BEHIND
    # a later period that went on from the other's whole history wins whatever the counts
    assert relation(L(A, ("b", 3), changes=3), L(A, changes=3)) is Relation.SAME  # sealed, wrote nothing
    assert relation(L(A, ("b", 3), changes=4), L(A, changes=3)) is Relation.AHEAD
    # the other had written past the point where this one moved on: diverged, not ahead
    assert relation(L(A, ("b", 3), changes=90), L(A, changes=9)) is Relation.DIVERGED
    # two leaders sealed apart and both wrote: neither may replace the other
    assert relation(L(A, B, changes=7), L(A, C, changes=9)) is Relation.DIVERGED
    # an unsealed state (fresh, or from before lineages) is contained by one sealed after it
    assert relation(L(("a", 50), changes=50), L(changes=50)) is Relation.SAME
    assert relation(L(("a", 50), changes=51), L(changes=50)) is Relation.AHEAD
    assert relation(L(("a", 0), changes=60), L(changes=50)) is Relation.DIVERGED


def test_a_seal_that_carries_no_change_does_not_fork_the_history() -> None:
    """Found by the switch loop: Raft sealed a leader period and wrote nothing after the export
    was taken; the Bully period went on from the export. The Bully state contains the Raft one."""
    raft = L(("r6", 35), ("r7", 35), changes=35)
    bully = L(("r6", 35), ("j4", 35), changes=42)
    assert relation(bully, raft) is Relation.AHEAD and relation(raft, bully) is Relation.BEHIND
    # but once the Raft leader wrote after its seal, the Bully state no longer contains it
    assert relation(bully, L(("r6", 35), ("r7", 35), changes=36)) is Relation.DIVERGED


def test_newest_prefers_descendants_then_a_stable_order_among_diverged() -> None:
    assert newest([L(A, changes=3), L(A, ("b", 7), changes=8), L(A, changes=7)]) == L(A, ("b", 7), changes=8)
    diverged = [L(A, B, changes=6), L(A, C, changes=6)]
    assert newest(diverged) == newest(list(reversed(diverged))) == L(A, C, changes=6)
    assert newest([]) is None


def test_choose_takes_only_what_is_ahead_of_ours() -> None:
    ours = L(("r1", 0), changes=13)
    reports = [Report("n1", L(("r1", 0), changes=13)), Report("n2", None),
               Report("n3", L(("r1", 0), ("b2", 13), changes=14)),
               Report("n4", L(("x", 0), changes=500))]  # diverged: never chosen however big
    assert choose(ours, reports).node_id == "n3"
    assert choose(L(("r1", 0), ("b2", 13), changes=14), reports) is None


def test_seal_ids_carry_store_and_term() -> None:
    assert seal_term("raft-7-node-1-ab12cd34", "raft") == 7
    assert seal_term("journal-7-node-1-ab12cd34", "raft") is None
    assert seal_term(None, "raft") is None


def test_an_import_never_overwrites_a_write_made_after_a_seal() -> None:
    raft = StateMachine()
    run(raft, c.seal("raft-1-a"))
    run(raft, c.add_work("w1", "t"))
    exported = raft.snapshot()  # goes to the Bully store at a switch
    bully = StateMachine()
    assert run(bully, c.import_state(exported))["ok"]
    run(bully, c.seal("journal-1-b"))
    run(bully, c.add_work("in-bully", "t"))
    # meanwhile a Raft leader that never heard of the Bully state sealed and wrote
    run(raft, c.seal("raft-2-a"))
    run(raft, c.add_work("in-raft", "t"))
    refused = run(raft, c.import_state(bully.snapshot()))
    assert not refused["ok"] and refused["error"] == "stale_import"
    assert raft.work_get("in-raft") is not None
    # the way it is meant to go: the Raft leader imports the Bully state, then seals
    fresh = StateMachine.from_snapshot(exported)
    taken = run(fresh, c.import_state(bully.snapshot(), seal="raft-3-a"))
    assert taken["ok"] and fresh.work_get("in-bully") is not None
    assert [seal for seal, _ in fresh.lineage().seals] == ["raft-1-a", "journal-1-b", "raft-3-a"]


def test_import_is_a_compare_and_set_on_base() -> None:
    m = StateMachine()
    run(m, c.seal("s1"))
    base = m.lineage().to_dict()
    run(m, c.add_work("slipped-in", "t"))
    other = StateMachine()
    run(other, c.seal("s1"))
    for i in range(5):
        run(other, c.add_work(f"w{i}", "t"))
    result = run(m, c.import_state(other.snapshot(), seal="s2", base=base))
    assert not result["ok"] and "moved on" in result["message"]
    assert m.work_get("slipped-in") is not None


def test_seals_survive_snapshots_and_old_snapshots_still_load() -> None:
    m = StateMachine()
    run(m, c.seal("s1"))
    run(m, c.add_work("w", "t"))
    again = StateMachine.from_snapshot(json.loads(json.dumps(m.snapshot())))
    assert again.lineage() == m.lineage() == L(("s1", 0), changes=1)
    old = m.snapshot()
    del old["seals"]  # a snapshot written before lineages existed
    assert StateMachine.from_snapshot(old).lineage() == L(changes=1)
    assert not run(m, c.seal(""))["ok"]
