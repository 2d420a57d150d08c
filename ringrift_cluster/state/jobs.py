"""Job status: which node runs which job. assigned -> running -> completed | failed.

Jobs are replaced, never mutated (``freeze`` shares them); active jobs are indexed by node so
``release_node`` does not look at every job.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from ._common import (
    ALREADY_EXISTS,
    INVALID_STATE,
    MAX_LONG_TEXT,
    NOT_FOUND,
    WRONG_NODE,
    Args,
    Core,
    clone,
    ok,
    refuse,
)
from ._index import CowDict, Frozen

ASSIGNED, RUNNING, COMPLETED, FAILED = "assigned", "running", "completed", "failed"
STATUSES = (ASSIGNED, RUNNING, COMPLETED, FAILED)
ACTIVE = (ASSIGNED, RUNNING)


class Jobs:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.jobs = CowDict()
        self.finished: OrderedDict[str, None] = OrderedDict()  # finish order, oldest first
        self.active: dict[str, dict[str, None]] = {}  # derived: node id -> its active job ids

    # -- commands ---------------------------------------------------------------------------

    def assign(self, a: Args) -> dict[str, Any]:
        job_id = a.text("job_id")
        node_id = a.text("node_id")
        job_type = a.text("job_type")
        config = a.mapping("config", {})
        a.done()
        existing = self.jobs.get(job_id)
        if existing is not None:
            return refuse(ALREADY_EXISTS, f"job {job_id!r} already exists",
                          status=existing["status"], node_id=existing["node_id"])
        job = {
            "job_id": job_id,
            "node_id": node_id,
            "job_type": job_type,
            "config": config,
            "seq": self.core.next("job"),
            "status": ASSIGNED,
            "assigned_at": self.core.clock,
            "started_at": None,
            "finished_at": None,
            "result": None,
            "error": None,
        }
        self.jobs[job_id] = job
        self.active.setdefault(node_id, {})[job_id] = None
        return ok(job_id=job_id, node_id=node_id, status=ASSIGNED)

    def start(self, a: Args) -> dict[str, Any]:
        job_id, node_id = a.text("job_id"), a.text("node_id", None)
        a.done()
        job, refusal = self._active(job_id, node_id)
        if job is None:
            return refusal
        if job["status"] == ASSIGNED:
            self.jobs[job_id] = {**job, "status": RUNNING, "started_at": self.core.clock}
        return ok(job_id=job_id, status=RUNNING)

    def complete(self, a: Args) -> dict[str, Any]:
        job_id, node_id = a.text("job_id"), a.text("node_id", None)
        result = a.data("result")
        a.done()
        job, refusal = self._active(job_id, node_id)
        if job is None:
            return refusal
        self._finish(job, COMPLETED, result=result)
        return ok(job_id=job_id, status=COMPLETED)

    def fail(self, a: Args) -> dict[str, Any]:
        job_id, node_id = a.text("job_id"), a.text("node_id", None)
        error = a.text("error", "", max_len=MAX_LONG_TEXT, empty=True)
        a.done()
        job, refusal = self._active(job_id, node_id)
        if job is None:
            return refusal
        self._finish(job, FAILED, error=error)
        return ok(job_id=job_id, status=FAILED)

    # -- driven by the machine --------------------------------------------------------------

    def release_node(self, node_id: str) -> list[str]:
        """A node confirmed dead will never report on its active jobs: fail them."""
        mine = [self.jobs[j] for j in self.active.get(node_id, ())]
        mine.sort(key=lambda job: job["seq"])
        for job in mine:
            self._finish(job, FAILED, error=f"node {node_id} released")
        return [job["job_id"] for job in mine]

    def compact(self) -> None:
        limits = self.core.limits
        horizon = self.core.clock - limits.finished_jobs_ttl_s
        while self.finished:
            job_id = next(iter(self.finished))
            if (len(self.finished) <= limits.max_finished_jobs
                    and self.jobs[job_id]["finished_at"] > horizon):
                break
            self.finished.popitem(last=False)
            del self.jobs[job_id]

    # -- reads ------------------------------------------------------------------------------

    def get(self, job_id: str) -> dict[str, Any] | None:
        job = self.jobs.get(job_id)
        return clone(job) if job is not None else None

    def list_jobs(self, node_id: str | None = None,
                  status: str | None = None) -> list[dict[str, Any]]:
        return [clone(j) for j in list(self.jobs.values())
                if (node_id is None or j["node_id"] == node_id)
                and (status is None or j["status"] == status)]

    def by_node(self) -> dict[str, list[dict[str, Any]]]:
        """Active jobs grouped by node id."""
        out: dict[str, list[dict[str, Any]]] = {}
        for job in list(self.jobs.values()):
            if job["status"] in ACTIVE:
                out.setdefault(job["node_id"], []).append(clone(job))
        return out

    def stats(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for job in list(self.jobs.values()):
            counts[job["status"]] += 1
        counts["total"] = sum(counts.values())
        return counts

    # -- snapshot ---------------------------------------------------------------------------

    def freeze(self) -> tuple[Frozen, list[str]]:
        return self.jobs.freeze(), list(self.finished)

    @staticmethod
    def thaw(frozen: tuple[Frozen, list[str]], copy: Any = clone) -> dict[str, Any]:
        jobs, finished = frozen
        return {"jobs": jobs if copy is None else {j: copy(job) for j, job in jobs.items()},
                "finished": list(finished)}

    def restore(self, data: dict[str, Any]) -> None:
        self.jobs = CowDict((str(j), clone(job)) for j, job in data["jobs"].items())
        self.finished = OrderedDict((j, None) for j in data["finished"])
        self.active = {}
        for job_id, job in self.jobs.items():
            if job["status"] in ACTIVE:
                self.active.setdefault(job["node_id"], {})[job_id] = None
        if set(self.finished) != {j for j, job in self.jobs.items() if job["status"] not in ACTIVE}:
            raise ValueError("jobs: finished index does not match the jobs")

    # -- helpers ----------------------------------------------------------------------------

    def _active(self, job_id: str, node_id: str | None) -> tuple[Any, Any]:
        """The active job ``job_id``; when ``node_id`` is given it must be the assignee."""
        job = self.jobs.get(job_id)
        if job is None:
            return None, refuse(NOT_FOUND, f"job {job_id!r} not found")
        if node_id is not None and node_id != job["node_id"]:
            return None, refuse(WRONG_NODE, f"job {job_id!r} is assigned to {job['node_id']!r}",
                                node_id=job["node_id"])
        if job["status"] not in ACTIVE:
            return None, refuse(INVALID_STATE, f"job {job_id!r} is already {job['status']}",
                                status=job["status"])
        return job, None

    def _finish(self, job: dict[str, Any], status: str, result: Any = None,
                error: str | None = None) -> None:
        job_id, node_id = job["job_id"], job["node_id"]
        self.jobs[job_id] = {**job, "status": status, "finished_at": self.core.clock,
                             "result": result, "error": error}
        self.finished[job_id] = None
        mine = self.active[node_id]
        del mine[job_id]
        if not mine:
            del self.active[node_id]
