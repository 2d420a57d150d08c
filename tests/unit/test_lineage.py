"""Lineages order states across stores and modes; state.import and state.seal follow them."""

from __future__ import annotations

import json

from ringrift_cluster.state import StateMachine, commands as c
from ringrift_cluster.state.lineage import Lineage, Relation, newest, relation
from ringrift_cluster.store.reconcile import Report, choose, seal_term


def run(machine: StateMachine, cmd: dict, now: float = 10.0) -> dict:
    return machine.apply(json.loads(json.dumps(c.stamp(cmd, now))))


def L(*seals: str, changes: int = 0) -> Lineage:
    return Lineage(tuple(seals), changes)


def test_relations() -> None:
    assert relation(L("a", changes=3), L("a", changes=3)) is Relation.SAME
    assert relation(L("a", changes=4), L("a", changes=3)) is Relation.AHEAD
    assert relation(L("a", changes=2), L("a", changes=3)) is Relation.BEHIND
    # a later period wins whatever the counts: it went on from the other's last seal
    assert relation(L("a", "b", changes=1), L("a", changes=99)) is Relation.AHEAD
    assert relation(L("a", changes=99), L("a", "b", changes=1)) is Relation.BEHIND
    # two leaders sealed apart: neither may replace the other
    assert relation(L("a", "b", changes=5), L("a", "c", changes=9)) is Relation.DIVERGED
    # an unsealed state (fresh, or from before lineages) is behind any sealed one
    assert relation(L("a"), L(changes=50)) is Relation.AHEAD


def test_newest_prefers_descendants_then_a_stable_order_among_diverged() -> None:
    assert newest([L("a", changes=3), L("a", "b", changes=1), L("a", changes=7)]) == L("a", "b", changes=1)
    diverged = [L("a", "b", changes=5), L("a", "c", changes=5)]
    assert newest(diverged) == newest(list(reversed(diverged))) == L("a", "c", changes=5)
    assert newest([]) is None


def test_choose_takes_only_what_is_ahead_of_ours() -> None:
    ours = L("r1", changes=13)
    reports = [Report("n1", L("r1", changes=13)), Report("n2", None), Report("n3", L("r1", "b2", changes=14)),
               Report("n4", L("x", changes=500))]  # diverged: never chosen however big
    assert choose(ours, reports).node_id == "n3"
    assert choose(L("r1", "b2", changes=14), reports) is None


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
    assert fresh.lineage().seals == ("raft-1-a", "journal-1-b", "raft-3-a")


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
    assert again.lineage() == m.lineage() == L("s1", changes=1)
    old = m.snapshot()
    del old["seals"]  # a snapshot written before lineages existed
    assert StateMachine.from_snapshot(old).lineage() == L(changes=1)
    assert not run(m, c.seal(""))["ok"]
