"""The linearizability check on hand-made histories: each violation has a twin that passes.

Times are seconds; ``op(client, input, call, output, ret)`` with ``output=None`` for an unknown
outcome (it returns at infinity).
"""

from __future__ import annotations

import json
import math

import pytest

from ringrift_cluster.testing.checks.calls import OK, UNKNOWN, Call, FinalState
from ringrift_cluster.testing.linearizability import check_calls
from ringrift_cluster.testing.linearizability.history import INF, Operation, from_calls, to_porcupine_json
from ringrift_cluster.testing.linearizability.models import MODELS
from ringrift_cluster.testing.linearizability.search import linearize


def op(client: str, inp: dict, call: float, out: dict | None, ret: float = INF) -> Operation:
    return Operation(client, inp, call, out, ret)


def ok(kind: str, ops: list[Operation]) -> bool:
    return linearize(MODELS[kind], ops).ok


ADD = op("p", {"op": "add"}, 0.0, {"ok": True}, 1.0)


def read(call: float, ret: float, status: str | None, token: int | None = None, attempts: int = 0) -> Operation:
    out = {"found": False} if status is None else {"found": True, "status": status, "claim_token": token,
                                                   "attempts": attempts}
    return op("r", {"op": "read"}, call, out, ret)


# -- work items --------------------------------------------------------------------------------

def test_a_claim_granted_twice_is_not_linearizable_and_a_requeue_between_makes_it_so() -> None:
    first = op("w1", {"op": "claim"}, 2.0, {"ok": True, "token": 1}, 3.0)
    second = op("w2", {"op": "claim"}, 4.0, {"ok": True, "token": 2}, 5.0)
    assert not ok("work", [ADD, first, second])
    failed = op("w1", {"op": "fail", "token": 1, "retry": True}, 3.2, {"ok": True, "status": "pending", "attempts": 1},
                3.5)
    assert ok("work", [ADD, first, failed, second])


def test_concurrent_claims_of_one_item_both_granted_are_not_linearizable() -> None:
    a = op("w1", {"op": "claim"}, 2.0, {"ok": True, "token": 1}, 6.0)
    b = op("w2", {"op": "claim"}, 2.5, {"ok": True, "token": 2}, 5.0)
    assert not ok("work", [ADD, a, b])
    assert ok("work", [ADD, a])


def test_a_read_after_an_acknowledged_complete_must_see_it() -> None:
    claim = op("w1", {"op": "claim"}, 2.0, {"ok": True, "token": 7}, 3.0)
    done = op("w1", {"op": "complete", "token": 7}, 4.0, {"ok": True, "status": "completed", "attempts": 0}, 5.0)
    assert not ok("work", [ADD, claim, done, read(6.0, 7.0, "claimed", 7)])  # stale
    assert ok("work", [ADD, claim, done, read(4.5, 4.8, "claimed", 7)])  # concurrent: either is fine
    assert ok("work", [ADD, claim, done, read(6.0, 7.0, "completed", 7)])


def test_a_stale_token_is_refused_and_acknowledging_it_is_not_linearizable() -> None:
    claim = op("w1", {"op": "claim"}, 2.0, {"ok": True, "token": 7}, 3.0)
    stale_ok = op("w2", {"op": "complete", "token": 6}, 4.0, {"ok": True, "status": "completed", "attempts": 0}, 5.0)
    stale_refused = op("w2", {"op": "complete", "token": 6}, 4.0, {"ok": False, "error": "stale_token"}, 5.0)
    assert not ok("work", [ADD, claim, stale_ok])
    assert ok("work", [ADD, claim, stale_refused])


def test_an_unknown_add_may_or_may_not_have_happened_but_nothing_comes_from_nowhere() -> None:
    unknown = op("p", {"op": "add"}, 0.0, None)
    assert ok("work", [unknown, read(2.0, 3.0, "pending")])
    assert ok("work", [unknown, read(2.0, 3.0, None)])
    assert not ok("work", [read(2.0, 3.0, "pending")])
    # Once seen, an item does not vanish again.
    assert not ok("work", [unknown, read(2.0, 3.0, "pending"), read(4.0, 5.0, None)])


def test_tokens_only_grow() -> None:
    claim = op("w1", {"op": "claim"}, 2.0, {"ok": True, "token": 7}, 3.0)
    requeue = op("w1", {"op": "fail", "token": 7, "retry": True}, 4.0, {"ok": True, "status": "pending", "attempts": 1},
                 5.0)
    assert not ok("work", [ADD, claim, requeue, op("w2", {"op": "claim"}, 6.0, {"ok": True, "token": 5}, 7.0)])
    assert ok("work", [ADD, claim, requeue, op("w2", {"op": "claim"}, 6.0, {"ok": True, "token": 9}, 7.0)])


