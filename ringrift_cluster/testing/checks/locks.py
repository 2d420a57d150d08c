"""Lock rules of :func:`~.state.check_history`: fence tokens strictly increase, one token is one
grant, validity windows never overlap in fence order, and acknowledged grants, renewals and releases
hold in the final state and in later refusals."""

from __future__ import annotations

from typing import Any

from .calls import OK, REFUSED, UNKNOWN, Call, FinalState


def check_locks(calls: list[Call], final: FinalState) -> list[str]:
    out: list[str] = []
    # Grants: token -> what the acknowledged results say about its validity window.
    grants: dict[int, dict[str, Any]] = {}
    for c in calls:
        if not c.op.startswith("lock.") or c.outcome != OK or c.result is None:
            continue
        r, name = c.result, c.args["name"]
        token = r.get("fence_token")
        if not isinstance(token, int):
            out.append(f"lock answer without a fence token: {c}")
            continue
        g = grants.setdefault(token, {"name": name, "holder": c.args["holder"], "acquired_at": None, "ends": [],
                                      "timed_ends": [], "clocks": [], "released": None, "calls": [],
                                      "last": None})
        g["calls"].append(c)
        if (g["name"], g["holder"]) != (name, c.args["holder"]):
            out.append(f"fence token {token} belongs to two grants: {g['name']}/{g['holder']} and "
                       f"{name}/{c.args['holder']}: {g['calls'][0]} / {c}")
            continue
        if isinstance(r.get("clock"), (int, float)):
            g["clocks"].append(r["clock"])
            if c.op != "lock.release" and (g["last"] is None or r["clock"] >= g["last"].result["clock"]):
                g["last"] = c
        if c.op == "lock.release":
            g["released"] = r.get("clock")
        else:
            if isinstance(r.get("acquired_at"), (int, float)):
                if g["acquired_at"] is not None and g["acquired_at"] != r["acquired_at"]:
                    out.append(f"fence token {token} of {name} with two acquired_at values: {g['calls'][0]} / {c}")
                g["acquired_at"] = r["acquired_at"]
            if isinstance(r.get("expires_at"), (int, float)):
                g["ends"].append(r["expires_at"])
                if isinstance(r.get("clock"), (int, float)):
                    g["timed_ends"].append((r["clock"], r["expires_at"]))

    unknown_release = {(c.args["name"], c.args.get("fence_token")) for c in calls
                       if c.op == "lock.release" and c.outcome == UNKNOWN}
    unknown_renewals = _touching([c for c in calls if c.outcome == UNKNOWN], ("lock.acquire", "lock.renew"))
    for token, g in grants.items():
        g["until"] = _valid_until(g, token, unknown_renewals)

    # Fence tokens strictly increase in real-time order: a fresh grant acknowledged after another
    # lock answer completed carries a larger token.
    per_lock: dict[str, list[Call]] = {}
    for c in calls:
        if c.op in ("lock.acquire", "lock.renew") and c.outcome == OK and isinstance((c.result or {}).get("fence_token"), int):
            per_lock.setdefault(c.args["name"], []).append(c)
    for name, cs in per_lock.items():
        fresh = [c for c in cs if c.op == "lock.acquire" and not c.result.get("renewed")]  # type: ignore[union-attr]
        for b in fresh:
            for a in cs:
                if a is not b and a.end is not None and a.end < b.start \
                        and a.result["fence_token"] >= b.result["fence_token"]:  # type: ignore[index]
                    out.append(f"fence token of {name} did not increase: {a.result['fence_token']} acknowledged "  # type: ignore[index]
                               f"before the grant of {b.result['fence_token']} started: {a} / {b}")  # type: ignore[index]

    # Validity windows, in fence-token order, never overlap.
    by_name: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for token, g in grants.items():
        by_name.setdefault(g["name"], []).append((token, g))
    for name, gs in by_name.items():
        gs.sort(key=lambda p: p[0])
        for i, (t2, g2) in enumerate(gs):
            start = g2["acquired_at"]
            if start is None:
                continue
            for t1, g1 in gs[:i]:
                last_seen = max(g1["clocks"], default=None)
                if g1["released"] is not None:
                    end, how = g1["released"], "released at"
                elif (name, t1) in unknown_release:
                    end, how = last_seen, "last acknowledged at (a release of unknown outcome followed)"
                else:
                    end, how = g1["until"], "valid until"
                    end = last_seen if end is None else end
                if end is not None and end > start:
                    out.append(f"lock {name}: {g1['holder']} (fence {t1}) {how} {end:.3f}, but {g2['holder']} "
                               f"(fence {t2}) acquired it at {start:.3f}: {g1['calls'][-1]} / {g2['calls'][0]}")

    # (a)/(e) against the final locks.
    max_acked: dict[str, int] = {}
    for token, g in grants.items():
        max_acked[g["name"]] = max(max_acked.get(g["name"], 0), token)
    acquirers: dict[str, set[str]] = {}
    for c in calls:
        if c.op == "lock.acquire" and c.may_have_happened:
            acquirers.setdefault(c.args["name"], set()).add(c.args["holder"])
    for name, lock in final.locks.items():
        token = lock.get("fence_token")
        if not isinstance(token, int):
            continue
        if token < max_acked.get(name, 0):
            out.append(f"lost write: lock {name} is held with fence token {token} by {lock.get('holder')}, older "
                       f"than the acknowledged grant {max_acked[name]}")
        g = grants.get(token)
        if g is not None:
            if (g["name"], g["holder"]) != (name, lock.get("holder")):
                out.append(f"lock {name} is held with fence token {token} by {lock.get('holder')}, but that token "
                           f"was granted to {g['holder']} for {g['name']}")
            if g["released"] is not None:
                out.append(f"lost write: lock {name} is still held with fence token {token} after its release "
                           f"was acknowledged: {g['calls'][-1]}")
        elif lock.get("holder") not in acquirers.get(name, set()):
            out.append(f"lock {name} is held by {lock.get('holder')} (fence {token}), but no acquire of it by that "
                       f"holder may have happened")
    out += _lost_releases(calls)
    out += _lost_grants_and_renewals(calls, final, grants, unknown_release)
    return out


