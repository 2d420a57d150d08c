"""Work-queue rules of :func:`~.state.check_history`: lost adds, claims, starts, completes, fails
and renewals; one item held by two live claims; claim tokens; what the final state shows must come
from some operation."""

from __future__ import annotations

from typing import Any

from .calls import LEASED, NOT_APPLIED, OK, REFUSED, UNKNOWN, Call, FinalState, acked_claims, by_op


def check_work(calls: list[Call], final: FinalState) -> list[str]:
    out: list[str] = []
    adds = {}
    for c in by_op(calls, "work.add"):
        adds.setdefault(c.args["work_id"], []).append(c)
    claims = acked_claims(calls)
    by_token = {(w, t): c for c, w, t in claims}
    # Follow-ups by (work id, token).
    follow: dict[tuple[str, int], list[Call]] = {}
    for c in calls:
        if c.op in ("work.start", "work.renew", "work.complete", "work.fail"):
            follow.setdefault((c.args["work_id"], int(c.args["claim_token"])), []).append(c)

    def ops_on(w: str, t: int, op: str, *outcomes: str) -> list[Call]:
        return [c for c in follow.get((w, t), []) if c.op == op and (not outcomes or c.outcome in outcomes)]

    def acked_expiry(w: str, t: int) -> float | None:
        values = [by_token[(w, t)].result.get("expires_at")]  # type: ignore[union-attr]
        values += [c.result.get("expires_at") for c in ops_on(w, t, "work.renew", OK) + ops_on(w, t, "work.start", OK)]
        nums = [v for v in values if isinstance(v, (int, float))]
        return max(nums) if nums else None

    # (a) acknowledged adds exist and match; (e) nothing exists that no add could have made.
    for w, cs in adds.items():
        item = final.items.get(w)
        acked = [c for c in cs if c.acked]
        if acked and item is None and w not in final.compacted:
            out.append(f"lost write: acknowledged add of {w} but the item is not in the final state: {acked[0]}")
        if item is not None:
            possible = [c for c in cs if c.may_have_happened]
            if not possible:
                out.append(f"{w} is in the final state but every add of it was refused or not applied: "
                           + "; ".join(str(c) for c in cs))
            elif not any(item.get("work_type") == c.args.get("work_type") and item.get("config") == c.args.get("config")
                         for c in possible):
                out.append(f"{w} in the final state does not match its add: type={item.get('work_type')} "
                           f"config={item.get('config')}; {possible[0]}")
    if final.total_items is not None:
        ours = sum(1 for w in adds if final.items.get(w) is not None)
        if final.total_items > ours:
            out.append(f"the final state holds {final.total_items} work items, only {ours} of them added by this workload")

    # (b) one item, two live claims.
    tokens: dict[str, list[tuple[int, Call]]] = {}
    for c, w, t in claims:
        tokens.setdefault(w, []).append((t, c))
    for w, ts in tokens.items():
        ts.sort(key=lambda p: p[0])
        for i, (t1, c1) in enumerate(ts):
            for t2, c2 in ts[i + 1:]:
                item2 = c2.result["item"]  # type: ignore[index]
                at = item2.get("claimed_at")
                ended = _claim_ended(w, t1, at, c2, ops_on, acked_expiry)
                if not ended:
                    completes = ops_on(w, t1, "work.complete", OK)
                    why = f" (and {w} was completed with the first: {completes[0]})" if completes else ""
                    out.append(f"double claim of {w}: token {t1} ({c1.client}) was still live when token {t2} "
                               f"({c2.client}) was granted at clock {at}{why}: {c1} / {c2}")
        if len({t for t, _ in ts}) != len(ts):
            out.append(f"one claim token returned to two claims of {w}: {[str(c) for _, c in ts]}")
    seen_tokens: dict[int, Call] = {}
    for c, w, t in claims:
        other = seen_tokens.get(t)
        if other is not None and other.result["item"]["work_id"] != w:  # type: ignore[index]
            out.append(f"claim token {t} granted for two items: {other} / {c}")
        seen_tokens[t] = c

    # (a) every acknowledged claim still holds, finished the item, or legitimately ended.
    for c, w, t in claims:
        item = final.items.get(w)
        worker = c.args["node_id"]
        if item is None:
            if w not in final.compacted:
                out.append(f"lost write: acknowledged claim of {w} (token {t}) but the item is gone: {c}")
            continue
        current = item.get("claim_token")
        if current == t:
            if item.get("claimed_by") != worker:
                out.append(f"{w} holds token {t} for {item.get('claimed_by')}, but the claim was {worker}'s: {c}")
            continue
        if isinstance(current, int) and current < t:
            out.append(f"lost write: {w} is back at the older claim token {current} ({item.get('status')}), "
                       f"after claim token {t} was acknowledged: {c}")
            continue
        if not _claim_ended(w, t, None, None, ops_on, acked_expiry, final.clock):
            out.append(f"lost write: acknowledged claim of {w} (token {t}, {worker}) neither holds nor ended "
                       f"(no fail, lease not expired), final: status={item.get('status')} token={current} "
                       f"by={item.get('claimed_by')}: {c}")

    # Follow-ups: acknowledged ones hold in the final state; refused ones on a live claim mean
    # the claim was lost (nothing else ends a worker's claim while it holds it).
    for (w, t), cs in follow.items():
        if w in final.compacted:
            continue  # finished, then compacted away: the final state says nothing of it
        item = final.items.get(w) or {}
        mine = item.get("claim_token") == t
        for c in cs:
            if c.acked and c.op == "work.complete" and not (mine and item.get("status") == "completed"):
                out.append(f"lost write: acknowledged complete of {w} (token {t}) but final status="
                           f"{item.get('status')} token={item.get('claim_token')}: {c}")
            if c.acked and c.op == "work.fail" and mine and item.get("status") in (*LEASED, "completed"):
                out.append(f"lost write: acknowledged fail of {w} (token {t}) but the item is "
                           f"{item.get('status')} with that token: {c}")
            if c.acked and c.op == "work.start" and mine and item.get("status") == "claimed":
                out.append(f"lost write: acknowledged start of {w} (token {t}) but it is only claimed: {c}")
            if c.outcome == REFUSED and (w, t) in by_token:
                earlier_end = [p for p in cs if p.index < c.index and p.op == "work.fail" and p.may_have_happened]
                if not earlier_end and not _expired_before(acked_expiry(w, t), c):
                    out.append(f"claim lost: {c.op} on the acknowledged, live claim {w}#{t} was refused "
                               f"({(c.result or {}).get('error')}): {by_token[(w, t)]} / {c}")

    # (a) the expiry of a claim still held is the one its last acknowledged claim / start / renew set.
    for c, w, t in claims:
        item = final.items.get(w) or {}
        if item.get("claim_token") != t or item.get("status") not in LEASED or \
                not isinstance(item.get("expires_at"), (int, float)):
            continue
        acked = [x for x in [c, *ops_on(w, t, "work.renew", OK), *ops_on(w, t, "work.start", OK)]
                 if isinstance((x.result or {}).get("expires_at"), (int, float))
                 and isinstance((x.result or {}).get("clock"), (int, float))]
        if not acked:
            continue
        last = max(acked, key=lambda x: x.result["clock"])  # type: ignore[index]
        later = [x for x in ops_on(w, t, "work.renew") + ops_on(w, t, "work.start")
                 if x is not last and x.may_have_happened and (x.end is None or x.end > last.start)]
        if not later and item["expires_at"] < last.result["expires_at"] - 1e-6:  # type: ignore[index]
            out.append(f"lost write: {w} (token {t}) expires at {item['expires_at']:.3f} in the final state, before "
                       f"the acknowledged {last.op} set {last.result['expires_at']:.3f}: {last}")  # type: ignore[index]

    # (e) what the final state shows must come from some operation.
    acked_tokens = {(w, t) for _, w, t in claims}
    unknown_claims: dict[str, int] = {}
    not_applied_claims: dict[str, int] = {}
    for c in by_op(calls, "work.claim"):
        if c.outcome == UNKNOWN:
            unknown_claims[c.args["node_id"]] = unknown_claims.get(c.args["node_id"], 0) + 1
        elif c.outcome == NOT_APPLIED:
            not_applied_claims[c.args["node_id"]] = not_applied_claims.get(c.args["node_id"], 0) + 1
    unexplained: dict[str, list[str]] = {}
    for w, item in final.items.items():
        if not item or item.get("claim_token") is None:
            continue
        t = item["claim_token"]
        if (w, t) not in acked_tokens:
            unexplained.setdefault(str(item.get("claimed_by")), []).append(f"{w}#{t}({item.get('status')})")
        if item.get("status") == "completed":
            completes = ops_on(w, t, "work.complete")
            if not any(c.may_have_happened for c in completes):
                what = "; ".join(str(c) for c in completes) or "no complete was sent"
                out.append(f"{w} is completed with token {t} but no complete of it may have happened: {what}")
    for worker, found in unexplained.items():
        if len(found) > unknown_claims.get(worker, 0):
            out.append(f"{len(found)} items claimed by {worker} with tokens no acknowledged claim returned "
                       f"({', '.join(found)}), but {worker} had only {unknown_claims.get(worker, 0)} claims of "
                       f"unknown outcome (and {not_applied_claims.get(worker, 0)} answered 503 no_leader)")
    return out


def _expired_before(expiry: float | None, c: Call) -> bool:
    clock = (c.result or {}).get("clock")
    return expiry is not None and isinstance(clock, (int, float)) and expiry <= clock


def _claim_ended(w: str, t: int, at: float | None, later: Call | None, ops_on: Any, acked_expiry: Any,
                 now: float | None = None) -> bool:
    """Whether claim ``w#t`` may have ended (a fail that may have happened, or its lease passed)
    before machine clock ``at`` (granted to the ``later`` claim), or at all by ``now``."""
    for f in ops_on(w, t, "work.fail"):
        if f.outcome == OK:
            clock = (f.result or {}).get("clock")
            if at is None or not isinstance(clock, (int, float)) or clock <= at:
                return True
        elif f.outcome == UNKNOWN and (later is None or later.end is None or f.start <= later.end):
            return True
    expiry = acked_expiry(w, t)
    limit = at if at is not None else now
    return expiry is not None and limit is not None and expiry <= limit



__all__ = ["check_work"]
