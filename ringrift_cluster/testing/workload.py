"""A client workload on the replicated-state HTTP API, and a Jepsen-style checker of its history.

:class:`StateWorkload` implements :class:`~ringrift_cluster.testing.nemesis.Workload`. During a
fault scenario a few client threads (bounded count and rate, every request with a timeout) talk
to random running nodes of a :class:`~ringrift_cluster.testing.netns.NetnsCluster` from the test
process:

- a *producer* adds work items and registers model versions;
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

:func:`check_history` is pure (a history plus the final state read after heal): it is what the
unit tests feed synthetic histories. It reports

(a) lost acknowledged writes (adds, claims, completes, fails, starts, model registrations, lock
    grants and releases) against the final state read with ``?consistent=true``;
(b) one work item held by two live claims (a claim token of an item is only replaced once the
    earlier claim failed or its lease expired, never after it completed);
(c) locks: fence tokens strictly increase in real-time order of acknowledgement, one token is
    one grant, and holders' validity windows ``[acquired_at, expires_at]`` (machine clock, from
    the results, renewals and releases included) never overlap in fence-token order;
(e) operations with unknown outcome may or may not have happened (never counted as lost), but
    what is in the final state must come from some operation, be consistent with it, and never
    come from an operation the API called ``not_applied``; an ``ok`` answer computed before a
    retry started (its ``clock`` is older than the retry) means an earlier attempt was applied.

(d) convergence (every Raft replica's ``/state/digest`` equal after heal, polled with a deadline)
is checked by :meth:`StateWorkload.check`, which also reads the final state.

In ``bully`` consensus mode the elected leader alone holds the state and a new leader does not
have the old one's, so (a), (b), (c) and (e) are no claim there: the workload reports them in its
summary (``expected_anomalies``), not as violations.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from .netns import NetnsCluster

OK, REFUSED, UNKNOWN, NOT_APPLIED = "ok", "refused", "unknown", "not_applied"
LEASED = ("claimed", "running")
# Refusal codes that no correct client of a correct machine ever sees: they are reported.
_BAD_REFUSALS = ("bad_command", "unknown_op", "unsupported_version", "rid_conflict", "internal", "unauthorized")
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# --------------------------------------------------------------------------------------------
# The history


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


# --------------------------------------------------------------------------------------------
# The checker (pure)


def check_history(calls: Iterable[Call], final: FinalState) -> list[str]:
    """Violations in ``calls`` given the ``final`` state; empty when the history is consistent."""
    calls = sorted(calls, key=lambda c: c.index)
    out: list[str] = []
    out += _check_answers(calls)
    out += _check_work(calls, final)
    out += _check_locks(calls, final)
    out += _check_models(calls, final)
    return out


def _by(calls: Iterable[Call], op: str, *outcomes: str) -> list[Call]:
    return [c for c in calls if c.op == op and (not outcomes or c.outcome in outcomes)]


def _check_answers(calls: list[Call]) -> list[str]:
    out = []
    for c in calls:
        if c.outcome == REFUSED and (c.result or {}).get("error") in _BAD_REFUSALS:
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


def _claims(calls: list[Call]) -> list[tuple[Call, str, int]]:
    """Acknowledged claims that returned an item: (call, work id, token)."""
    out = []
    for c in _by(calls, "work.claim", OK):
        item = (c.result or {}).get("item")
        if item and c.result.get("claim_token") is not None:  # type: ignore[union-attr]
            out.append((c, item["work_id"], int(c.result["claim_token"])))  # type: ignore[index]
    return out


def _check_work(calls: list[Call], final: FinalState) -> list[str]:
    out: list[str] = []
    adds = {}
    for c in _by(calls, "work.add"):
        adds.setdefault(c.args["work_id"], []).append(c)
    claims = _claims(calls)
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
        if acked and item is None:
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

    # (e) what the final state shows must come from some operation.
    acked_tokens = {(w, t) for _, w, t in claims}
    unknown_claims: dict[str, int] = {}
    not_applied_claims: dict[str, int] = {}
    for c in _by(calls, "work.claim"):
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


def _check_locks(calls: list[Call], final: FinalState) -> list[str]:
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
                                      "clocks": [], "released": None, "calls": []})
        g["calls"].append(c)
        if (g["name"], g["holder"]) != (name, c.args["holder"]):
            out.append(f"fence token {token} belongs to two grants: {g['name']}/{g['holder']} and "
                       f"{name}/{c.args['holder']}: {g['calls'][0]} / {c}")
            continue
        if isinstance(r.get("clock"), (int, float)):
            g["clocks"].append(r["clock"])
        if c.op == "lock.release":
            g["released"] = r.get("clock")
        else:
            if isinstance(r.get("acquired_at"), (int, float)):
                if g["acquired_at"] is not None and g["acquired_at"] != r["acquired_at"]:
                    out.append(f"fence token {token} of {name} with two acquired_at values: {g['calls'][0]} / {c}")
                g["acquired_at"] = r["acquired_at"]
            if isinstance(r.get("expires_at"), (int, float)):
                g["ends"].append(r["expires_at"])

    unknown_release = {(c.args["name"], c.args.get("fence_token")) for c in calls
                       if c.op == "lock.release" and c.outcome == UNKNOWN}

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
                    end, how = max(g1["ends"], default=last_seen), "valid until"
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
    return out


def _check_models(calls: list[Call], final: FinalState) -> list[str]:
    out = []
    regs: dict[tuple[str, str], list[Call]] = {}
    for c in _by(calls, "model.register"):
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


# --------------------------------------------------------------------------------------------
# The workload


class _Client:
    """HTTP to random running nodes, with retries under one request id."""

    def __init__(self, workload: "StateWorkload", name: str, rng: random.Random) -> None:
        self.w = workload
        self.name = name
        self.rng = rng

    def call(self, op: str, method: str, path: str, args: dict[str, Any], *, url_args: Mapping[str, Any] | None = None,
             retry: bool = True) -> Call:
        """Send ``args`` as the body; the call records them with ``url_args`` (the path's parts)."""
        w = self.w
        rid = f"{self.name}-{uuid.UUID(int=self.rng.getrandbits(128)).hex[:16]}"
        call = w._new_call(self.name, op, {**(url_args or {}), **args}, rid)
        budget = w.attempts if retry else 1
        for n in range(budget):
            node = self._pick()
            attempt = self._attempt(node, method, path, {**args, "request_id": rid})
            call.attempts.append(attempt)
            if attempt.outcome in (OK, REFUSED):
                break
            if n + 1 < budget:
                # Keep resolving even while stopping: by then the cluster is healed.
                time.sleep(min(2.0, w.backoff_s * (2 ** n)) * self.rng.uniform(0.7, 1.3))
        call.end = time.time()
        outcomes = [a.outcome for a in call.attempts]
        definite = next((a for a in reversed(call.attempts) if a.outcome in (OK, REFUSED)), None)
        if definite is not None:
            call.outcome = definite.outcome
        elif outcomes and all(o == NOT_APPLIED for o in outcomes):
            call.outcome = NOT_APPLIED
        else:
            call.outcome = UNKNOWN
        call.result = definite.body if definite is not None else None
        return call

    def _pick(self) -> str:
        nodes = [n for n, node in self.w.cluster.nodes.items() if node.running]  # type: ignore[union-attr]
        return self.rng.choice(nodes or list(self.w.cluster.nodes))  # type: ignore[union-attr]

    def _attempt(self, node: str, method: str, path: str, body: dict[str, Any]) -> Attempt:
        url = self.w.cluster.nodes[node].url + path  # type: ignore[union-attr]
        request = urllib.request.Request(url, data=json.dumps(body).encode(), method=method,
                                         headers={"Content-Type": "application/json"})
        if self.w.token:
            request.add_header("Authorization", f"Bearer {self.w.token}")
        start = time.time()
        status: int | None = None
        try:
            with _OPENER.open(request, timeout=self.w.request_timeout_s) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as e:
            status = e.code
            try:
                payload = e.read()
            except (OSError, http.client.HTTPException):
                payload = b""
        except (OSError, http.client.HTTPException) as e:  # timeout, refused, reset: may have happened
            reason = getattr(e, "reason", e)
            return Attempt(node, start, time.time(), None, UNKNOWN, type(reason).__name__)
        end = time.time()
        try:
            parsed = json.loads(payload)
        except ValueError:
            parsed = None
        error = parsed.get("error") if isinstance(parsed, dict) else None
        if status == 200 and isinstance(parsed, dict):
            outcome = OK
        elif status == 503 and error == "no_leader":
            outcome = NOT_APPLIED
        elif status is not None and 400 <= status < 500 and status != 408 and isinstance(parsed, dict) and error:
            outcome = REFUSED
        else:
            outcome = UNKNOWN
        detail = f"{status}" + (f" {error}" if error else "")
        if status == 503 and isinstance(parsed, dict) and parsed.get("message"):
            detail += f" ({str(parsed['message'])[:60]})"
        return Attempt(node, start, end, status, outcome, detail, parsed if outcome in (OK, REFUSED) else None)


class StateWorkload:
    """Work queue, locks and model registry clients during a scenario, and their checker."""

    name = "state"

    def __init__(self, *, workers: int = 2, lockers: int = 2, locks: tuple[str, ...] = ("lock-a", "lock-b"),
                 pace_s: float = 0.25, lease_s: float = 600.0, lock_ttl_s: tuple[float, float] = (1.5, 3.0),
                 request_timeout_s: float = 6.0, attempts: int = 4, backoff_s: float = 0.5,
                 converge_s: float = 20.0, durable: bool | None = None) -> None:
        self.workers, self.lockers, self.lock_names = workers, lockers, locks
        self.pace_s, self.lease_s, self.lock_ttl_s = pace_s, lease_s, lock_ttl_s
        self.request_timeout_s, self.attempts, self.backoff_s = request_timeout_s, attempts, backoff_s
        self.converge_s = converge_s
        self.durable = durable
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
        self.baseline_items = self._count_items()
        roles = [("producer", self._producer)]
        roles += [(f"worker-{i + 1}", self._worker) for i in range(self.workers)]
        roles += [(f"locker-{i + 1}", self._locker) for i in range(self.lockers)]
        for name, body in roles:
            client = _Client(self, name, random.Random(f"{base}:{name}"))
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
        try:
            self.final = self.read_final()
        except RuntimeError as e:
            violations.append(f"final state not readable: {e}")
        else:
            found = check_history(self.calls, self.final)
            if self.durable:
                violations += found
            else:
                self.anomalies += found
        violations += self.check_convergence()
        self._checked = violations
        return list(violations)

    def summary(self) -> dict[str, int]:
        counts = {"ops": len(self.calls), OK: 0, REFUSED: 0, UNKNOWN: 0, NOT_APPLIED: 0, "retried": 0,
                  "claims": len(_claims(self.calls)), "lock_grants": 0}
        for c in self.calls:
            counts[c.outcome] = counts.get(c.outcome, 0) + 1
            counts["retried"] += len(c.attempts) > 1
            counts["lock_grants"] += c.op == "lock.acquire" and c.acked and not (c.result or {}).get("renewed")
            if c.outcome == REFUSED:
                key = f"refused:{(c.result or {}).get('error')}"
                counts[key] = counts.get(key, 0) + 1
        counts["expected_anomalies"] = len(self.anomalies)
        return counts

    def history(self) -> str:
        """Every recorded call, one per line (for a failure report)."""
        with self._lock:
            return "\n".join(str(c) for c in self.calls)

    # -- Final state -------------------------------------------------------------------------------

    def _get(self, node: str, path: str, timeout: float = 5.0) -> tuple[int | None, Any]:
        assert self.cluster is not None
        try:
            with _OPENER.open(self.cluster.nodes[node].url + path, timeout=timeout) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as e:
            try:
                return e.code, json.loads(e.read())
            except (ValueError, OSError):
                return e.code, None
        except (OSError, ValueError):
            return None, None

    def _count_items(self, timeout: float = 5.0) -> int | None:
        """How many work items the cluster holds (linearizable), or None if nobody answers."""
        assert self.cluster is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node in self.cluster.running():
                status, body = self._get(node, "/raft/work?consistent=true", timeout=2.0)
                if status == 200 and isinstance((body or {}).get("stats"), dict):
                    return int(body["stats"].get("total", 0))
            time.sleep(0.2)
        return None

    def _leader(self) -> str | None:
        assert self.cluster is not None
        for node in self.cluster.running():
            status, body = self._get(node, "/raft/work", timeout=2.0)
            if status == 200 and body.get("leader") in self.cluster.nodes:
                return body["leader"]
        return None

    def read_final(self, timeout: float = 30.0) -> FinalState:
        """The state as the leader holds it, every read linearizable (``?consistent=true``)."""
        assert self.cluster is not None
        deadline = time.monotonic() + timeout
        work_ids = sorted({c.args["work_id"] for c in self.calls if c.op == "work.add"})
        model_names = sorted({c.args["name"] for c in self.calls if c.op == "model.register"})
        last = "no leader"
        while time.monotonic() < deadline:
            leader = self._leader()
            if leader is None:
                self._stopping.wait(0.2)
                continue
            try:
                return self._read_from(leader, work_ids, model_names)
            except (RuntimeError, KeyError, TypeError, AttributeError) as e:
                last = f"{leader}: {e}"
                time.sleep(0.2)
        raise RuntimeError(f"no consistent read within {timeout:.0f}s; last: {last}")

    def _read_from(self, leader: str, work_ids: list[str], model_names: list[str]) -> FinalState:
        def read(path: str, allow_404: bool = False) -> Any:
            status, body = self._get(leader, path + ("&" if "?" in path else "?") + "consistent=true")
            if status == 404 and allow_404:
                return None
            if status != 200:
                raise RuntimeError(f"GET {path}: {status} {body}")
            return body

        clock = time.time()
        stats = read("/raft/work")["stats"]
        with ThreadPoolExecutor(max_workers=8) as pool:
            items = dict(zip(work_ids, pool.map(lambda w: read(f"/raft/work/{urllib.parse.quote(w)}", True), work_ids)))
            models = dict(zip(model_names, pool.map(lambda n: read(f"/raft/models/{urllib.parse.quote(n)}", True),
                                                    model_names)))
        locks = read("/raft/locks")["locks"]
        return FinalState(items={w: (b or {}).get("item") for w, b in items.items()},
                          locks={lock["name"]: lock for lock in locks},
                          models={n: (b or {}).get("versions", []) for n, b in models.items()},
                          total_items=None if self.baseline_items is None else stats.get("total", 0) - self.baseline_items,
                          clock=clock)

    def check_convergence(self) -> list[str]:
        """(d) every node holding a copy of the state has the same digest (polled, bounded)."""
        assert self.cluster is not None
        nodes = list(self.cluster.nodes)
        deadline = time.monotonic() + self.converge_s
        seen: dict[str, Any] = {}
        while True:
            with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
                answers = dict(zip(nodes, pool.map(lambda n: self._get(n, "/state/digest", 2.0), nodes)))
            seen = {n: (b or {}).get("digest", f"{s} {(b or {}).get('error')}")[:16] + f"@{(b or {}).get('changes')}"
                    for n, (s, b) in answers.items()}
            holders = {n: b["digest"] for n, (s, b) in answers.items() if s == 200 and b and "digest" in b}
            if self.durable:
                done = len(holders) == len(nodes) and len(set(holders.values())) == 1
            else:
                done = len(set(holders.values())) <= 1 and all(s in (200, 409) for s, _ in answers.values())
            if done:
                return []
            if time.monotonic() >= deadline:
                return [f"replicas did not converge within {self.converge_s:.0f}s: digests {seen}"]
            self._stopping.wait(0.2)

    # -- Clients -----------------------------------------------------------------------------------

    def _new_call(self, client: str, op: str, args: dict[str, Any], rid: str) -> Call:
        with self._lock:
            self._seq += 1
            call = Call(self._seq, client, op, dict(args), rid, time.time())
            self.calls.append(call)
        return call

    def _run(self, body: Any, client: _Client) -> None:
        try:
            body(client)
        except Exception as e:  # noqa: BLE001 - a client bug must show, not kill the scenario
            with self._lock:
                self.errors.append(f"client {client.name} crashed: {type(e).__name__}: {e}")
            raise

    def _pause(self, client: _Client, low: float = 0.5, high: float = 1.5) -> bool:
        """Wait about ``pace_s``; False once stopping."""
        return not self._stopping.wait(self.pace_s * client.rng.uniform(low, high))

    def _producer(self, c: _Client) -> None:
        n = 0
        while self._pause(c):
            n += 1
            work_id = f"{self.tag}-w{n:04d}"
            c.call("work.add", "POST", "/raft/work",
                   {"work_id": work_id, "work_type": "train", "priority": c.rng.randint(0, 3),
                    "config": {"n": n, "marker": uuid.UUID(int=c.rng.getrandbits(128)).hex[:12]}})
            if n % 4 == 0:
                version = f"v{n}"
                c.call("model.register", "POST", "/raft/models",
                       {"name": f"{self.tag}-model-{n % 3}", "version": version, "uri": f"s3://models/{n}",
                        "checksum": f"sha256:{c.rng.getrandbits(64):016x}"})

    def _worker(self, c: _Client) -> None:
        worker = c.name
        while self._pause(c):
            claim = c.call("work.claim", "POST", "/raft/work/claim",
                           {"node_id": worker, "work_types": ["train"], "lease_s": self.lease_s})
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
            r = c.rng.random()
            if r < 0.6:
                steps.append(("work.complete", "/complete", {"result": {"by": worker}}))
            elif r < 0.85:
                steps.append(("work.fail", "/fail", {"error": "synthetic", "retry": True}))
            # else: abandoned, stays claimed (its lease outlives the run)
            for op, suffix, extra in steps:
                if not self._pause(c, 0.2, 0.6):
                    return
                done = c.call(op, "POST", path + suffix, {**fence, **extra}, url_args={"work_id": work_id})
                if not done.acked:
                    break  # refused, unknown or not applied: leave the claim as it is

    def _locker(self, c: _Client) -> None:
        holder = f"worker-{c.name.rsplit('-', 1)[1]}"
        while self._pause(c):
            name = c.rng.choice(self.lock_names)
            ttl = round(c.rng.uniform(*self.lock_ttl_s), 2)
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
                if c.rng.random() < 0.7:
                    c.call("lock.release", "DELETE", f"/raft/lock/{name}", {"holder": holder, "fence_token": token},
                           url_args={"name": name})
                continue
            # A renewal failed or is unknown: the lock is lost or expires; nothing more to do.


__all__ = ["Attempt", "Call", "FinalState", "StateWorkload", "check_history"]
