"""Training locks, model registry and job status, driven through StateMachine.apply."""

from __future__ import annotations

import pytest

from ringrift_cluster.state import Limits, StateMachine
from ringrift_cluster.state import commands as c


class Driver:
    def __init__(self, **limits: object) -> None:
        self.m = StateMachine(Limits(**limits) if limits else None)
        self.now = 1000.0

    def __call__(self, cmd: dict, now: float | None = None) -> dict:
        if now is not None:
            self.now = now
        return self.m.apply(c.stamp(cmd, self.now))


@pytest.fixture
def d() -> Driver:
    return Driver()


# -- locks ---------------------------------------------------------------------------------

def test_acquire_returns_token_and_expiry(d: Driver) -> None:
    r = d(c.acquire_lock("train:sq8", "n1", 30))
    assert r == {"ok": True, "name": "train:sq8", "holder": "n1", "fence_token": 1,
                 "acquired_at": 1000.0, "ttl_s": 30.0, "expires_at": 1030.0, "renewed": False,
                 "clock": 1000.0}
    assert d(c.acquire_lock("default-ttl", "n1"))["expires_at"] == 1300.0
    assert [lock["name"] for lock in d.m.locks_list()] == ["train:sq8", "default-ttl"]
    assert d.m.lock_get("train:sq8")["holder"] == "n1"
    assert d.m.lock_get("nope") is None


def test_acquire_held_by_other_refused(d: Driver) -> None:
    d(c.acquire_lock("L", "n1", 30))
    r = d(c.acquire_lock("L", "n2", 30), now=1010)
    assert r["ok"] is False and r["error"] == "lock_held"
    assert r["holder"] == "n1" and r["expires_at"] == 1030.0


def test_reacquire_by_holder_renews_and_keeps_token(d: Driver) -> None:
    t = d(c.acquire_lock("L", "n1", 30))["fence_token"]
    r = d(c.acquire_lock("L", "n1", 60), now=1020)
    assert r["ok"] and r["renewed"] is True and r["fence_token"] == t
    assert r["expires_at"] == 1080.0 and r["acquired_at"] == 1000.0


def test_fence_tokens_strictly_increase_across_history(d: Driver) -> None:
    tokens = [d(c.acquire_lock("L", "n1", 10), now=0)["fence_token"]]
    d(c.acquire_lock("other", "n9", 1000))  # tokens are machine-wide
    tokens.append(d(c.acquire_lock("L", "n2", 10), now=10)["fence_token"])  # n1 expired
    r = d(c.release_lock("L", "n2", tokens[-1]))
    assert r["ok"] and r["released"] is True and d.m.lock_get("L") is None
    tokens.append(d(c.acquire_lock("L", "n1", 10))["fence_token"])
    d(c.release_node("n1"))
    tokens.append(d(c.acquire_lock("L", "n3", 10))["fence_token"])
    assert tokens == sorted(set(tokens)) and tokens[0] == 1
    assert tokens == [1, 3, 4, 5]


def test_fence_tokens_survive_snapshot_restore(d: Driver) -> None:
    t1 = d(c.acquire_lock("L", "n1", 10), now=0)["fence_token"]
    d(c.tick(), now=20)  # expired and deleted: no record of L remains
    assert d.m.locks_list() == []
    m2 = StateMachine.from_snapshot(d.m.snapshot())
    r = m2.apply(c.stamp(c.acquire_lock("L", "n2", 10), 21))
    assert r["fence_token"] > t1


def test_expiry_on_the_replicated_clock(d: Driver) -> None:
    t = d(c.acquire_lock("L", "n1", 10), now=100)["fence_token"]
    assert d(c.acquire_lock("L", "n2"), now=50)["error"] == "lock_held"  # clock stays 100
    assert d(c.tick(), now=109)["expired_locks"] == []
    r = d(c.tick(), now=110)
    assert r["expired_locks"] == ["L"] and d.m.lock_get("L") is None
    assert d(c.renew_lock("L", "n1", t))["error"] == "not_held"
    assert d(c.release_lock("L", "n1", t))["error"] == "not_held"


def test_renew(d: Driver) -> None:
    t = d(c.acquire_lock("L", "n1", 10), now=100)["fence_token"]
    r = d(c.renew_lock("L", "n1", t), now=105)
    assert r["ok"] and r["expires_at"] == 115.0 and r["fence_token"] == t
    assert d(c.renew_lock("L", "n1", t, ttl_s=100), now=106)["expires_at"] == 206.0
    assert d(c.renew_lock("L", "n1", t + 1))["error"] == "not_holder"
    r = d(c.renew_lock("L", "n2", t))
    assert r["error"] == "not_holder" and r["holder"] == "n1"
    assert d(c.renew_lock("missing", "n1", t))["error"] == "not_held"


def test_release_only_by_holder_with_token(d: Driver) -> None:
    t = d(c.acquire_lock("L", "n1", 30))["fence_token"]
    assert d(c.release_lock("L", "n2", t))["error"] == "not_holder"
    assert d(c.release_lock("L", "n1", t + 1))["error"] == "not_holder"
    assert d.m.lock_get("L")["holder"] == "n1"
    assert d(c.release_lock("L", "n1", t))["ok"]
    assert d(c.release_lock("L", "n1", t))["error"] == "not_held"


