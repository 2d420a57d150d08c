"""The replicated state machine: one pure, deterministic ``apply(command) -> result``.

A command is plain data: ``{"v": 1, "op": "work.add", "rid": "<request id>", "now": <proposer
wall seconds>, "args": {...}}``. The machine keeps ``clock = max(clock, now)`` and decides every
expiry on that clock; it reads no clock, draws no random number and does no I/O, so every replica
applying the same commands ends in the same state. ``apply`` never raises: a bad command yields
``{"ok": False, "error": <code>, "message": ...}``.

Each command with a valid envelope runs in this order: advance the clock, expire passed leases
(work claims and locks), answer from the dedup table if ``rid`` was seen, else dispatch and
remember the result under ``rid``; finally compact finished history and the dedup table, so the
state is within its limits after every command.

Not thread-safe: the owner (Raft or legacy adapter) must not read while another thread applies.
``freeze()`` is the exception's way out: it costs the owner O(n / 512) and returns a view of the
state that any thread may turn into a snapshot later, while applies go on.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any, Callable

from ..errors import ConfigError
from ..heap import FREEZER
from ._common import (
    BAD_COMMAND,
    INTERNAL,
    MAX_INT,
    MAX_TIME,
    RID_CONFLICT,
    STALE_IMPORT,
    UNKNOWN_OP,
    UNSUPPORTED_VERSION,
    Args,
    BadArg,
    Core,
    Limits,
    SnapshotError,
    clone,
    describe,
    ok,
    refuse,
)
from ._index import CowDict
from .jobs import Jobs
from .lineage import MAX_SEALS, Lineage, is_newer, of_snapshot
from .locks import Locks
from .models import Models
from .frozen import FrozenState
from .work_queue import WorkQueue

VERSION = 1
SNAPSHOT_FORMAT = 1
MAX_RID = 128
_ENVELOPE = ("v", "op", "rid", "now", "args")


class StateMachine:
    """Work queue, job status, model registry and training locks behind one ``apply``."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.core = Core(limits if limits is not None else Limits())
        self.work = WorkQueue(self.core)
        self.jobs = Jobs(self.core)
        self.models = Models(self.core)
        self.locks = Locks(self.core)
        self.dedup = CowDict()  # rid -> entry, oldest first
        self.seals: list[tuple[str, int]] = []  # (id, changes): the leader periods it went through (lineage.py)
        self._swept: tuple[list[str], list[str]] = ([], [])  # what this command's sweep expired
        self._applies = 0

    @property
    def limits(self) -> Limits:
        return self.core.limits

    @property
    def clock(self) -> float:
        return self.core.clock

    # -- the one entry point ----------------------------------------------------------------

    def apply(self, command: Any) -> dict[str, Any]:
        try:
            return self._apply(command)
        except Exception as exc:  # a bug must become a result, never wedge the log
            try:
                message = f"{type(exc).__name__}: {exc}"[:500]
            except Exception:
                message = type(exc).__name__
            return refuse(INTERNAL, message)

    def _apply(self, command: Any) -> dict[str, Any]:
        envelope = self._envelope(command)
        if "error" in envelope:
            return envelope  # nothing changes for a command we cannot even identify
        op, rid, now, args = envelope["op"], envelope["rid"], envelope["now"], envelope["args"]
        core = self.core
        core.clock = max(core.clock, now)
        self._swept = (self.work.sweep(), self.locks.sweep())
        self._prune_dedup()
        seen = self.dedup.get(rid)
        if seen is None:
            try:
                result = _HANDLERS[op](self, Args(args))
            except BadArg as bad:
                result = refuse(BAD_COMMAND, str(bad))
            if result.get("ok") and op not in _NOT_CHANGES:
                self.core.next("change")
            result["clock"] = self.core.clock
            self.dedup[rid] = {"at": self.core.clock, "op": op, "result": result}
        elif seen["op"] != op:
            result = refuse(RID_CONFLICT, f"rid: {rid!r} was already used for {seen['op']}")
        else:
            result = seen["result"]
        self.work.compact()
        self.jobs.compact()
        self._prune_dedup()
        self._applies += 1
        if not self._applies & 255:
            FREEZER.applied(self.size(), 256)
        return clone(result)

    def size(self) -> int:
        """Records held: work items, jobs, model versions, locks and remembered commands."""
        return (len(self.work.items) + len(self.jobs.jobs) + sum(len(v) for v in self.models.models.values())
                + len(self.locks.locks) + len(self.dedup))

    def _envelope(self, command: Any) -> dict[str, Any]:
        """The checked envelope fields, or a refusal (recognisable by its "error" key)."""
        if not isinstance(command, dict):
            return refuse(BAD_COMMAND, f"command: expected an object, got {describe(command)}")
        v = command.get("v")
        if v is None:
            return refuse(BAD_COMMAND, "v: missing")
        if isinstance(v, bool) or not isinstance(v, int) or v != VERSION:
            return refuse(UNSUPPORTED_VERSION,
                          f"v: version {describe(v)} is not supported (supported: {VERSION})")
        op = command.get("op")
        if not isinstance(op, str):
            return refuse(BAD_COMMAND, f"op: expected a string, got {describe(op)}")
        if op not in _HANDLERS:
            return refuse(UNKNOWN_OP, f"op: unknown operation {describe(op)}")
        rid = command.get("rid")
        if not isinstance(rid, str) or not rid or len(rid) > MAX_RID:
            return refuse(BAD_COMMAND,
                          f"rid: expected a non-empty string of at most {MAX_RID} characters, "
                          f"got {describe(rid)}")
        now = command.get("now")
        if now is None:
            return refuse(BAD_COMMAND, "now: missing (the proposer stamps wall seconds)")
        try:
            now_ok = not isinstance(now, bool) and isinstance(now, (int, float)) and \
                math.isfinite(now) and 0 <= now <= MAX_TIME
        except OverflowError:
            now_ok = False
        if not now_ok:
            return refuse(BAD_COMMAND, f"now: expected seconds in [0, {MAX_TIME:g}], "
                                       f"got {describe(now)}")
        args = command.get("args")
        if args is None:
            args = {}
        if not isinstance(args, dict):
            return refuse(BAD_COMMAND, f"args: expected an object, got {describe(args)}")
        for key in command:
            if key not in _ENVELOPE:
                return refuse(BAD_COMMAND, f"{describe(key)}: unknown field")
        return {"op": op, "rid": str.__str__(rid), "now": float(now), "args": args}

    def _prune_dedup(self) -> None:
        limits = self.core.limits
        horizon = self.core.clock - limits.dedup_ttl_s
        while self.dedup:
            oldest, entry = self.dedup.first()
            if len(self.dedup) <= limits.dedup_max_entries and entry["at"] > horizon:
                break
            del self.dedup[oldest]

    # -- ops that span several parts --------------------------------------------------------

    def _set_limits(self, a: Args) -> dict[str, Any]:
        """Change the retention bounds (any subset of ``Limits``); what they no longer allow is
        compacted right after this command, as after every command."""
        values = self.core.limits.to_dict()
        for f in fields(Limits):
            if f.type == "int":
                values[f.name] = a.integer(f.name, values[f.name], lo=1, hi=MAX_INT)
            else:
                values[f.name] = a.duration(f.name, values[f.name])
        a.done()
        self.core.limits = Limits(**values)
        return ok(limits=self.core.limits.to_dict())

    def _release_node(self, a: Args) -> dict[str, Any]:
        node_id = a.text("node_id")
        a.done()
        return ok(node_id=node_id, requeued=self.work.release_node(node_id),
                  locks_released=self.locks.release_node(node_id),
                  jobs_failed=self.jobs.release_node(node_id))

    def _tick(self, a: Args) -> dict[str, Any]:
        a.done()
        return ok(expired_work=list(self._swept[0]), expired_locks=list(self._swept[1]))

    def _import(self, a: Args) -> dict[str, Any]:
        """Replace the whole state with a snapshot (from another mode, a departing leader or a
        member's store) if its lineage is ahead of ours (``lineage.py``), then append ``seal``.

        ``base`` (our lineage as the proposer saw it) makes it a compare-and-set: if anything was
        applied since, the import is refused rather than overwrite it."""
        snapshot = a.opaque("snapshot")
        seal = a.text("seal", None)
        base = a.data("base")
        a.done()
        if not isinstance(snapshot, dict):
            return refuse(BAD_COMMAND, "snapshot: expected a state snapshot")
        try:
            theirs = of_snapshot(snapshot)
            expected = Lineage.from_dict(base) if base is not None else None
        except ValueError as exc:
            return refuse(BAD_COMMAND, f"snapshot: {exc}")
        ours = self.lineage()
        if expected is not None and expected != ours:
            return refuse(STALE_IMPORT, f"base: the state moved on ({ours}) since {expected} was seen")
        if not is_newer(theirs, ours):
            return refuse(STALE_IMPORT, f"snapshot: {theirs} is not ahead of ours ({ours})")
        try:
            self.restore(snapshot)
        except SnapshotError as exc:
            return refuse(BAD_COMMAND, f"snapshot: {exc}")
        if seal:
            self._append_seal(seal)
        return ok(imported=True, changes=theirs.changes, replaced=ours.changes, lineage=self.lineage().to_dict())

    def _seal(self, a: Args) -> dict[str, Any]:
        """A new leader period begins here (see ``lineage.py``)."""
        seal = a.text("id")
        a.done()
        self._append_seal(seal)
        return ok(lineage=self.lineage().to_dict())

    def _append_seal(self, seal: str) -> None:
        self.seals = (self.seals + [(seal, self.core.counters["change"])])[-MAX_SEALS:]

    def lineage(self) -> Lineage:
        return Lineage(tuple(self.seals), self.core.counters["change"])

    def _expire_work(self, a: Args) -> dict[str, Any]:
        a.done()
        return ok(expired=list(self._swept[0]))

    # -- local reads (state as of the last applied command; copies, safe to mutate) ----------

    def work_stats(self) -> dict[str, int]:
        return self.work.stats()

    def work_list(self, status: str | None = None, node_id: str | None = None,
                  limit: int | None = None) -> list[dict[str, Any]]:
        return self.work.list_items(status, node_id, limit)

    def work_get(self, work_id: str) -> dict[str, Any] | None:
        return self.work.get(work_id)

    def job_get(self, job_id: str) -> dict[str, Any] | None:
        return self.jobs.get(job_id)

    def jobs_list(self, node_id: str | None = None,
                  status: str | None = None) -> list[dict[str, Any]]:
        return self.jobs.list_jobs(node_id, status)

    def jobs_by_node(self) -> dict[str, list[dict[str, Any]]]:
        return self.jobs.by_node()

    def job_stats(self) -> dict[str, int]:
        return self.jobs.stats()

    def models_list(self, name: str | None = None,
                    stage: str | None = None) -> list[dict[str, Any]]:
        return self.models.list_models(name, stage)

    def model_get(self, name: str, version: str) -> dict[str, Any] | None:
        return self.models.get(name, version)

    def model_latest(self, name: str, stage: str | None = None) -> dict[str, Any] | None:
        return self.models.latest(name, stage)

    def locks_list(self) -> list[dict[str, Any]]:
        return self.locks.list_locks()

    def lock_get(self, name: str) -> dict[str, Any] | None:
        return self.locks.get(name)

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary for the status API."""
        return {"clock": self.core.clock, "work": self.work_stats(), "jobs": self.job_stats(),
                "models": sum(len(v) for v in list(self.models.models.values())),
                "locks": len(self.locks.locks), "dedup": len(self.dedup)}

    # -- snapshots --------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The full state as JSON-able data; equal to its own json round trip."""
        return self.freeze().snapshot()

    def freeze(self) -> "FrozenState":
        """The state as it is now, cheaply: records are shared, never copied, because no part
        mutates a stored record and every container is copied on its next write. Serialize the
        view on any thread (``FrozenState.snapshot``) while this machine keeps applying."""
        return FrozenState({
            "format": SNAPSHOT_FORMAT,
            "limits": self.core.limits.to_dict(),
            "clock": self.core.clock,
            "counters": dict(self.core.counters),
            "seals": [list(seal) for seal in self.seals],  # a new list per append: safe to share
            "dedup": self.dedup.freeze(),  # entries are never mutated either
            "work": self.work.freeze(),
            "jobs": self.jobs.freeze(),
            "models": self.models.freeze(),
            "locks": self.locks.freeze(),
        })

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> "StateMachine":
        machine = cls()
        machine.restore(data)
        return machine

    def restore(self, data: dict[str, Any]) -> None:
        """Replace the whole state (limits included) with ``data``; raises ``SnapshotError``
        and leaves this machine untouched when ``data`` is not a valid snapshot."""
        if not isinstance(data, dict) or data.get("format") != SNAPSHOT_FORMAT:
            raise SnapshotError(f"not a state snapshot of format {SNAPSHOT_FORMAT}")
        try:
            fresh = StateMachine(Limits(**data["limits"]))
            clock = data["clock"]
            if isinstance(clock, bool) or not isinstance(clock, (int, float)) \
                    or not math.isfinite(clock):
                raise ValueError(f"clock: {describe(clock)}")
            fresh.core.clock = float(clock)
            counters = data["counters"]
            if set(counters) != set(fresh.core.counters) or \
                    any(type(n) is not int or n < 0 for n in counters.values()):
                raise ValueError("counters: wrong names or values")
            fresh.core.counters = dict(counters)
            fresh.dedup = CowDict((str(rid), clone(e)) for rid, e in data["dedup"].items())
            fresh.seals = list(of_snapshot(data).seals)  # absent in snapshots from before lineages
            fresh.work.restore(data["work"])
            fresh.jobs.restore(data["jobs"])
            fresh.models.restore(data["models"])
            fresh.locks.restore(data["locks"])
        except (KeyError, TypeError, ValueError, AttributeError, ConfigError) as exc:
            raise SnapshotError(f"invalid snapshot: {type(exc).__name__}: {exc}") from exc
        self.core, self.work, self.jobs = fresh.core, fresh.work, fresh.jobs
        self.models, self.locks, self.dedup = fresh.models, fresh.locks, fresh.dedup
        self.seals = fresh.seals
        self._swept = ([], [])
        FREEZER.restored(self.size())