Touching = dict[tuple[Any, Any], list[Call]]


def _valid_until(grant: dict[str, Any], token: int, unknown: Touching) -> float | None:
    """The end of a grant's lease as its last applied acquire or renewal (the largest machine
    clock) set it. Not the largest expiry: a holder that re-acquires or renews with a shorter TTL
    shortens its own lease, and the lock is free again once that shorter lease ends. A renewal
    of unknown outcome still in flight after that answer may have shortened it too: it counts
    with the earliest end it could have set (its start plus its TTL)."""
    if not grant["timed_ends"]:
        return max(grant["ends"], default=None)
    end = max(grant["timed_ends"])[1]
    last = grant["last"]
    for c in unknown.get((grant["name"], grant["holder"]), ()):
        ttl = c.args.get("ttl_s")
        if c.op == "lock.renew" and c.args.get("fence_token") != token:
            continue
        if isinstance(ttl, (int, float)) and (last is None or c.end is None or c.end > last.start):
            end = min(end, c.start + ttl)
    return end


def _touching(calls: list[Call], ops: tuple[str, ...]) -> Touching:
    """The operations of ``ops`` that may have happened, by (lock name, holder): what
    :func:`_may_touch_after` searches (an index, so that a long history is checked in linear
    time per lock and holder, not in time cubic in its length)."""
    out: Touching = {}
    for c in calls:
        if c.op in ops and c.may_have_happened:
            out.setdefault((c.args.get("name"), c.args.get("holder")), []).append(c)
    return out


