"""Builders for state-machine commands: plain dicts with the version and a fresh request id.

Builders live outside the machine, so they may draw a random request id. ``now`` is left out
unless given: the proposer stamps it (``stamp(cmd, time.time())``) right before submitting, and
keeps the same ``rid`` when it retries. Arguments left as None are omitted, so the machine's
defaults apply.
"""

from __future__ import annotations

import uuid
from typing import Any, Iterable, Mapping

VERSION = 1


def command(op: str, args: Mapping[str, Any] | None = None, *, rid: str | None = None,
            now: float | None = None) -> dict[str, Any]:
    cmd: dict[str, Any] = {
        "v": VERSION,
        "op": op,
        "rid": rid or uuid.uuid4().hex,
        "args": {k: v for k, v in (args or {}).items() if v is not None},
    }
    if now is not None:
        cmd["now"] = float(now)
    return cmd


def stamp(cmd: Mapping[str, Any], now: float) -> dict[str, Any]:
    """A copy of ``cmd`` carrying the proposer's wall-clock ``now``."""
    return {**cmd, "now": float(now)}


def _list(values: Iterable[str] | None) -> list[str] | None:
    return None if values is None else list(values)


def _dict(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if value is None else dict(value)


def _fence(lock: str | None, token: int | None) -> dict[str, Any] | None:
    return None if lock is None else {"lock": lock, "token": token}


# -- work queue ------------------------------------------------------------------------------

def add_work(work_id: str, work_type: str, *, priority: int | None = None,
             config: Mapping[str, Any] | None = None, capabilities: Iterable[str] | None = None,
             max_attempts: int | None = None, timeout_s: float | None = None,
             rid: str | None = None, now: float | None = None) -> dict[str, Any]:
    return command("work.add", {
        "work_id": work_id, "work_type": work_type, "priority": priority, "config": _dict(config),
        "capabilities": _list(capabilities), "max_attempts": max_attempts, "timeout_s": timeout_s,
    }, rid=rid, now=now)


def claim_work(node_id: str, *, capabilities: Iterable[str] | None = None,
               work_types: Iterable[str] | None = None, lease_s: float | None = None,
               rid: str | None = None, now: float | None = None) -> dict[str, Any]:
    return command("work.claim", {
        "node_id": node_id, "capabilities": _list(capabilities),
        "work_types": _list(work_types), "lease_s": lease_s,
    }, rid=rid, now=now)


def start_work(work_id: str, claim_token: int, *, rid: str | None = None,
               now: float | None = None) -> dict[str, Any]:
    return command("work.start", {"work_id": work_id, "claim_token": claim_token}, rid=rid, now=now)


def renew_work(work_id: str, claim_token: int, *, lease_s: float | None = None,
               rid: str | None = None, now: float | None = None) -> dict[str, Any]:
    return command("work.renew", {"work_id": work_id, "claim_token": claim_token,
                                  "lease_s": lease_s}, rid=rid, now=now)


def complete_work(work_id: str, claim_token: int, result: Any = None, *, rid: str | None = None,
                  now: float | None = None) -> dict[str, Any]:
    return command("work.complete", {"work_id": work_id, "claim_token": claim_token,
                                     "result": result}, rid=rid, now=now)


def fail_work(work_id: str, claim_token: int, error: str = "", *, retry: bool = True,
              rid: str | None = None, now: float | None = None) -> dict[str, Any]:
    return command("work.fail", {"work_id": work_id, "claim_token": claim_token, "error": error,
                                 "retry": retry}, rid=rid, now=now)


def expire_work(*, rid: str | None = None, now: float | None = None) -> dict[str, Any]:
    return command("work.expire", rid=rid, now=now)


# -- jobs ------------------------------------------------------------------------------------

def assign_job(job_id: str, node_id: str, job_type: str, config: Mapping[str, Any] | None = None,
               *, rid: str | None = None, now: float | None = None) -> dict[str, Any]:
    return command("job.assign", {"job_id": job_id, "node_id": node_id, "job_type": job_type,
                                  "config": _dict(config)}, rid=rid, now=now)


def start_job(job_id: str, *, node_id: str | None = None, rid: str | None = None,
              now: float | None = None) -> dict[str, Any]:
    return command("job.start", {"job_id": job_id, "node_id": node_id}, rid=rid, now=now)


def complete_job(job_id: str, result: Any = None, *, node_id: str | None = None,
                 rid: str | None = None, now: float | None = None) -> dict[str, Any]:
    return command("job.complete", {"job_id": job_id, "result": result, "node_id": node_id},
                   rid=rid, now=now)


def fail_job(job_id: str, error: str = "", *, node_id: str | None = None, rid: str | None = None,
             now: float | None = None) -> dict[str, Any]:
    return command("job.fail", {"job_id": job_id, "error": error, "node_id": node_id},
                   rid=rid, now=now)


# -- models ----------------------------------------------------------------------------------

def register_model(name: str, version: str, uri: str, checksum: str,
                   metrics: Mapping[str, Any] | None = None, *, fence_lock: str | None = None,
                   fence_token: int | None = None, rid: str | None = None,
                   now: float | None = None) -> dict[str, Any]:
    return command("model.register", {
        "name": name, "version": str(version), "uri": uri, "checksum": checksum,
        "metrics": _dict(metrics), "fence": _fence(fence_lock, fence_token),
    }, rid=rid, now=now)


def promote_model(name: str, version: str, stage: str, *, fence_lock: str | None = None,
                  fence_token: int | None = None, rid: str | None = None,
                  now: float | None = None) -> dict[str, Any]:
    return command("model.promote", {"name": name, "version": str(version), "stage": stage,
                                     "fence": _fence(fence_lock, fence_token)}, rid=rid, now=now)


# -- locks -----------------------------------------------------------------------------------

def acquire_lock(name: str, holder: str, ttl_s: float | None = None, *, rid: str | None = None,
                 now: float | None = None) -> dict[str, Any]:
    return command("lock.acquire", {"name": name, "holder": holder, "ttl_s": ttl_s},
                   rid=rid, now=now)


def renew_lock(name: str, holder: str, fence_token: int, ttl_s: float | None = None, *,
               rid: str | None = None, now: float | None = None) -> dict[str, Any]:
    return command("lock.renew", {"name": name, "holder": holder, "fence_token": fence_token,
                                  "ttl_s": ttl_s}, rid=rid, now=now)


def release_lock(name: str, holder: str, fence_token: int, *, rid: str | None = None,
                 now: float | None = None) -> dict[str, Any]:
    return command("lock.release", {"name": name, "holder": holder, "fence_token": fence_token},
                   rid=rid, now=now)


# -- cluster ---------------------------------------------------------------------------------

def release_node(node_id: str, *, rid: str | None = None,
                 now: float | None = None) -> dict[str, Any]:
    """What the leader proposes when membership confirms ``node_id`` dead."""
    return command("node.release", {"node_id": node_id}, rid=rid, now=now)


def tick(*, rid: str | None = None, now: float | None = None) -> dict[str, Any]:
    """Advance the replicated clock (expiring leases); also a cheap linearizable no-op read."""
    return command("tick", rid=rid, now=now)


def import_state(snapshot: Mapping[str, Any], *, seal: str | None = None, base: Mapping[str, Any] | None = None,
                 rid: str | None = None, now: float | None = None) -> dict[str, Any]:
    """Replace the state with ``snapshot`` if its lineage is ahead of ours, then seal it;
    ``base`` (the lineage we expect to replace) makes it a compare-and-set."""
    args: dict[str, Any] = {"snapshot": dict(snapshot)}
    if seal is not None:
        args["seal"] = seal
    if base is not None:
        args["base"] = dict(base)
    return command("state.import", args, rid=rid, now=now)


def set_limits(limits: Mapping[str, Any], *, rid: str | None = None, now: float | None = None) -> dict[str, Any]:
    """Change the state's retention bounds (any subset of ``Limits``; what the leader proposes
    when the configured ones differ)."""
    return command("state.limits", dict(limits), rid=rid, now=now)


def seal(seal_id: str, *, rid: str | None = None, now: float | None = None) -> dict[str, Any]:
    """A new leader period begins: after it, the leader serves writes (see ``lineage.py``)."""
    return command("state.seal", {"id": seal_id}, rid=rid, now=now)
