"""Work queue transitions and refusals, driven through StateMachine.apply."""

from __future__ import annotations

import pytest

from ringrift_cluster.state import Limits, StateMachine
from ringrift_cluster.state import commands as c


class Driver:
    """Applies builder commands with a fake proposer clock."""

    def __init__(self, **limits: object) -> None:
        self.m = StateMachine(Limits(**limits) if limits else None)
        self.now = 1000.0

    def __call__(self, cmd: dict, now: float | None = None) -> dict:
        if now is not None:
            self.now = now
        return self.m.apply(c.stamp(cmd, self.now))

    def claim(self, node: str = "n1", **kw: object) -> dict:
        result = self(c.claim_work(node, **kw))
        assert result["ok"] and result["item"] is not None, result
        return result


@pytest.fixture
def d() -> Driver:
    return Driver()


def test_add_sets_defaults_and_pending(d: Driver) -> None:
    r = d(c.add_work("w1", "selfplay"))
    assert r == {"ok": True, "work_id": "w1", "status": "pending", "clock": 1000.0}
    item = d.m.work_get("w1")
    assert item["priority"] == 50 and item["max_attempts"] == 3 and item["timeout_s"] == 3600.0
    assert item["config"] == {} and item["capabilities"] == [] and item["attempts"] == 0
    assert d.m.work_stats() == {"pending": 1, "claimed": 0, "running": 0, "completed": 0,
                                "failed": 0, "total": 1}


def test_add_duplicate_refused(d: Driver) -> None:
    d(c.add_work("w1", "selfplay"))
    r = d(c.add_work("w1", "train"))
    assert r["ok"] is False and r["error"] == "already_exists" and r["status"] == "pending"
    assert d.m.work_get("w1")["work_type"] == "selfplay"


def test_claim_highest_priority_then_oldest(d: Driver) -> None:
    d(c.add_work("low", "t", priority=10))
    d(c.add_work("high-old", "t", priority=90))
    d(c.add_work("high-new", "t", priority=90))
    d(c.add_work("mid", "t", priority=50))
    order = [d.claim()["item"]["work_id"] for _ in range(4)]
    assert order == ["high-old", "high-new", "mid", "low"]
    r = d(c.claim_work("n1"))
    assert r == {"ok": True, "item": None, "claim_token": None, "expires_at": None,
                 "clock": 1000.0}


def test_requeued_item_keeps_its_age(d: Driver) -> None:
    d(c.add_work("a", "t"))
    d(c.add_work("b", "t"))
    first = d.claim()
    d(c.fail_work("a", first["claim_token"], "boom"))
    assert d.claim()["item"]["work_id"] == "a"


def test_claim_requires_capability_subset(d: Driver) -> None:
    d(c.add_work("gpu-job", "train", priority=90, capabilities=["gpu", "cuda"]))
    d(c.add_work("any-job", "selfplay", priority=10))
    r = d.claim("cpu-node", capabilities=["gpu"])
    assert r["item"]["work_id"] == "any-job"  # the better item needs what cpu-node lacks
    assert d(c.claim_work("cpu-node", capabilities=["gpu"]))["item"] is None
    r = d.claim("gpu-node", capabilities=["cuda", "gpu", "nvme"])
    assert r["item"]["work_id"] == "gpu-job" and r["item"]["claimed_by"] == "gpu-node"


def test_claim_filters_work_types(d: Driver) -> None:
    d(c.add_work("w-train", "train", priority=90))
    d(c.add_work("w-play", "selfplay", priority=10))
    assert d.claim(work_types=["selfplay"])["item"]["work_id"] == "w-play"
    assert d(c.claim_work("n1", work_types=["eval"]))["item"] is None


def test_claim_lease_defaults_to_timeout(d: Driver) -> None:
    d(c.add_work("w", "t", timeout_s=60))
    r = d.claim()
    assert r["expires_at"] == 1060.0 and r["item"]["lease_s"] == 60.0
    d(c.add_work("w2", "t", timeout_s=60))
    assert d.claim(lease_s=5)["expires_at"] == 1005.0