def _part(attr: str, method: str) -> Callable[[StateMachine, Args], dict[str, Any]]:
    return lambda machine, a: getattr(getattr(machine, attr), method)(a)


def _fenced(method: str) -> Callable[[StateMachine, Args], dict[str, Any]]:
    return lambda machine, a: getattr(machine.models, method)(a, machine.locks.check_fence)


_HANDLERS: dict[str, Callable[[StateMachine, Args], dict[str, Any]]] = {
    "work.add": _part("work", "add"),
    "work.claim": _part("work", "claim"),
    "work.start": _part("work", "start"),
    "work.renew": _part("work", "renew"),
    "work.complete": _part("work", "complete"),
    "work.fail": _part("work", "fail"),
    "work.expire": StateMachine._expire_work,
    "job.assign": _part("jobs", "assign"),
    "job.start": _part("jobs", "start"),
    "job.complete": _part("jobs", "complete"),
    "job.fail": _part("jobs", "fail"),
    "model.register": _fenced("register"),
    "model.promote": _fenced("promote"),
    "lock.acquire": _part("locks", "acquire"),
    "lock.renew": _part("locks", "renew"),
    "lock.release": _part("locks", "release"),
    "node.release": StateMachine._release_node,
    "tick": StateMachine._tick,
    "state.import": StateMachine._import,
    "state.seal": StateMachine._seal,
    "state.limits": StateMachine._set_limits,
}
_NOT_CHANGES = frozenset({"tick", "work.expire", "state.import", "state.seal"})

OPS: tuple[str, ...] = tuple(_HANDLERS)