def test_the_last_allowed_failure_fails_the_item_for_good() -> None:
    add = op("p", {"op": "add", "max_attempts": 1}, 0.0, {"ok": True}, 1.0)
    claim = op("w1", {"op": "claim"}, 2.0, {"ok": True, "token": 1}, 3.0)
    requeued = op("w1", {"op": "fail", "token": 1, "retry": True}, 4.0, {"ok": True, "status": "pending", "attempts": 1},
                  5.0)
    failed = op("w1", {"op": "fail", "token": 1, "retry": True}, 4.0, {"ok": True, "status": "failed", "attempts": 1},
                5.0)
    assert not ok("work", [add, claim, requeued])
    assert ok("work", [add, claim, failed])


# -- locks -------------------------------------------------------------------------------------

def grant(holder: str, token: int, stamp: float, ttl: float = 2.0, renewed: bool = False,
          ret: float | None = None) -> Operation:
    return op(holder, {"op": "acquire", "holder": holder, "ttl": ttl}, stamp - 0.1,
              {"ok": True, "token": token, "renewed": renewed, "expires_at": stamp + ttl, "stamp": stamp},
              stamp + 0.1 if ret is None else ret)


def test_two_holders_in_one_lease_window_are_not_linearizable() -> None:
    assert not ok("lock", [grant("a", 5, 10.0), grant("b", 6, 11.0)])  # a's lease runs to 12
    assert ok("lock", [grant("a", 5, 10.0), grant("b", 6, 12.5)])


def test_fence_tokens_only_grow() -> None:
    assert not ok("lock", [grant("a", 5, 10.0), grant("b", 4, 12.5)])
    assert not ok("lock", [grant("a", 5, 10.0), grant("b", 5, 12.5)])


def test_a_renewal_keeps_the_token_and_a_release_frees_the_lock() -> None:
    renew = op("a", {"op": "renew", "holder": "a", "token": 5, "ttl": 2.0}, 11.0,
               {"ok": True, "expires_at": 13.1, "stamp": 11.1}, 11.2)
    assert not ok("lock", [grant("a", 5, 10.0), renew, grant("b", 6, 12.5)])  # a renewed to 13.1
    release = op("a", {"op": "release", "holder": "a", "token": 5}, 11.0, {"ok": True}, 11.2)
    assert ok("lock", [grant("a", 5, 10.0), release, grant("b", 6, 11.5)])
    late_renew = op("a", {"op": "renew", "holder": "a", "token": 5, "ttl": 2.0}, 11.5,
                    {"ok": True, "expires_at": 13.6, "stamp": 11.6}, 11.7)
    assert not ok("lock", [grant("a", 5, 10.0), release, late_renew])


def test_held_is_an_answer_only_while_the_lease_may_run() -> None:
    refused = op("b", {"op": "acquire", "holder": "b", "ttl": 2.0}, 13.0,
                 {"ok": False, "error": "lock_held", "holder": "a"}, 13.2)
    assert not ok("lock", [grant("a", 5, 10.0), refused])  # a's lease ended at 12
    early = op("b", {"op": "acquire", "holder": "b", "ttl": 2.0}, 11.0,
               {"ok": False, "error": "lock_held", "holder": "a"}, 11.2)
    assert ok("lock", [grant("a", 5, 10.0), early])


def test_an_unknown_grant_explains_a_holder_seen_later_and_only_that() -> None:
    lost = op("a", {"op": "acquire", "holder": "a", "ttl": 600.0}, 10.0, None)
    final = op("final", {"op": "read"}, 20.0, {"held": True, "holder": "a", "token": 8, "expires_at": 610.05}, 20.5)
    assert ok("lock", [lost, final])
    assert not ok("lock", [final])
    free = op("final", {"op": "read"}, 20.0, {"held": False}, 20.5)
    assert not ok("lock", [grant("a", 5, 10.0, ttl=600.0), free])  # a lease to 610 vanished
    assert not ok("lock", [grant("a", 5, 10.0, ttl=600.0), lost, free])  # a lost re-grant releases nothing


def test_a_read_may_show_a_lock_past_its_expiry_until_a_command_sweeps_it() -> None:
    # Seen under load: the final read began just after the lease's end, no command in between.
    late = op("final", {"op": "read"}, 12.2, {"held": True, "holder": "a", "token": 5, "expires_at": 12.0}, 12.4)
    assert ok("lock", [grant("a", 5, 10.0), late])
    other = op("final", {"op": "read"}, 12.2, {"held": True, "holder": "a", "token": 4, "expires_at": 12.0}, 12.4)
    assert not ok("lock", [grant("a", 5, 10.0), other])  # but never another token


# -- model registry ----------------------------------------------------------------------------

