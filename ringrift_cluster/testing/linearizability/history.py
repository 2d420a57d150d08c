"""A workload's calls as operations per key, in porcupine's ``Operation`` shape.

One key is one work item, one lock or one model name: every operation touches exactly one, so
each key's history is checked on its own (P-compositionality). An operation that definitely did
not happen (every attempt refused with ``no_leader``) is left out, and so is a read with no
answer (it changes nothing). An operation with an unknown outcome has ``output = None`` and
returns at infinity. The final state read after heal is one more read per key, by client
``final``.

A claim whose outcome is unknown has no key: which item it took is not known. When a read shows
an item leased under a token that no acknowledged claim returned, one such claim took it; it is
added to that item's history as an unknown claim of that token, invoked with the earliest of
those claims (it may have taken effect or not).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable

from ..checks.calls import NOT_APPLIED, OK, REFUSED, UNKNOWN, Call, FinalState

INF = math.inf


@dataclass
class Operation:
    client: str
    input: dict[str, Any]
    call: float
    output: dict[str, Any] | None  # None: the outcome is unknown
    ret: float = INF
    index: int = 0  # the call's index in the workload's history (0: synthetic)
    note: str = field(default="", compare=False)

    def describe(self) -> str:
        out = "?" if self.output is None else json.dumps(self.output, sort_keys=True)
        return f"{self.client} {json.dumps(self.input, sort_keys=True)} -> {out}"


def _work_output(c: Call) -> dict[str, Any] | None:
    if c.outcome == UNKNOWN:
        return None
    body = c.result or {}
    if c.outcome == OK:
        return {"ok": True, "status": body.get("status"), "attempts": body.get("attempts")}
    return {"ok": False, "error": body.get("error")}


def _stamp(body: dict[str, Any]) -> float | None:
    """When the leader applied a lock grant or renewal: the machine clock of the answer, else its
    expiry less its TTL."""
    if body.get("clock") is not None:
        return float(body["clock"])
    if body.get("expires_at") is not None and body.get("ttl_s") is not None:
        return float(body["expires_at"]) - float(body["ttl_s"])
    return None


def _item_view(item: dict[str, Any] | None) -> dict[str, Any]:
    if not item:
        return {"found": False}
    return {"found": True, "status": item.get("status"), "claim_token": item.get("claim_token"),
            "attempts": item.get("attempts")}


def from_calls(calls: Iterable[Call], final: FinalState | None = None) -> dict[str, list[Operation]]:
    """The operations of ``calls`` (and of the final read) by key."""
    calls = [c for c in calls if c.outcome != NOT_APPLIED]
    keys: dict[str, list[Operation]] = {}

    def add(key: str, op: Operation) -> None:
        keys.setdefault(key, []).append(op)

    def end(c: Call) -> float:
        return INF if c.outcome == UNKNOWN or c.end is None else c.end

    claimed_tokens: set[tuple[str, int]] = set()
    seen_tokens: dict[tuple[str, int], float] = {}  # (work id, token) seen leased -> when first seen
    for c in calls:
        a, body = c.args, c.result or {}
        if c.op == "work.add":
            out = None if c.outcome == UNKNOWN else {"ok": c.outcome == OK, "error": body.get("error")}
            add(f"work:{a['work_id']}", Operation(c.client, {"op": "add", "max_attempts": a.get("max_attempts", 3)},
                                                  c.start, out, end(c), c.index))
        elif c.op == "work.claim" and c.outcome == OK and body.get("item"):
            w, token = body["item"]["work_id"], int(body["claim_token"])
            claimed_tokens.add((w, token))
            add(f"work:{w}", Operation(c.client, {"op": "claim"}, c.start, {"ok": True, "token": token}, end(c),
                                       c.index))
        elif c.op in ("work.start", "work.renew", "work.complete", "work.fail"):
            inp = {"op": c.op.split(".")[1], "token": a["claim_token"]}
            if c.op == "work.fail":
                inp["retry"] = bool(a.get("retry", True))
            add(f"work:{a['work_id']}", Operation(c.client, inp, c.start, _work_output(c), end(c), c.index))
        elif c.op == "work.read" and c.outcome in (OK, REFUSED):
            view = _item_view(body.get("item")) if c.outcome == OK else {"found": False, "error": body.get("error")}
            add(f"work:{a['work_id']}", Operation(c.client, {"op": "read"}, c.start, view, end(c), c.index))
            if view.get("claim_token") is not None:
                seen_tokens.setdefault((a["work_id"], int(view["claim_token"])), c.start)
        elif c.op == "lock.acquire":
            out = None
            if c.outcome == OK:
                out = {"ok": True, "token": body.get("fence_token"), "renewed": bool(body.get("renewed")),
                       "expires_at": body.get("expires_at"), "stamp": _stamp(body)}
            elif c.outcome == REFUSED:
                out = {"ok": False, "error": body.get("error"), "holder": body.get("holder")}
            add(f"lock:{a['name']}", Operation(c.client, {"op": "acquire", "holder": a["holder"], "ttl": a["ttl_s"]},
                                               c.start, out, end(c), c.index))
        elif c.op in ("lock.renew", "lock.release"):
            inp = {"op": c.op.split(".")[1], "holder": a["holder"], "token": a["fence_token"]}
            if c.op == "lock.renew":
                inp["ttl"] = a.get("ttl_s")
            out = None
            if c.outcome == OK:
                out = {"ok": True, "expires_at": body.get("expires_at"), "stamp": _stamp(body)}
            elif c.outcome == REFUSED:
                out = {"ok": False, "error": body.get("error")}
            add(f"lock:{a['name']}", Operation(c.client, inp, c.start, out, end(c), c.index))
        elif c.op == "model.register":
            out = None if c.outcome == UNKNOWN else {"ok": c.outcome == OK, "error": body.get("error"),
                                                     "created": body.get("created")}
            add(f"model:{a['name']}", Operation(c.client, {"op": "register", "version": a["version"]},
                                                c.start, out, end(c), c.index))
        elif c.op == "model.promote":
            out = None if c.outcome == UNKNOWN else {"ok": c.outcome == OK, "error": body.get("error")}
            add(f"model:{a['name']}", Operation(c.client, {"op": "promote", "version": a["version"]},
                                                c.start, out, end(c), c.index))

    if final is not None:
        done = final.locks_clock or final.clock
        for w, item in final.items.items():
            if w in final.compacted:
                continue  # finished, then compacted away: no read of it
            add(f"work:{w}", Operation("final", {"op": "read"}, final.clock, _item_view(item), done))
            if item and item.get("claim_token") is not None:
                seen_tokens.setdefault((w, int(item["claim_token"])), final.clock)
        for key in [k for k in keys if k.startswith("lock:")]:
            lock = final.locks.get(key[5:])
            view = {"held": False} if lock is None else {"held": True, "holder": lock["holder"],
                                                          "token": lock["fence_token"], "expires_at": lock["expires_at"]}
            add(key, Operation("final", {"op": "read"}, final.clock, view, done))
        for name, versions in final.models.items():
            stages = {v["version"]: v.get("stage") for v in versions or []}
            add(f"model:{name}", Operation("final", {"op": "read"}, final.clock, {"versions": stages}, done))

    unknown_claims = [c.start for c in calls if c.op == "work.claim" and c.outcome == UNKNOWN]
    for (w, token), first_seen in sorted(seen_tokens.items()):
        if (w, token) in claimed_tokens:
            continue
        earliest = min((s for s in unknown_claims if s <= first_seen), default=None)
        if earliest is not None:  # else no claim can have granted it: the reads say so
            add(f"work:{w}", Operation("unknown-claim", {"op": "claim", "token": token}, earliest, None, INF,
                                       note="an unknown claim (which one is not known)"))
    for ops in keys.values():
        ops.sort(key=lambda o: (o.call, o.index))
    return keys


def to_porcupine_json(keys: dict[str, list[Operation]]) -> str:
    """The history as porcupine's operations (``ClientId, Input, Call, Output, Return``; times in
    integer nanoseconds, an unknown return as the largest int64), one list per key."""
    clients: dict[str, int] = {}
    big = 2**63 - 1

    def ns(t: float) -> int:
        return big if math.isinf(t) else int(t * 1e9)

    doc = {key: [{"ClientId": clients.setdefault(o.client, len(clients)), "Input": {**o.input, "key": key},
                  "Call": ns(o.call), "Output": o.output, "Return": ns(o.ret)} for o in ops]
           for key, ops in keys.items()}
    return json.dumps({"clients": {v: k for k, v in clients.items()}, "partitions": doc}, indent=1)


__all__ = ["INF", "Operation", "from_calls", "to_porcupine_json"]