def test_tokens_are_deterministic_and_increasing(d: Driver) -> None:
    for i in range(3):
        d(c.add_work(f"w{i}", "t"))
    assert [d.claim()["claim_token"] for _ in range(3)] == [1, 2, 3]


def test_start_renew_complete(d: Driver) -> None:
    d(c.add_work("w", "t"))
    tok = d.claim(lease_s=10)["claim_token"]
    r = d(c.start_work("w", tok), now=1001)
    assert r["ok"] and r["status"] == "running"
    assert d(c.start_work("w", tok))["ok"]  # idempotent
    assert d.m.work_get("w")["started_at"] == 1001.0
    r = d(c.renew_work("w", tok), now=1008)
    assert r["ok"] and r["expires_at"] == 1018.0
    r = d(c.renew_work("w", tok, lease_s=30), now=1009)
    assert r["expires_at"] == 1039.0
    r = d(c.complete_work("w", tok, {"games": 12}), now=1020)
    assert r["ok"] and r["status"] == "completed"
    item = d.m.work_get("w")
    assert item["status"] == "completed" and item["result"] == {"games": 12}
    assert item["finished_at"] == 1020.0 and item["expires_at"] is None
    assert d.m.work_stats()["completed"] == 1


def test_complete_straight_from_claimed(d: Driver) -> None:
    d(c.add_work("w", "t"))
    tok = d.claim()["claim_token"]
    assert d(c.complete_work("w", tok))["ok"]


@pytest.mark.parametrize("builder", [
    lambda tok: c.start_work("w", tok),
    lambda tok: c.renew_work("w", tok),
    lambda tok: c.complete_work("w", tok),
    lambda tok: c.fail_work("w", tok),
])
def test_wrong_or_stale_token_refused(d: Driver, builder) -> None:
    d(c.add_work("w", "t"))
    tok = d.claim()["claim_token"]
    r = d(builder(tok + 1))
    assert r["ok"] is False and r["error"] == "stale_token" and r["status"] == "claimed"
    d(c.fail_work("w", tok))  # back to pending: the old token is now stale
    r = d(builder(tok))
    assert r["error"] == "stale_token" and r["status"] == "pending"
    tok2 = d.claim()["claim_token"]
    assert tok2 > tok
    assert d(builder(tok))["error"] == "stale_token"
    assert d(builder(tok2))["ok"]


@pytest.mark.parametrize("builder", [
    c.start_work, c.renew_work, c.complete_work, c.fail_work,
])
def test_unknown_work_refused(d: Driver, builder) -> None:
    r = d(builder("nope", 1))
    assert r["ok"] is False and r["error"] == "not_found"


def test_complete_after_complete_refused(d: Driver) -> None:
    d(c.add_work("w", "t"))
    tok = d.claim()["claim_token"]
    d(c.complete_work("w", tok))
    r = d(c.complete_work("w", tok))
    assert r["error"] == "stale_token" and r["status"] == "completed"


def test_fail_retries_until_max_attempts(d: Driver) -> None:
    d(c.add_work("w", "t", max_attempts=3))
    for attempt in (1, 2):
        tok = d.claim()["claim_token"]
        r = d(c.fail_work("w", tok, f"err{attempt}"))
        assert r == {"ok": True, "work_id": "w", "status": "pending", "attempts": attempt,
                     "clock": 1000.0}
        assert d.m.work_get("w")["error"] == f"err{attempt}"
    tok = d.claim()["claim_token"]
    r = d(c.fail_work("w", tok, "err3"))
    assert r["status"] == "failed" and r["attempts"] == 3
    item = d.m.work_get("w")
    assert item["status"] == "failed" and item["error"] == "err3"
    assert d(c.claim_work("n1"))["item"] is None
    assert d.m.work_stats()["failed"] == 1


def test_fail_without_retry_is_final(d: Driver) -> None:
    d(c.add_work("w", "t", max_attempts=5))
    tok = d.claim()["claim_token"]
    assert d(c.fail_work("w", tok, "bad config", retry=False))["status"] == "failed"