def _may_touch_after(touching: Touching, name: str, holder: str, after: Call) -> bool:
    """Whether an operation of ``touching`` by ``holder`` on lock ``name`` was still in flight
    when ``after`` started (so it may have been applied after ``after``)."""
    return any(c is not after and (c.end is None or c.end > after.start) for c in touching.get((name, holder), ()))


def _lost_releases(calls: list[Call]) -> list[str]:
    """A ``lock_held`` refusal naming a holder whose release of that lock was applied before it
    (a smaller machine clock) and who acquired it no more since: the release was lost."""
    out = []
    acquires = _touching(calls, ("lock.acquire",))
    # Per (name, holder), the acknowledged releases no acquire by that holder may have followed.
    untouched: dict[tuple[Any, Any], list[Call]] = {}
    for rel in calls:
        if rel.op == "lock.release" and rel.outcome == OK and rel.result is not None \
                and isinstance(rel.result.get("clock"), (int, float)):
            name, holder = rel.args.get("name"), rel.args.get("holder")
            if not _may_touch_after(acquires, name, holder, rel):
                untouched.setdefault((name, holder), []).append(rel)
    for c in calls:
        r = c.result or {}
        if c.op != "lock.acquire" or c.outcome != REFUSED or r.get("error") != "lock_held":
            continue
        clock, holder, name = r.get("clock"), r.get("holder"), c.args.get("name")
        if not isinstance(clock, (int, float)):
            continue
        for rel in untouched.get((name, holder), ()):
            # Strictly earlier only: the machine clock never goes back, but a command stamped
            # earlier that is applied later leaves it where it was, so an equal clock says nothing
            # about which of the two was applied first.
            if rel.result["clock"] < clock:  # type: ignore[index]
                out.append(f"lost write: lock {name} was refused as held by {holder} after {holder}'s release of "
                           f"it was acknowledged (and {holder} did not acquire it again): {rel} / {c}")
                break
    return out


def _lost_grants_and_renewals(calls: list[Call], final: FinalState, grants: dict[int, dict[str, Any]],
                              unknown_release: set[tuple[str, Any]]) -> list[str]:
    """An acknowledged grant still valid when the final state was read is held there, with the
    expiry of its last acknowledged acquire or renewal (no lock renewal lost)."""
    out = []
    released = {(c.args.get("name"), c.args.get("fence_token")) for c in calls
                if c.op == "lock.release" and c.may_have_happened}
    touching = _touching(calls, ("lock.acquire", "lock.renew"))
    for token, g in grants.items():
        name, holder = g["name"], g["holder"]
        if g["released"] is not None or (name, token) in unknown_release or not g["ends"]:
            continue
        if (name, token) in released:
            continue
        held = final.locks.get(name)
        read_by = final.locks_clock if final.locks_clock is not None else final.clock
        if held is None:
            until = g["until"]
            if until is not None and until > read_by + 0.5:
                out.append(f"lost write: acknowledged grant of lock {name} to {holder} (fence {token}) valid until "
                           f"{until:.3f} is not held when the final state was read (by {read_by:.3f}): "
                           f"{g['calls'][0]}")
            continue
        if held.get("fence_token") != token or not isinstance(held.get("expires_at"), (int, float)):
            continue
        timed = [c for c in g["calls"] if c.op != "lock.release" and isinstance((c.result or {}).get("clock"), (int, float))
                 and isinstance((c.result or {}).get("expires_at"), (int, float))]
        if not timed:
            continue
        last = max(timed, key=lambda c: c.result["clock"])  # type: ignore[index]
        if _may_touch_after(touching, name, holder, last):
            continue
        if held["expires_at"] < last.result["expires_at"] - 1e-6:  # type: ignore[index]
            out.append(f"lost write: lock {name} (fence {token}) expires at {held['expires_at']:.3f} in the final "
                       f"state, before the acknowledged {last.op} set {last.result['expires_at']:.3f}: {last}")  # type: ignore[index]
    return out



__all__ = ["check_locks"]
