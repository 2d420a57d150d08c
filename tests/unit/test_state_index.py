"""The state machine's indexes against a plain reference scan, on random command sequences.

``Scan*`` below are the rules as they were before the indexes (scan every pending item on a
claim, every lease and lock on an expiry, every lease, lock, job or version of a node or a name),
kept here as the reference. Both machines apply the same commands; every result must be byte
for byte the same, and so must the snapshots. Midway the indexed machine is sometimes rebuilt
from its own snapshot (indexes are derived, rebuilt on restore) and frozen views are taken, which
must still show the state of their instant at the end.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ringrift_cluster.state import Limits, StateMachine, commands as c
from ringrift_cluster.state._common import Args, ok
from ringrift_cluster.state._index import CowDict, KeyedHeap
from ringrift_cluster.state.jobs import ACTIVE, Jobs
from ringrift_cluster.state.locks import Locks
from ringrift_cluster.state.models import ARCHIVED, PRODUCTION, STAGES, Models
from ringrift_cluster.state.work_queue import LEASED, PENDING, WorkQueue

LIMITS = Limits(dedup_max_entries=40, dedup_ttl_s=60.0, max_finished_work=4, finished_work_ttl_s=50.0,
                max_finished_jobs=3, finished_jobs_ttl_s=40.0, max_versions_per_model=3)


class ScanWorkQueue(WorkQueue):
    def claim(self, a: Args) -> dict[str, Any]:
        node_id = a.text("node_id")
        capabilities = set(a.texts("capabilities", []))
        work_types = set(a.texts("work_types", []))
        lease_s = a.duration("lease_s", None)
        a.done()
        best = None
        for item in list(self.items.values()):
            if item["status"] != PENDING:
                continue
            if work_types and item["work_type"] not in work_types:
                continue
            if not capabilities.issuperset(item["capabilities"]):
                continue
            if best is None or (-item["priority"], item["seq"]) < (-best["priority"], best["seq"]):
                best = item
        if best is None:
            return ok(item=None, claim_token=None, expires_at=None)
        return self.take(best["work_id"], node_id, lease_s)  # its queue entry goes stale, unread

    def sweep(self) -> list[str]:
        clock = self.core.clock
        due = [i for i in list(self.items.values()) if i["status"] in LEASED and i["expires_at"] <= clock]
        due.sort(key=lambda item: (item["expires_at"], item["seq"]))
        for item in due:
            self._count_failure(self.items[item["work_id"]], "lease expired", retry=True)
        return [item["work_id"] for item in due]

    def release_node(self, node_id: str) -> list[str]:
        mine = [i for i in list(self.items.values()) if i["status"] in LEASED and i["claimed_by"] == node_id]
        mine.sort(key=lambda item: item["seq"])
        for item in mine:
            self._requeue(item, f"node {node_id} released")
        return [item["work_id"] for item in mine]


class ScanLocks(Locks):
    def sweep(self) -> list[str]:
        due = sorted(name for name, lock in self.locks.items() if lock["expires_at"] <= self.core.clock)
        for name in due:
            self._drop(name)
        return due

    def release_node(self, node_id: str) -> list[str]:
        mine = sorted(name for name, lock in self.locks.items()
                      if lock["holder"] == node_id or lock["holder"].startswith(node_id + ":"))
        for name in mine:
            self._drop(name)
        return mine


class ScanJobs(Jobs):
    def release_node(self, node_id: str) -> list[str]:
        mine = [j for j in self.jobs.values() if j["node_id"] == node_id and j["status"] in ACTIVE]
        mine.sort(key=lambda job: job["seq"])
        for job in mine:
            self._finish(job, "failed", error=f"node {node_id} released")
        return [job["job_id"] for job in mine]


class ScanModels(Models):
    def promote(self, a: Args, check_fence: Any) -> dict[str, Any]:
        name, version, stage = a.text("name"), a.text("version"), a.choice("stage", STAGES)
        refusal = check_fence(a.sub("fence"))
        a.done()
        if refusal is not None:
            return refusal
        versions = self.models.get(name)
        record = None if versions is None else versions.get(version)
        if record is None:
            return {"ok": False, "error": "not_found", "message": f"model {name!r} version {version!r} not found"}
        clock, archived = self.core.clock, []
        if stage == PRODUCTION:
            for other in list(versions.values()):
                if other["stage"] == PRODUCTION and other["version"] != version:
                    versions[other["version"]] = {**other, "stage": ARCHIVED, "promoted_at": clock}
                    archived.append(other["version"])
        changed = record["stage"] != stage
        if changed:
            record = versions[version] = {**record, "stage": stage, "promoted_at": clock}
        return ok(model=dict(record), changed=changed, archived=archived)


def scan_machine(limits: Limits = LIMITS) -> StateMachine:
    m = StateMachine(limits)
    m.work, m.locks, m.jobs, m.models = ScanWorkQueue(m.core), ScanLocks(m.core), ScanJobs(m.core), ScanModels(m.core)
    return m


# -- random command sequences --------------------------------------------------------------------

WORK = [f"w{i}" for i in range(10)]
NODES = ["n0", "n1", "n2"]
HOLDERS = ["n0", "n0:j", "n1", "n1:x:y", "n2"]
caps = st.lists(st.sampled_from(["gpu", "cuda", "big"]), max_size=3)
types = st.lists(st.sampled_from(["a", "b", "c"]), max_size=2)
lease = st.one_of(st.none(), st.sampled_from([1.0, 4.0, 30.0]))
token = st.sampled_from([None, None, None, 1, 2, 9])  # None: the current token, if any

add = st.tuples(st.just("add"), st.sampled_from(WORK), st.sampled_from("abc"), st.integers(-2, 2), caps,
                st.integers(1, 3), st.sampled_from([2.0, 10.0, 100.0]))
claim = st.tuples(st.just("claim"), st.sampled_from(NODES), st.one_of(st.just(["big", "cuda", "gpu"]), caps),
                  st.one_of(st.just([]), types), lease)
# Which leased item (by position) a start/renew/complete/fail is about.
settle = st.tuples(st.sampled_from(["start", "renew", "complete", "fail", "fail_final"]), st.integers(0, 9), token)
step = st.one_of(
    claim, settle, add,
    st.tuples(st.just("lock"), st.sampled_from("pqrs"), st.sampled_from(HOLDERS), st.sampled_from([1.0, 5.0, 20.0])),
    st.tuples(st.sampled_from(["lock_renew", "unlock"]), st.sampled_from("pqrs"), token),
    st.tuples(st.just("register"), st.sampled_from(["m", "k"]), st.integers(0, 5)),
    st.tuples(st.just("promote"), st.sampled_from(["m", "k"]), st.integers(0, 5), st.sampled_from(STAGES)),
    st.tuples(st.just("assign"), st.sampled_from(["j0", "j1", "j2", "j3"]), st.sampled_from(NODES)),
    st.tuples(st.sampled_from(["job_start", "job_complete", "job_fail"]), st.sampled_from(["j0", "j1", "j2", "j3"])),
    st.tuples(st.sampled_from(["release", "tick"]), st.sampled_from(NODES + ["n1:x"])),
    st.tuples(st.sampled_from(["restore", "freeze"])),
)
dt = st.sampled_from([0.0, 0.0, 0.5, 2.0, 7.0, -3.0])
steps = st.tuples(st.lists(st.tuples(add, dt), min_size=3, max_size=12),
                  st.lists(st.tuples(step, dt), min_size=10, max_size=120)).map(lambda p: p[0] + p[1])


def command(s: tuple, m: StateMachine, rid: str, now: float) -> dict[str, Any] | None:
    kind = s[0]
    if kind == "add":
        return c.add_work(s[1], s[2], priority=s[3], capabilities=s[4], max_attempts=s[5], timeout_s=s[6],
                          rid=rid, now=now)
    if kind == "claim":
        return c.claim_work(s[1], capabilities=s[2], work_types=s[3], lease_s=s[4], rid=rid, now=now)
    if kind in ("start", "renew", "complete", "fail", "fail_final"):
        leased = [w for w, i in m.work.items.items() if i["status"] in LEASED]
        work_id = leased[s[1] % len(leased)] if leased else WORK[s[1]]
        item = m.work.items.get(work_id)
        tok = s[2] if s[2] is not None else (item or {}).get("claim_token") or 1
        if kind == "start":
            return c.start_work(work_id, tok, rid=rid, now=now)
        if kind == "renew":
            return c.renew_work(work_id, tok, rid=rid, now=now)
        if kind == "complete":
            return c.complete_work(work_id, tok, {"r": work_id}, rid=rid, now=now)
        return c.fail_work(work_id, tok, "e", retry=kind == "fail", rid=rid, now=now)
    if kind == "lock":
        return c.acquire_lock(s[1], s[2], s[3], rid=rid, now=now)
    if kind in ("lock_renew", "unlock"):
        lock = m.locks.locks.get(s[1]) or {"holder": "n0", "fence_token": 1}
        tok = s[2] if s[2] is not None else lock["fence_token"]
        build = c.renew_lock if kind == "lock_renew" else c.release_lock
        return build(s[1], lock["holder"], tok, rid=rid, now=now)
    if kind == "register":
        return c.register_model(s[1], f"v{s[2]}", "u", f"sum{s[2]}", rid=rid, now=now)
    if kind == "promote":
        versions = list(m.models.models.get(s[1], {}).keys()) or [f"v{s[2]}"]
        return c.promote_model(s[1], versions[s[2] % len(versions)], s[3], rid=rid, now=now)
    if kind == "assign":
        return c.assign_job(s[1], s[2], "t", rid=rid, now=now)
    if kind.startswith("job_"):
        build = {"job_start": c.start_job, "job_complete": c.complete_job, "job_fail": c.fail_job}[kind]
        return build(s[1], rid=rid, now=now)
    if kind == "release":
        return c.release_node(s[1], rid=rid, now=now)
    if kind == "tick":
        return c.tick(rid=rid, now=now)
    return None


def text(value: Any) -> str:
    return json.dumps(value)  # key order included: byte-identical means the same order too


def check_indexes(m: StateMachine) -> None:
    items = list(m.work.items.values())
    leased = [i for i in items if i["status"] in LEASED]
    assert m.work.next_expiry == min((i["expires_at"] for i in leased), default=None)
    assert len(m.work.queue) == sum(i["status"] == PENDING for i in items)
    assert m.work_stats() == {**{s: sum(i["status"] == s for i in items) for s in m.work.counts},
                              "total": len(items)}
    assert m.locks.next_expiry == min((lk["expires_at"] for lk in m.locks.locks.values()), default=None)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_indexed_machine_matches_the_reference_scan(plan: list) -> None:
    fast, ref = StateMachine(LIMITS), scan_machine()
    views: list[tuple[Any, str]] = []
    now = 1000.0
    for i, (s, dt) in enumerate(plan):
        now = max(0.0, now + dt)
        if s[0] == "restore":
            fast = StateMachine.from_snapshot(fast.snapshot())
            continue
        if s[0] == "freeze":
            views.append((fast.freeze(), text(ref.snapshot())))
            continue
        cmd = command(s, ref, f"r{i}", now)
        got, want = fast.apply(cmd), ref.apply(cmd)
        assert text(got) == text(want), (s, got, want)
        assert got.get("error") != "internal", got
        check_indexes(fast)
    assert text(fast.snapshot()) == text(ref.snapshot())
    for view, then in views:  # later commands never show in an earlier view
        assert text(view.snapshot()) == then
        assert text(view.snapshot(copy=False)) == then


def test_claim_order_matches_the_scan_on_a_large_mixed_queue() -> None:
    """Many ties in priority, mixed capabilities and types: the first 300 claims agree."""
    fast, ref = StateMachine(), scan_machine(Limits())
    for i in range(600):
        cmd = c.add_work(f"w{i}", "abc"[i % 3], priority=(i * 7) % 5, capabilities=[["gpu"], [], ["gpu", "big"]][i % 3][:],
                         rid=f"a{i}", now=10.0)
        assert fast.apply(cmd) == ref.apply(cmd)
    filters = [([], []), (["gpu"], []), (["gpu", "big"], ["a", "c"]), ([], ["b"]), (["big"], ["a"])]
    for i in range(300):
        capabilities, work_types = filters[i % len(filters)]
        cmd = c.claim_work(f"n{i % 4}", capabilities=capabilities, work_types=work_types, rid=f"c{i}", now=11.0)
        got, want = fast.apply(cmd), ref.apply(cmd)
        assert text(got) == text(want)
    assert text(fast.snapshot()) == text(ref.snapshot())


@given(st.lists(st.tuples(st.sampled_from(["set", "discard", "pop"]), st.sampled_from("abcdefgh"),
                          st.integers(0, 20))))
def test_keyed_heap_pops_in_key_order(ops: list) -> None:
    heap, model = KeyedHeap(), {}
    for op, ident, key in ops:
        if op == "set":
            heap.set(ident, key)
            model[ident] = key
        elif op == "discard":
            heap.discard(ident)
            model.pop(ident, None)
        elif model:
            want = min((k, i) for i, k in model.items())
            assert heap.pop() == want
            del model[want[1]]
        assert heap.peek() == (min(((k, i) for i, k in model.items()), default=None))
    assert len(heap) == len(model)


@given(st.lists(st.tuples(st.sampled_from(["set", "del", "freeze"]), st.integers(0, 1500), st.integers())))
def test_cow_dict_behaves_like_a_dict_and_views_stay_put(ops: list) -> None:
    cow, plain, views = CowDict(), {}, []
    for op, key, value in ops:
        k = f"k{key}"
        if op == "set":
            cow[k] = plain[k] = value
        elif op == "del" and k in plain:
            del cow[k], plain[k]
        elif op == "freeze":
            views.append((cow.freeze(), list(plain.items())))
    assert list(cow.items()) == list(plain.items()) and len(cow) == len(plain)
    if plain:
        assert cow.first() == next(iter(plain.items()))  # the oldest, as a dict iterates
    else:
        with pytest.raises(KeyError):
            cow.first()
    for view, then in views:
        assert list(view.items()) == then


def test_cow_dict_chunks_hold_many_keys_and_views_survive_bulk_writes() -> None:
    cow = CowDict((f"k{i}", i) for i in range(5000))
    view = cow.freeze()
    for i in range(0, 5000, 3):
        del cow[f"k{i}"]
    for i in range(5000, 6000):
        cow[f"k{i}"] = -i
    cow["k1"] = "changed"
    assert dict(view.items()) == {f"k{i}": i for i in range(5000)}
    assert cow["k1"] == "changed" and "k3" not in cow and cow["k5999"] == -5999