def test_expire_on_machine_clock_counts_an_attempt(d: Driver) -> None:
    d(c.add_work("w", "t", max_attempts=2), now=100)
    tok = d.claim(lease_s=10)["claim_token"]
    assert d(c.tick(), now=109.5)["expired_work"] == []
    assert d.m.work_get("w")["status"] == "claimed"
    r = d(c.tick(), now=110)  # a lease ends at exactly expires_at
    assert r["expired_work"] == ["w"] and r["clock"] == 110.0
    item = d.m.work_get("w")
    assert item["status"] == "pending" and item["attempts"] == 1
    assert item["error"] == "lease expired"
    assert d(c.complete_work("w", tok))["error"] == "stale_token"
    d.claim(lease_s=10)
    assert d(c.expire_work(), now=200)["expired"] == ["w"]
    assert d.m.work_get("w")["status"] == "failed"


def test_older_now_never_moves_the_clock_back(d: Driver) -> None:
    d(c.add_work("w", "t"), now=100)
    d.claim(lease_s=10)
    r = d(c.tick(), now=50)
    assert r["clock"] == 100.0 and r["expired_work"] == []
    assert d.m.clock == 100.0
    assert d(c.tick(), now=105)["clock"] == 105.0
    assert d(c.tick(), now=0)["expired_work"] == []
    assert d.m.work_get("w")["status"] == "claimed"
    assert d(c.tick(), now=111)["expired_work"] == ["w"]


def test_any_command_expires_passed_leases(d: Driver) -> None:
    d(c.add_work("w", "t"), now=100)
    tok = d.claim(lease_s=10)["claim_token"]
    d(c.add_work("other", "t"), now=120)  # not a tick: the lease still ends on the clock
    assert d.m.work_get("w")["status"] == "pending"
    assert d(c.renew_work("w", tok))["error"] == "stale_token"


def test_renew_keeps_the_claim_alive(d: Driver) -> None:
    d(c.add_work("w", "t"), now=100)
    tok = d.claim(lease_s=10)["claim_token"]
    d(c.renew_work("w", tok), now=108)
    assert d(c.tick(), now=115)["expired_work"] == []
    assert d(c.tick(), now=118)["expired_work"] == ["w"]


def test_expiry_order_is_by_deadline(d: Driver) -> None:
    for w in ("a", "b", "c"):
        d(c.add_work(w, "t"), now=100)
    d.claim(lease_s=30)
    d.claim(lease_s=10)
    d.claim(lease_s=20)
    assert d(c.tick(), now=200)["expired_work"] == ["b", "c", "a"]


def test_release_node_requeues_without_an_attempt(d: Driver) -> None:
    for w in ("a", "b", "c"):
        d(c.add_work(w, "t", max_attempts=1))
    ta = d.claim("n1")["claim_token"]
    d.claim("n2")
    tc = d.claim("n1")["claim_token"]
    d(c.start_work("c", tc))
    r = d(c.release_node("n1"))
    assert r["ok"] and r["requeued"] == ["a", "c"]
    for w in ("a", "c"):
        item = d.m.work_get(w)
        assert item["status"] == "pending" and item["attempts"] == 0 and item["claimed_by"] is None
    assert d.m.work_get("b")["status"] == "claimed"
    assert d(c.complete_work("a", ta))["error"] == "stale_token"
    assert d(c.release_node("n1"))["requeued"] == []


def test_finished_items_compacted_by_count() -> None:
    d = Driver(max_finished_work=2)
    for w in ("a", "b", "c", "d"):
        d(c.add_work(w, "t"))
    for _ in range(3):
        r = d.claim()
        d(c.complete_work(r["item"]["work_id"], r["claim_token"]))
    d(c.tick())
    assert d.m.work_get("a") is None
    assert d.m.work_get("b")["status"] == "completed" and d.m.work_get("c") is not None
    assert d.m.work_get("d")["status"] == "pending"
    assert d.m.work_stats()["total"] == 3
    assert d(c.add_work("a", "t"))["ok"]  # a compacted id can be reused