def test_registry_one_production_version_and_no_lost_registration() -> None:
    reg1 = op("p", {"op": "register", "version": "v1"}, 0.0, {"ok": True, "created": True}, 1.0)
    reg2 = op("p", {"op": "register", "version": "v2"}, 2.0, {"ok": True, "created": True}, 3.0)
    prom1 = op("p", {"op": "promote", "version": "v1"}, 4.0, {"ok": True}, 5.0)
    prom2 = op("p", {"op": "promote", "version": "v2"}, 6.0, {"ok": True}, 7.0)
    good = op("final", {"op": "read"}, 8.0, {"versions": {"v1": "archived", "v2": "production"}}, 9.0)
    both = op("final", {"op": "read"}, 8.0, {"versions": {"v1": "production", "v2": "production"}}, 9.0)
    lost = op("final", {"op": "read"}, 8.0, {"versions": {"v1": "archived"}}, 9.0)
    assert ok("model", [reg1, reg2, prom1, prom2, good])
    assert not ok("model", [reg1, reg2, prom1, prom2, both])
    assert not ok("model", [reg1, reg2, prom1, prom2, lost])
    created_twice = op("p", {"op": "register", "version": "v1"}, 2.0, {"ok": True, "created": True}, 3.0)
    assert not ok("model", [reg1, created_twice])
    ghost = op("p", {"op": "promote", "version": "v9"}, 2.0, {"ok": True}, 3.0)
    assert not ok("model", [reg1, ghost])


# -- from the workload's calls -----------------------------------------------------------------

def call(i: int, client: str, name: str, args: dict, start: float, outcome: str = OK,
         result: dict | None = None) -> Call:
    return Call(i, client, name, args, f"rid-{i}", start, None if outcome == UNKNOWN else start + 0.5, outcome,
                result)


def _claimed(token: int) -> dict:
    return {"ok": True, "claim_token": token, "item": {"work_id": "w1", "claim_token": token, "status": "claimed"}}


def test_a_lost_acknowledged_complete_fails_the_check_and_writes_the_evidence(tmp_path) -> None:
    calls = [call(1, "producer", "work.add", {"work_id": "w1"}, 1.0, result={"ok": True}),
             call(2, "worker-1", "work.claim", {"node_id": "worker-1"}, 2.0, result=_claimed(3)),
             call(3, "worker-1", "work.complete", {"work_id": "w1", "claim_token": 3}, 3.0,
                  result={"ok": True, "status": "completed", "attempts": 0})]
    lost = FinalState(items={"w1": {"status": "claimed", "claim_token": 3, "attempts": 0}}, locks={}, models={},
                      clock=10.0, locks_clock=10.5)
    verdict = check_calls(calls, lost, out_dir=tmp_path)
    assert verdict.failed == ["work:w1"], verdict
    page = (tmp_path / "linearizability.html").read_text()
    assert "work:w1" in page and "completed" in page
    history = json.loads((tmp_path / "history.json").read_text())
    assert [o["Input"]["op"] for o in history["partitions"]["work:w1"]] == ["add", "claim", "complete", "read"]
    kept = FinalState(items={"w1": {"status": "completed", "claim_token": 3, "attempts": 0}}, locks={}, models={},
                      clock=10.0, locks_clock=10.5)
    assert check_calls(calls, kept).ok


def test_an_unknown_claim_explains_a_token_no_acknowledged_claim_returned() -> None:
    final = FinalState(items={"w1": {"status": "claimed", "claim_token": 4, "attempts": 0}}, locks={}, models={},
                       clock=10.0, locks_clock=10.5)
    add = call(1, "producer", "work.add", {"work_id": "w1"}, 1.0, result={"ok": True})
    unknown_claim = call(2, "worker-2", "work.claim", {"node_id": "worker-2"}, 2.0, UNKNOWN)
    assert check_calls([add, unknown_claim], final).ok
    verdict = check_calls([add], final)
    assert verdict.failed == ["work:w1"]
    ghost = from_calls([add, unknown_claim], final)["work:w1"][1]
    assert ghost.input == {"op": "claim", "token": 4} and ghost.output is None and math.isinf(ghost.ret)


def test_the_history_is_written_in_porcupines_operation_shape() -> None:
    calls = [call(1, "producer", "work.add", {"work_id": "w1"}, 1.0, UNKNOWN)]
    doc = json.loads(to_porcupine_json(from_calls(calls)))
    (one,) = doc["partitions"]["work:w1"]
    assert set(one) == {"ClientId", "Input", "Call", "Output", "Return"}
    assert one["Call"] == 1_000_000_000 and one["Return"] == 2**63 - 1 and one["Output"] is None


def test_a_search_past_its_bound_is_undecided_not_passed() -> None:
    # Many concurrent unknown adds: the search is bounded at a handful of steps.
    ops = [op(f"c{i}", {"op": "add"}, 0.0, None) for i in range(12)] + [read(1.0, 2.0, None)]
    out = linearize(MODELS["work"], ops, max_steps=5)
    assert not out.ok and out.steps > 5


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_an_empty_history_is_linearizable(kind: str) -> None:
    assert ok(kind, [])
