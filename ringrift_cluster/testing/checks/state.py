"""The pure checker of a state workload's history (Jepsen-style): :func:`check_history` takes the
recorded calls plus the final state read after heal, and returns the violations. It reports

(a) lost acknowledged writes (adds, claims, completes, fails, starts, renewals, model
    registrations, lock grants, renewals and releases) against the final state read with
    ``?consistent=true``, and acknowledged lock releases contradicted by a later ``lock_held``;
(b) one work item held by two live claims (a claim token of an item is only replaced once the
    earlier claim failed or its lease expired, never after it completed);
(c) locks: fence tokens strictly increase in real-time order of acknowledgement, one token is
    one grant, and holders' validity windows ``[acquired_at, expires_at]`` (machine clock, from
    the results, renewals and releases included) never overlap in fence-token order;
(e) operations with unknown outcome may or may not have happened (never counted as lost), but
    what is in the final state must come from some operation, be consistent with it, and never
    come from an operation the API called ``not_applied``; an ``ok`` answer computed before a
    retry started (its ``clock`` is older than the retry) means an earlier attempt was applied;
(f) linearizable reads made *during* the run (``work.read``) see every add and complete
    acknowledged before the read started.

The rules live in :mod:`.work` and :mod:`.locks`; answers, reads and models are here.
"""

from __future__ import annotations

from typing import Iterable

from .calls import (BAD_REFUSALS, LEASED, NOT_APPLIED, OK, REFUSED, UNKNOWN, Attempt, Call, FinalState, acked_claims,
                    by_op)
from .locks import check_locks
from .work import check_work


def check_history(calls: Iterable[Call], final: FinalState) -> list[str]:
    """Violations in ``calls`` given the ``final`` state; empty when the history is consistent."""
    calls = sorted(calls, key=lambda c: c.index)
    out: list[str] = []
    out += _check_answers(calls)
    out += check_work(calls, final)
    out += check_locks(calls, final)
    out += _check_models(calls, final)
    out += _check_reads(calls)
    return out


def _check_answers(calls: list[Call]) -> list[str]:
    out = []
    for c in calls:
        if c.outcome == REFUSED and (c.result or {}).get("error") in BAD_REFUSALS:
            out.append(f"refusal no correct client should see: {c}")
        # An answer computed before the attempt that got it started was applied by an earlier
        # attempt; if every earlier attempt was told "no_leader" (not applied), that was false.
        if c.outcome in (OK, REFUSED) and c.result is not None and isinstance(c.result.get("clock"), (int, float)):
            answering = next((a for a in reversed(c.attempts) if a.outcome in (OK, REFUSED)), None)
            earlier = c.attempts[:c.attempts.index(answering)] if answering is not None else []
            if answering is not None and earlier and c.result["clock"] < answering.start \
                    and all(a.outcome == NOT_APPLIED for a in earlier):
                out.append(f"503 no_leader (not applied) was applied: the answer to the retry has clock "
                           f"{c.result['clock']:.3f}, before the retry started ({answering.start:.3f}): {c}")
    return out



def _check_models(calls: list[Call], final: FinalState) -> list[str]:
    out = []
    regs: dict[tuple[str, str], list[Call]] = {}
    for c in by_op(calls, "model.register"):
        regs.setdefault((c.args["name"], c.args["version"]), []).append(c)
    found = {(name, v.get("version")): v for name, versions in final.models.items() for v in versions}
    for (name, version), cs in regs.items():
        record = found.get((name, version))
        if record is None:
            acked = [c for c in cs if c.acked]
            if acked:
                out.append(f"lost write: acknowledged registration of model {name} {version} is not in the final "
                           f"state: {acked[0]}")
            continue
        possible = [c for c in cs if c.may_have_happened]
        if not possible:
            out.append(f"model {name} {version} is in the final state, but every registration of it was refused "
                       f"or not applied: " + "; ".join(str(c) for c in cs))
        elif not any((record.get("uri"), record.get("checksum")) == (c.args["uri"], c.args["checksum"]) for c in possible):
            out.append(f"model {name} {version} in the final state has uri/checksum {record.get('uri')}/"
                       f"{record.get('checksum')} that no registration sent: {possible[0]}")
    for key, record in found.items():
        if key not in regs:
            out.append(f"model {key[0]} {key[1]} is in the final state, but this workload never registered it")
    return out



__all__ = ["BAD_REFUSALS", "LEASED", "NOT_APPLIED", "OK", "REFUSED", "UNKNOWN", "Attempt", "Call", "FinalState",
           "acked_claims", "check_history"]


def _check_reads(calls: list[Call]) -> list[str]:
    """(f) A linearizable read (``work.read``, ``?consistent=true``) made during the run sees every
    add and complete of that item acknowledged before the answering attempt started."""
    out = []
    adds: dict[str, list[Call]] = {}
    completes: dict[str, list[Call]] = {}
    for c in calls:
        if c.op == "work.add" and c.acked:
            adds.setdefault(c.args["work_id"], []).append(c)
        elif c.op == "work.complete" and c.acked:
            completes.setdefault(c.args["work_id"], []).append(c)
    for r in by_op(calls, "work.read", OK, REFUSED):
        answering = next((a for a in reversed(r.attempts) if a.outcome in (OK, REFUSED)), None)
        if answering is None:
            continue
        w = r.args["work_id"]
        item = (r.result or {}).get("item") if r.outcome == OK else None
        before = [c for c in adds.get(w, []) if c.end is not None and c.end < answering.start]
        if before and item is None:
            out.append(f"stale read: {w} was not found by a linearizable read that started after its add was "
                       f"acknowledged: {before[0]} / {r}")
            continue
        done = [c for c in completes.get(w, []) if c.end is not None and c.end < answering.start]
        if done and item is not None and item.get("status") != "completed":
            out.append(f"stale read: {w} read as {item.get('status')} after its complete was acknowledged: "
                       f"{done[0]} / {r}")
    return out
