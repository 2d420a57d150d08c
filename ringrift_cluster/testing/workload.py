"""A client workload on the replicated-state HTTP API, and a Jepsen-style checker of its history.

:class:`StateWorkload` implements :class:`~ringrift_cluster.testing.nemesis.Workload`. During a
fault scenario a few client threads (bounded count and rate, every request with a timeout) talk
to random running nodes of a :class:`~ringrift_cluster.testing.netns.NetnsCluster` from the test
process:

- a *producer* adds work items, registers model versions and promotes some to production;
- *workers* (``worker-1``, ``worker-2``: fake worker names, never cluster members, so the
  leader's ``node.release`` of failed members never touches their claims or locks) claim items
  under long leases (600 s: no claim expires during a run), then start / renew / complete / fail
  some and abandon others (they stay claimed);
- *lockers* acquire, renew, re-acquire and release a few named locks with short TTLs, or let
  them expire.

Every operation is recorded as a :class:`Call`: op, args, request id, the node and outcome of
each attempt, wall-clock start and end, and the overall outcome: ``ok`` (200), ``refused`` (the
state machine said no: 4xx), ``not_applied`` (every attempt got 503 ``no_leader``) or ``unknown``
(a 503 ``timeout``, a client timeout, a connection error, or anything else: it may or may not
have happened). Ambiguous attempts are retried with the same ``request_id`` a bounded number of
times, as a real client resolves them (the machine applies one request id at most once).

:func:`~ringrift_cluster.testing.checks.state.check_history` (pure, in ``checks/``) judges the
recorded history plus the final state read after heal; (d) convergence (every Raft replica's
``/state/digest`` equal after heal, polled with a deadline) is checked by
:meth:`StateWorkload.check`, which also reads the final state (both through ``final_state.py``).

In ``bully`` consensus mode the elected leader alone holds the state and a new leader does not
have the old one's, so the history checks are no claim there: the workload reports them in its
summary (``expected_anomalies``), not as violations.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

from .checks.calls import NOT_APPLIED, OK, REFUSED, UNKNOWN, Attempt, Call, FinalState, acked_claims, compactable, write_history
from .checks.state import check_history
from .judge import judge_history
from .linearizability import Verdict
from .final_state import ClusterReader
from .netns import NetnsCluster
from .state_client import Client


# --------------------------------------------------------------------------------------------
# The workload


class StateWorkload:
    """Work queue, locks and model registry clients during a scenario, and their checker."""

    name = "state"

    def __init__(self, *, workers: int = 2, lockers: int = 2, locks: tuple[str, ...] = ("lock-a", "lock-b"),
                 long_locks: tuple[str, ...] = ("lock-long",), readers: int = 1,
                 pace_s: float = 0.25, lease_s: float = 600.0, lock_ttl_s: tuple[float, float] = (1.5, 3.0),
                 request_timeout_s: float = 6.0, attempts: int = 4, backoff_s: float = 0.5,
                 converge_s: float = 20.0, durable: bool | None = None, evidence_dir: str | None = None,
                 abandon: float = 0.15, model_every: int = 4, compacts: bool = False) -> None:
        self.workers, self.lockers, self.lock_names, self.readers = workers, lockers, locks, readers
        # A steady load (the soak's) abandons no claim and registers few models, so that the state
        # stops growing once its bounds are reached; ``compacts``: the cluster's retention bounds
        # are small enough that finished items may be compacted away before the final read.
        self.abandon, self.model_every, self.compacts = abandon, model_every, compacts
        # Locks whose TTL outlives the run: a lost grant, renewal or release of one is still
        # visible in the final state (short-TTL locks are long gone by then).
        self.long_locks = long_locks
        self.pace_s, self.lease_s, self.lock_ttl_s = pace_s, lease_s, lock_ttl_s
        self.request_timeout_s, self.attempts, self.backoff_s = request_timeout_s, attempts, backoff_s
        self.converge_s = converge_s
        self.durable = durable
        # Where the linearizability check writes its timeline and history when a run fails it
        # (default: the cluster's own directory).
        self.evidence_dir = evidence_dir
        self.linearizability: Verdict | None = None
        self.cluster: NetnsCluster | None = None
        self.token = ""
        self.calls: list[Call] = []
        self.final: FinalState | None = None
        self.anomalies: list[str] = []  # bully mode: what would be violations in a replicated mode
        self.errors: list[str] = []  # clients that crashed (a workload bug: always reported)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._seq = 0
        self._checked: list[str] | None = None
        self.tag = "run"
        self.work_type = "train"
        self.baseline_items: int | None = 0

    # -- Workload protocol -----------------------------------------------------------------------

    def start(self, cluster: NetnsCluster, rng: random.Random) -> None:
        self.cluster = cluster
        self.token = cluster.auth_token
        if self.durable is None:
            self.durable = str(cluster.settings.get("consensus_mode", "bully")) != "bully"
        # Our own randomness, derived from the scenario's without drawing from it (so the fault
        # schedule of a seed is the same with and without the workload).
        base = repr(rng.getstate())
        # Names carry a tag of this run, so that runs back to back on one cluster (a soak) never
        # share work ids, model names or locks; items that were there before are not ours.
        self.tag = f"{random.Random(base).getrandbits(24):06x}"
        self.lock_names = tuple(f"{self.tag}-{name}" for name in self.lock_names)
        # Our own work type too: workers never claim what an earlier run on this cluster left.
        self.work_type = f"{self.tag}-train"
        self.long_locks = tuple(f"{self.tag}-{name}" for name in self.long_locks)
        self.baseline_items = ClusterReader(cluster, self._stopping).count_items()
        roles = [("producer", self._producer)]
        roles += [(f"worker-{i + 1}", self._worker) for i in range(self.workers)]
        roles += [(f"locker-{i + 1}", self._locker) for i in range(self.lockers)]
        roles += [(f"reader-{i + 1}", self._reader) for i in range(self.readers)]
        for name, body in roles:
            client = Client(self, name, random.Random(f"{base}:{name}"))
            thread = threading.Thread(target=self._run, args=(body, client), name=f"workload-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=self.request_timeout_s * self.attempts + 10)

    def check(self) -> list[str]:
        if self._checked is not None:
            return list(self._checked)
        violations: list[str] = list(self.errors)
        found: list[str] = []
        try:
            # Every item is read on its own: a long run's thousands need more than the default.
            adds = sum(1 for c in self.calls if c.op == "work.add")
            work_ids = sorted({c.args["work_id"] for c in self.calls if c.op == "work.add"})
            model_names = sorted({c.args["name"] for c in self.calls if c.op == "model.register"})
            self.final = self._cluster_reader().read_final(work_ids, model_names, self.baseline_items,
                                                           timeout=30.0 + adds / 50)
            if self.compacts:
                self.final = dataclasses.replace(self.final, compacted=compactable(self.calls, self.final))
        except RuntimeError as e:
            violations.append(f"final state not readable: {e}")
        # Our history rules and the independent judge, a search for one linearization of each
        # key's history (without the final reads when the final state could not be read).
        evidence = Path(self.evidence_dir) if self.evidence_dir else Path(self.cluster.root) / "linearizability"
        found, self.linearizability = judge_history(self.calls, self.final, out_dir=evidence)
        if found:
            found.append(f"history: {write_history(self.calls, self.final, evidence / 'calls.jsonl')}")
        if self.durable:
            violations += found
        else:
            self.anomalies += found
        violations += self._cluster_reader().check_convergence(self.converge_s, self.durable)
        self._checked = violations
        return list(violations)

    def summary(self) -> dict[str, int]:
        counts = {"ops": len(self.calls), OK: 0, REFUSED: 0, UNKNOWN: 0, NOT_APPLIED: 0, "retried": 0,
                  "claims": len(acked_claims(self.calls)), "lock_grants": 0, "long_lock_grants": 0, "reads": 0}
        for c in self.calls:
            counts[c.outcome] = counts.get(c.outcome, 0) + 1
            counts["retried"] += len(c.attempts) > 1
            counts["lock_grants"] += c.op == "lock.acquire" and c.acked and not (c.result or {}).get("renewed")
            counts["long_lock_grants"] += (c.op == "lock.acquire" and c.acked and c.args["name"] in self.long_locks
                                           and not (c.result or {}).get("renewed"))
            counts["reads"] += c.op == "work.read" and c.outcome in (OK, REFUSED)
            if c.outcome == REFUSED:
                key = f"refused:{(c.result or {}).get('error')}"
                counts[key] = counts.get(key, 0) + 1
        counts["expected_anomalies"] = len(self.anomalies)
        verdict = self.linearizability
        if verdict is not None:  # keys and operations checked, keys with no linearization
            counts.update(lin_keys=verdict.keys, lin_ops=verdict.operations,
                          lin_failed=len(verdict.failed) + len(verdict.undecided))
        return counts

    def ready(self) -> bool:
        """The clients are under way (the runner waits for it before the first fault): some
        acknowledged writes, claims among them, so the fault hits a working workload."""
        with self._lock:
            calls = list(self.calls)
        return sum(c.acked and c.op != "work.read" for c in calls) >= 15 and len(acked_claims(calls)) >= 2

    def during(self, window: tuple[float, float] | None) -> dict[str, int]:
        """What the clients got done while the fault stood (calls overlapping ``window``): the
        acknowledged writes and the answered linearizable reads."""
        out = {"acked_writes": 0, "reads": 0}
        if window is None:
            return out
        start, end = window
        with self._lock:
            calls = list(self.calls)
        for c in calls:
            if c.end is None or c.end < start or c.start > end:
                continue
            if c.op == "work.read":
                out["reads"] += c.outcome in (OK, REFUSED)
            else:
                out["acked_writes"] += c.acked
        return out

    def _cluster_reader(self) -> ClusterReader:
        assert self.cluster is not None
        return ClusterReader(self.cluster, self._stopping)

    def history(self) -> str:
        """Every recorded call, one per line (for a failure report)."""
        with self._lock:
            return "\n".join(str(c) for c in self.calls)

    # -- Clients -----------------------------------------------------------------------------------

    def _new_call(self, client: str, op: str, args: dict[str, Any], rid: str) -> Call:
        with self._lock:
            self._seq += 1
            call = Call(self._seq, client, op, dict(args), rid, time.time())
            self.calls.append(call)
        return call

    def _run(self, body: Any, client: Client) -> None:
        try:
            body(client)
        except Exception as e:  # noqa: BLE001 - a client bug must show, not kill the scenario
            with self._lock:
                self.errors.append(f"client {client.name} crashed: {type(e).__name__}: {e}")
            raise

    def _pause(self, client: Client, low: float = 0.5, high: float = 1.5) -> bool:
        """Wait about ``pace_s``; False once stopping."""
        return not self._stopping.wait(self.pace_s * client.rng.uniform(low, high))

    def _producer(self, c: Client) -> None:
        n = 0
        while self._pause(c):
            n += 1
            work_id = f"{self.tag}-w{n:04d}"
            c.call("work.add", "POST", "/raft/work",
                   {"work_id": work_id, "work_type": self.work_type, "priority": c.rng.randint(0, 3),
                    "config": {"n": n, "marker": uuid.UUID(int=c.rng.getrandbits(128)).hex[:12]}})
            if n % self.model_every == 0:
                version = f"v{n}"
                # A new name every 600 items: a name holds at most 100 versions (the oldest
                # candidates are dropped past that), which a long run would otherwise pass.
                name = f"{self.tag}-model-{n % 3}" + (f"-{n // 600}" if n >= 600 else "")
                registered = c.call("model.register", "POST", "/raft/models",
                                    {"name": name, "version": version, "uri": f"s3://models/{n}",
                                     "checksum": f"sha256:{c.rng.getrandbits(64):016x}"})
                if registered.acked and c.rng.random() < 0.5:  # one production version per name
                    c.call("model.promote", "POST",
                           f"/raft/models/{urllib.parse.quote(name)}/{urllib.parse.quote(version)}/promote",
                           {"stage": "production"}, url_args={"name": name, "version": version})

    def _worker(self, c: Client) -> None:
        worker = c.name
        while self._pause(c):
            claim = c.call("work.claim", "POST", "/raft/work/claim",
                           {"node_id": worker, "work_types": [self.work_type], "lease_s": self.lease_s})
            item = (claim.result or {}).get("item") if claim.acked else None
            if not item:
                continue
            work_id, token = item["work_id"], claim.result["claim_token"]  # type: ignore[index]
            fence = {"claim_token": token}
            path = f"/raft/work/{urllib.parse.quote(work_id)}"
            steps = []
            if c.rng.random() < 0.5:
                steps.append(("work.start", "/start", {}))
            if c.rng.random() < 0.3:
                steps.append(("work.renew", "/renew", {"lease_s": self.lease_s}))
            r, kept = c.rng.random(), 1 - self.abandon  # completed : failed = 60 : 25
            if r < kept * 0.6 / 0.85:
                steps.append(("work.complete", "/complete", {"result": {"by": worker}}))
            elif r < kept:
                steps.append(("work.fail", "/fail", {"error": "synthetic", "retry": True}))
            # else: abandoned, stays claimed (its lease outlives the run)
            for op, suffix, extra in steps:
                if not self._pause(c, 0.2, 0.6):
                    return
                done = c.call(op, "POST", path + suffix, {**fence, **extra}, url_args={"work_id": work_id})
                if not done.acked:
                    break  # refused, unknown or not applied: leave the claim as it is

    def _reader(self, c: Client) -> None:
        """Linearizable reads of items whose add was acknowledged, during the whole run."""
        while self._pause(c):
            with self._lock:
                added = [x.args["work_id"] for x in self.calls if x.op == "work.add" and x.acked]
            if not added:
                continue
            work_id = c.rng.choice(added[-20:])
            c.call("work.read", "GET", f"/raft/work/{urllib.parse.quote(work_id)}?consistent=true", {},
                   url_args={"work_id": work_id})

    def _locker(self, c: Client) -> None:
        holder = f"worker-{c.name.rsplit('-', 1)[1]}"
        rounds = 0
        while self._pause(c):
            # Every third round (the first included) on a long lock: each run exercises them.
            long_turn = bool(self.long_locks) and rounds % 3 == 0
            rounds += 1
            name = c.rng.choice(self.long_locks if long_turn else self.lock_names)
            long = name in self.long_locks
            ttl = 600.0 if long else round(c.rng.uniform(*self.lock_ttl_s), 2)
            got = c.call("lock.acquire", "POST", f"/raft/lock/{name}", {"holder": holder, "ttl_s": ttl},
                         url_args={"name": name})
            if not got.acked:
                continue
            token = got.result["fence_token"]  # type: ignore[index]
            for _ in range(c.rng.randint(0, 2)):
                if not self._pause(c, 1.0, 3.0):
                    return
                if c.rng.random() < 0.25:  # re-acquiring one's own lock renews it, same token
                    renewed = c.call("lock.acquire", "POST", f"/raft/lock/{name}", {"holder": holder, "ttl_s": ttl},
                                     url_args={"name": name})
                else:
                    renewed = c.call("lock.renew", "POST", f"/raft/lock/{name}/renew",
                                     {"holder": holder, "fence_token": token, "ttl_s": ttl}, url_args={"name": name})
                if not renewed.acked:
                    break
                token = renewed.result["fence_token"]  # type: ignore[index]  # new if it had expired
            else:
                if long or c.rng.random() < 0.7:  # a long lock is always given back: it never expires
                    c.call("lock.release", "DELETE", f"/raft/lock/{name}", {"holder": holder, "fence_token": token},
                           url_args={"name": name})
                continue
            # A renewal failed or is unknown: the lock is lost or expires; nothing more to do.


__all__ = ["NOT_APPLIED", "OK", "REFUSED", "UNKNOWN", "Attempt", "Call", "FinalState", "StateWorkload", "check_history"]