def test_old_holder_cannot_release_a_reacquired_lock(d: Driver) -> None:
    t1 = d(c.acquire_lock("L", "n1", 10), now=0)["fence_token"]
    t2 = d(c.acquire_lock("L", "n1", 10), now=10)["fence_token"]  # expired first: new token
    assert t2 > t1
    assert d(c.release_lock("L", "n1", t1))["error"] == "not_holder"


def test_release_node_frees_its_locks(d: Driver) -> None:
    d(c.acquire_lock("a", "n1", 30))
    d(c.acquire_lock("b", "n1:job-7", 30))
    d(c.acquire_lock("c", "n10", 30))
    d(c.acquire_lock("d", "n2", 30))
    r = d(c.release_node("n1"))
    assert r["locks_released"] == ["a", "b"]
    assert sorted(lock["name"] for lock in d.m.locks_list()) == ["c", "d"]


@pytest.mark.parametrize("args, message", [
    ({"holder": "n1"}, "args.name: missing"),
    ({"name": "L"}, "args.holder: missing"),
    ({"name": "L", "holder": "n1", "ttl_s": -1}, "args.ttl_s: expected"),
    ({"name": "L", "holder": "n1", "ttl_s": "30"}, "args.ttl_s: expected"),
    ({"name": "L", "holder": "n1", "ttl_s": 1e300}, "args.ttl_s: expected"),
])
def test_lock_validation(d: Driver, args: dict, message: str) -> None:
    r = d.m.apply({"v": 1, "op": "lock.acquire", "rid": "r", "now": 1, "args": args})
    assert r["error"] == "bad_command" and r["message"].startswith(message)


# -- models --------------------------------------------------------------------------------

def _register(d: Driver, version: str, **kw: object) -> dict:
    return d(c.register_model("sq8", version, f"s3://m/{version}", f"sha-{version}", **kw))


def test_register_and_duplicates(d: Driver) -> None:
    r = _register(d, "1", metrics={"elo": 1500})
    assert r["ok"] and r["created"] is True
    assert r["model"]["stage"] == "candidate" and r["model"]["metrics"] == {"elo": 1500}
    again = _register(d, "1", metrics={"elo": 1500})
    assert again["ok"] and again["created"] is False and again["model"] == r["model"]
    r = _register(d, "1", metrics={"elo": 1600})
    assert r["ok"] is False and r["error"] == "already_exists"
    r = d(c.register_model("sq8", "1", "s3://elsewhere", "sha-1", {"elo": 1500}))
    assert r["error"] == "already_exists"
    assert d.m.model_get("sq8", "1")["uri"] == "s3://m/1"


def test_one_production_version_per_name(d: Driver) -> None:
    for v in ("1", "2", "3"):
        _register(d, v)
    d(c.register_model("hex", "1", "s3://h/1", "sha"))
    d(c.promote_model("hex", "1", "production"))
    r = d(c.promote_model("sq8", "1", "production"))
    assert r["ok"] and r["changed"] is True and r["archived"] == []
    r = d(c.promote_model("sq8", "2", "production"), now=2000)
    assert r["archived"] == ["1"] and r["model"]["stage"] == "production"
    assert r["model"]["promoted_at"] == 2000.0
    assert d.m.model_get("sq8", "1")["stage"] == "archived"
    assert [m["version"] for m in d.m.models_list("sq8", "production")] == ["2"]
    assert d.m.model_get("hex", "1")["stage"] == "production"  # other names untouched
    r = d(c.promote_model("sq8", "2", "production"))
    assert r["ok"] and r["changed"] is False and r["archived"] == []


def test_model_reads(d: Driver) -> None:
    for v in ("1", "2", "3"):
        _register(d, v)
    d(c.promote_model("sq8", "1", "production"))
    d(c.promote_model("sq8", "3", "archived"))
    assert d.m.model_latest("sq8")["version"] == "3"
    assert d.m.model_latest("sq8", "candidate")["version"] == "2"
    assert d.m.model_latest("sq8", "production")["version"] == "1"
    assert d.m.model_latest("none") is None
    assert [m["version"] for m in d.m.models_list()] == ["1", "2", "3"]
    assert [m["version"] for m in d.m.models_list(stage="archived")] == ["3"]
    assert d.m.model_get("sq8", "9") is None


def test_promote_refusals(d: Driver) -> None:
    _register(d, "1")
    assert d(c.promote_model("sq8", "2", "production"))["error"] == "not_found"
    assert d(c.promote_model("nope", "1", "production"))["error"] == "not_found"
    r = d(c.promote_model("sq8", "1", "staging"))
    assert r["error"] == "bad_command" and r["message"].startswith("args.stage: expected one of")