def test_finished_items_compacted_by_age() -> None:
    d = Driver(finished_work_ttl_s=100)
    d(c.add_work("a", "t"), now=0)
    d(c.add_work("p", "t", priority=0), now=0)
    r = d.claim()
    d(c.fail_work("a", r["claim_token"], retry=False), now=10)
    d(c.tick(), now=109)
    assert d.m.work_get("a") is not None
    d(c.tick(), now=110)
    assert d.m.work_get("a") is None
    assert d.m.work_get("p")["status"] == "pending"  # live items are never compacted


def test_reads_filter_order_and_copy(d: Driver) -> None:
    d(c.add_work("low", "t", priority=1))
    d(c.add_work("high", "t", priority=9))
    d(c.add_work("mid", "t", priority=5))
    d.claim("n7")
    assert [i["work_id"] for i in d.m.work_list(status="pending")] == ["mid", "low"]
    assert [i["work_id"] for i in d.m.work_list()] == ["low", "high", "mid"]
    assert [i["work_id"] for i in d.m.work_list(node_id="n7")] == ["high"]
    assert len(d.m.work_list(limit=1)) == 1
    d.m.work_get("high")["status"] = "hacked"
    d.m.work_list()[0]["config"]["x"] = 1
    assert d.m.work_get("high")["status"] == "claimed"
    assert d.m.work_get("low")["config"] == {}
    assert d.m.work_get("missing") is None


def test_state_does_not_alias_the_command(d: Driver) -> None:
    config = {"board": {"size": 8}}
    cmd = c.stamp(c.add_work("w", "t", config=config, capabilities=("gpu",)), 1.0)
    d.m.apply(cmd)
    cmd["args"]["config"]["board"]["size"] = 99
    assert d.m.work_get("w")["config"] == {"board": {"size": 8}}
    assert d.m.work_get("w")["capabilities"] == ["gpu"]


@pytest.mark.parametrize("args, field", [
    ({"work_type": "t"}, "args.work_id: missing"),
    ({"work_id": "w"}, "args.work_type: missing"),
    ({"work_id": "", "work_type": "t"}, "args.work_id: expected"),
    ({"work_id": "w", "work_type": "t", "priority": "high"}, "args.priority: expected"),
    ({"work_id": "w", "work_type": "t", "priority": True}, "args.priority: expected"),
    ({"work_id": "w", "work_type": "t", "max_attempts": 0}, "args.max_attempts: expected"),
    ({"work_id": "w", "work_type": "t", "timeout_s": 0}, "args.timeout_s: expected"),
    ({"work_id": "w", "work_type": "t", "timeout_s": float("inf")}, "args.timeout_s: expected"),
    ({"work_id": "w", "work_type": "t", "config": [1]}, "args.config: expected an object"),
    ({"work_id": "w", "work_type": "t", "config": {"x": float("nan")}}, "args.config: numbers"),
    ({"work_id": "w", "work_type": "t", "config": {1: "x"}}, "args.config: key 1"),
    ({"work_id": "w", "work_type": "t", "config": {"x": object()}}, "args.config: object is not"),
    ({"work_id": "w", "work_type": "t", "capabilities": "gpu"}, "args.capabilities: expected"),
    ({"work_id": "w", "work_type": "t", "capabilities": [""]}, "args.capabilities: expected"),
    ({"work_id": "w", "work_type": "t", "colour": "red"}, "args.colour: unknown field"),
])
def test_add_validation(d: Driver, args: dict, field: str) -> None:
    r = d.m.apply({"v": 1, "op": "work.add", "rid": "r1", "now": 1.0, "args": args})
    assert r["ok"] is False and r["error"] == "bad_command"
    assert r["message"].startswith(field), r["message"]
    assert d.m.work_stats()["total"] == 0


def test_claim_token_validation(d: Driver) -> None:
    r = d.m.apply({"v": 1, "op": "work.complete", "rid": "r", "now": 1,
                   "args": {"work_id": "w", "claim_token": "1"}})
    assert r["error"] == "bad_command" and r["message"].startswith("args.claim_token: expected")
