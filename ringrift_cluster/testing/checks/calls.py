"""The history of a client workload on the replicated-state API: :class:`Call` s (one client
operation, all its :class:`Attempt` s under one request id) and the :class:`FinalState` read after
heal. Pure data: what :func:`~.state.check_history` judges and the unit tests build by hand.

Outcomes: ``ok`` (200), ``refused`` (the state machine said no: 4xx), ``not_applied`` (every
attempt got 503 ``no_leader``) or ``unknown`` (a 503 ``timeout``, a client timeout, a connection
error, or anything else: it may or may not have happened).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

OK, REFUSED, UNKNOWN, NOT_APPLIED = "ok", "refused", "unknown", "not_applied"
LEASED = ("claimed", "running")
# Refusal codes that no correct client of a correct machine ever sees: they are reported.
BAD_REFUSALS = ("bad_command", "unknown_op", "unsupported_version", "rid_conflict", "internal", "unauthorized")


@dataclass
class Attempt:
    node: str
    start: float  # wall clock, before the request went out
    end: float
    status: int | None  # HTTP status; None = no HTTP answer (timeout, connection error)
    outcome: str  # ok | refused | unknown | not_applied
    detail: str  # "200", "409 stale_token", "503 timeout (...)", "503 no_leader (...)", "timeout", "ConnectionRefusedError"
    body: Any = field(default=None, repr=False)  # the parsed answer of a definite (ok / refused) attempt


@dataclass
class Call:
    """One client operation (all its attempts share the request id)."""

    index: int
    client: str
    op: str  # work.add, work.claim, work.start, work.renew, work.complete, work.fail,
    #          lock.acquire, lock.renew, lock.release, model.register
    args: dict[str, Any]
    request_id: str
    start: float
    end: float | None = None
    outcome: str = UNKNOWN
    result: dict[str, Any] | None = None  # the body of the definite answer (ok or refused)
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def acked(self) -> bool:
        return self.outcome == OK

    @property
    def may_have_happened(self) -> bool:
        return self.outcome in (OK, UNKNOWN)

    @property
    def key(self) -> str:
        a = self.args
        if self.op.startswith("work.") and self.op not in ("work.add", "work.claim"):
            return f"{a.get('work_id')}#{a.get('claim_token')}"
        if self.op == "work.add":
            return str(a.get("work_id"))
        if self.op.startswith("lock."):
            return f"{a.get('name')}#{a.get('fence_token', '-')}"
        if self.op == "model.register":
            return f"{a.get('name')}/{a.get('version')}"
        return str(a.get("node_id", ""))

    def __str__(self) -> str:
        nodes = ",".join(f"{at.node}:{at.detail}" for at in self.attempts) or "-"
        end = f"{self.end:.3f}" if self.end is not None else "?"
        res = ""
        if self.result is not None:
            keep = ("error", "claim_token", "fence_token", "expires_at", "clock", "acquired_at", "status", "renewed")
            res = " " + json.dumps({k: self.result[k] for k in keep if k in self.result}, sort_keys=True)
            if self.op == "work.claim":
                item = self.result.get("item") or {}
                res += f" item={item.get('work_id')}"
        args = json.dumps({k: v for k, v in self.args.items() if k not in ("config", "uri", "checksum")}, sort_keys=True)
        return (f"#{self.index} {self.client} {self.op} {args} rid={self.request_id} "
                f"[{self.start:.3f}..{end}] {self.outcome}{res} attempts={nodes}")


@dataclass
class FinalState:
    """What the cluster holds after heal (read linearizably from the leader)."""

    items: dict[str, dict[str, Any] | None]  # work id -> item (None: not found)
    locks: dict[str, dict[str, Any]]  # held locks by name
    models: dict[str, list[dict[str, Any]]]  # name -> versions
    total_items: int | None = None  # GET /raft/work stats total (phantom items beyond ours)
    clock: float = 0.0  # wall clock when it was read (the machine clock is about the same)
    locks_clock: float | None = None  # wall clock once the locks read had returned (None: ``clock``)
    # Work ids absent from the final state that the machine may have compacted away (finished
    # past ``state.max_finished_work``): no rule judges their final state. See ``compactable``.
    compacted: frozenset[str] = frozenset()



def by_op(calls: Iterable[Call], op: str, *outcomes: str) -> list[Call]:
    return [c for c in calls if c.op == op and (not outcomes or c.outcome in outcomes)]


def acked_claims(calls: list[Call]) -> list[tuple[Call, str, int]]:
    """Acknowledged claims that returned an item: (call, work id, token)."""
    out = []
    for c in by_op(calls, "work.claim", OK):
        item = (c.result or {}).get("item")
        if item and c.result.get("claim_token") is not None:  # type: ignore[union-attr]
            out.append((c, item["work_id"], int(c.result["claim_token"])))  # type: ignore[index]
    return out



def compactable(calls: Iterable[Call], final: FinalState) -> frozenset[str]:
    """The work ids absent from ``final`` that a complete or a fail of may have happened: only
    finished items are ever compacted, so only these may be gone without a write being lost."""
    ended = {c.args.get("work_id") for c in calls if c.op in ("work.complete", "work.fail") and c.may_have_happened}
    return frozenset(w for w, item in final.items.items() if item is None and w in ended)


def write_history(calls: Iterable[Call], final: FinalState | None, path: Path) -> Path:
    """The final state (first line, ``{"final": ...}``), then every call with its attempts, one
    JSON object a line: what a failed run leaves behind, to read by hand or check again
    (:func:`read_history`); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        state = None if final is None else {**dataclasses.asdict(final), "compacted": sorted(final.compacted)}
        f.write(json.dumps({"final": state}, sort_keys=True, default=repr) + "\n")
        for c in calls:
            f.write(json.dumps(dataclasses.asdict(c), sort_keys=True, default=repr) + "\n")
    return path


def read_history(path: Path) -> tuple[list[Call], FinalState | None]:
    """What :func:`write_history` wrote."""
    calls: list[Call] = []
    final = None
    with path.open() as f:
        for n, line in enumerate(f):
            data = json.loads(line)
            if n == 0 and "final" in data:
                if data["final"] is not None:
                    final = FinalState(**{**data["final"], "compacted": frozenset(data["final"]["compacted"])})
                continue
            attempts = [Attempt(**a) for a in data.pop("attempts")]
            calls.append(Call(**data, attempts=attempts))
    return calls, final


__all__ = ["BAD_REFUSALS", "LEASED", "NOT_APPLIED", "OK", "REFUSED", "UNKNOWN", "Attempt", "Call", "FinalState", "compactable", "read_history", "write_history",
           "acked_claims", "by_op"]