def test_fenced_model_writes(d: Driver) -> None:
    t = d(c.acquire_lock("publish:sq8", "n1", 30), now=100)["fence_token"]
    r = _register(d, "1", fence_lock="publish:sq8", fence_token=t)
    assert r["ok"]
    r = _register(d, "2", fence_lock="publish:sq8", fence_token=t + 1)
    assert r["error"] == "stale_fence" and r["fence_token"] == t
    r = d(c.promote_model("sq8", "1", "production", fence_lock="publish:sq8", fence_token=t))
    assert r["ok"]
    d(c.tick(), now=131)  # lock expired: the old token fences nothing any more
    r = d(c.promote_model("sq8", "1", "archived", fence_lock="publish:sq8", fence_token=t))
    assert r["error"] == "stale_fence" and r["fence_token"] is None
    r = d.m.apply({"v": 1, "op": "model.promote", "rid": "x", "now": 1, "args": {
        "name": "sq8", "version": "1", "stage": "archived", "fence": {"lock": "L"}}})
    assert r["error"] == "bad_command" and r["message"] == "args.fence.token: missing"


def test_versions_per_name_bounded_but_production_kept() -> None:
    d = Driver(max_versions_per_model=3)
    _register(d, "1")
    d(c.promote_model("sq8", "1", "production"))
    for v in ("2", "3", "4", "5"):
        _register(d, v)
    assert [m["version"] for m in d.m.models_list("sq8")] == ["1", "4", "5"]


# -- jobs ----------------------------------------------------------------------------------

def test_job_lifecycle(d: Driver) -> None:
    r = d(c.assign_job("j1", "n1", "train", {"epochs": 3}))
    assert r == {"ok": True, "job_id": "j1", "node_id": "n1", "status": "assigned",
                 "clock": 1000.0}
    assert d(c.assign_job("j1", "n2", "train"))["error"] == "already_exists"
    assert d(c.start_job("j1"), now=1001)["status"] == "running"
    assert d(c.start_job("j1", node_id="n1"))["ok"]  # idempotent
    r = d(c.complete_job("j1", {"loss": 0.1}, node_id="n1"), now=1002)
    assert r["ok"] and r["status"] == "completed"
    job = d.m.job_get("j1")
    assert job["result"] == {"loss": 0.1} and job["started_at"] == 1001.0
    assert job["finished_at"] == 1002.0 and job["config"] == {"epochs": 3}
    assert d(c.complete_job("j1"))["error"] == "invalid_state"
    assert d(c.fail_job("j1"))["error"] == "invalid_state"
    assert d(c.start_job("j1"))["error"] == "invalid_state"


def test_job_fail_and_refusals(d: Driver) -> None:
    d(c.assign_job("j1", "n1", "train"))
    r = d(c.fail_job("j1", "oom", node_id="n2"))
    assert r["error"] == "wrong_node" and r["node_id"] == "n1"
    assert d(c.fail_job("j1", "oom"))["status"] == "failed"
    assert d.m.job_get("j1")["error"] == "oom"
    for builder in (c.start_job, c.complete_job, c.fail_job):
        assert d(builder("nope"))["error"] == "not_found"


def test_job_views(d: Driver) -> None:
    d(c.assign_job("j1", "n1", "train"))
    d(c.assign_job("j2", "n1", "eval"))
    d(c.assign_job("j3", "n2", "train"))
    d(c.start_job("j2"))
    d(c.complete_job("j3"))
    assert [j["job_id"] for j in d.m.jobs_list(node_id="n1")] == ["j1", "j2"]
    assert [j["job_id"] for j in d.m.jobs_list(status="running")] == ["j2"]
    assert {n: [j["job_id"] for j in js] for n, js in d.m.jobs_by_node().items()} == {
        "n1": ["j1", "j2"]}
    assert d.m.job_stats() == {"assigned": 1, "running": 1, "completed": 1, "failed": 0,
                               "total": 3}


def test_release_node_fails_its_active_jobs(d: Driver) -> None:
    d(c.assign_job("j1", "n1", "train"))
    d(c.assign_job("j2", "n1", "train"))
    d(c.assign_job("j3", "n2", "train"))
    d(c.complete_job("j2"))
    r = d(c.release_node("n1"))
    assert r["jobs_failed"] == ["j1"]
    job = d.m.job_get("j1")
    assert job["status"] == "failed" and job["error"] == "node n1 released"
    assert d.m.job_get("j2")["status"] == "completed"
    assert d.m.job_get("j3")["status"] == "assigned"


def test_finished_jobs_compacted() -> None:
    d = Driver(max_finished_jobs=2, finished_jobs_ttl_s=50)
    for j in ("a", "b", "c"):
        d(c.assign_job(j, "n1", "t"), now=0)
    d(c.assign_job("live", "n1", "t"), now=0)
    for j in ("a", "b", "c"):
        d(c.complete_job(j), now=10)
    d(c.tick())
    assert d.m.job_get("a") is None and d.m.job_get("b") is not None
    d(c.tick(), now=60)
    assert d.m.job_get("b") is None and d.m.job_get("c") is None
    assert d.m.job_get("live")["status"] == "assigned"
