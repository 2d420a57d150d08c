"""Sequential models of what the state API promises, one key at a time.

``step(state, op)`` returns every state the key can be in after ``op`` answered ``op.output``
(an empty list: that answer is impossible from ``state``). An operation with an unknown outcome
may have taken effect or not, so it always has at least ``state`` itself as a successor.

Time: a lock lapses on the leader's clock, which the clients share (one machine). The answer to
a grant or renewal carries its expiry, so a lock's expiry is known exactly once acknowledged; an
unknown grant or renewal leaves it in a window ``[lo, hi]``. A grant to someone else is possible
only if the old lock may have lapsed by the time the grant returned; a refusal ("held") only if
it may still have been live when the refusal was invoked. Reads carry no clock of their own: a
lock they show may be past its expiry if no command has swept it yet.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

from .history import INF, Operation

LEASED = ("claimed", "running")
EPS = 1e-6  # float slack on expiries carried through JSON


# -- work items --------------------------------------------------------------------------------

class Item(NamedTuple):
    status: str = "absent"  # absent | pending | claimed | running | completed | failed
    token: int | None = None
    attempts: int = 0
    max_attempts: int = 3
    last_token: int = 0  # claim tokens only grow


def work_step(s: Item, op: Operation) -> list[Item]:
    kind, out = op.input["op"], op.output
    if kind == "read":
        if s.status == "absent":
            return [s] if not out.get("found") else []
        ok = (out.get("found") and out.get("status") == s.status and out.get("attempts") == s.attempts
              and out.get("claim_token") == s.token)
        return [s] if ok else []
    if kind == "add":
        added = s._replace(status="pending", max_attempts=op.input.get("max_attempts", 3))
        if out is None:
            return [s, added] if s.status == "absent" else [s]
        if out["ok"]:
            return [added] if s.status == "absent" else []
        return [s] if s.status != "absent" else []
    if kind == "claim":
        token = op.input.get("token") if out is None else out["token"]
        claimed = s._replace(status="claimed", token=token, last_token=max(s.last_token, token))
        if out is None:
            return [s, claimed] if s.status == "pending" and token > s.last_token else [s]
        return [claimed] if s.status == "pending" and token > s.last_token else []
    # start, renew, complete, fail: fenced by the claim token
    holds = s.status in LEASED and s.token == op.input["token"]
    after = _work_effect(s, op)
    if out is None:
        return [s, after] if holds else [s]
    if not out["ok"]:
        return [s] if not holds else []
    if not holds:
        return []
    if kind in ("complete", "fail") and (out.get("status"), out.get("attempts")) != (after.status, after.attempts):
        return []
    return [after]


def _work_effect(s: Item, op: Operation) -> Item:
    kind = op.input["op"]
    if kind == "start":
        return s._replace(status="running")
    if kind == "complete":
        return s._replace(status="completed")
    if kind == "fail":
        attempts = s.attempts + 1
        if op.input.get("retry", True) and attempts < s.max_attempts:
            return s._replace(status="pending", token=None, attempts=attempts)
        return s._replace(status="failed", attempts=attempts)
    return s  # renew: the lease only


# -- locks -------------------------------------------------------------------------------------

class Lock(NamedTuple):
    holder: str | None = None
    token: int | None = None  # None while held under a grant whose answer was lost
    lo: float = 0.0  # the expiry lies in [lo, hi]
    hi: float = 0.0
    last_token: int = 0  # fence tokens only grow


def _lapsed_by(s: Lock, t: float) -> bool:
    """The lock may be free at time ``t``."""
    return s.holder is None or t >= s.lo - EPS


def _live_at(s: Lock, t: float) -> bool:
    """The lock may still be held at time ``t``."""
    return s.holder is not None and t < s.hi + EPS


def _is(s: Lock, holder: str, token: int) -> bool:
    return s.holder == holder and s.token in (token, None)


def lock_step(s: Lock, op: Operation) -> list[Lock]:
    kind, out, inp = op.input["op"], op.output, op.input
    if kind == "read":
        if not out["held"]:
            return [s] if _lapsed_by(s, op.ret) else []
        # No liveness test: the machine's clock moves only with commands (each sweeps what has
        # lapsed before it applies), so a read may show a lock past its expiry until the next one.
        ok = _is(s, out["holder"], out["token"]) and s.lo - EPS <= out["expires_at"] <= s.hi + EPS
        return [s] if ok else []
    holder = inp["holder"]
    if kind == "acquire":
        if out is None:
            states = [s, Lock(holder, None, op.call + inp["ttl"], INF, s.last_token)]
            if s.holder == holder:
                states.append(s._replace(lo=op.call + inp["ttl"], hi=INF))
            return states
        if not out["ok"]:
            if out.get("error") != "lock_held":
                return [s]  # refused for its arguments: no effect
            return [s] if s.holder == out.get("holder") != holder and _live_at(s, op.call) else []
        token, expiry = out["token"], out["expires_at"]
        # When the leader applied it (unknown: as early or as late as the call allows).
        stamp = out.get("stamp")
        held = Lock(holder, token, expiry, expiry, max(s.last_token, token))
        if out["renewed"]:
            return [held] if _is(s, holder, token) and _live_at(s, op.call if stamp is None else stamp) else []
        return [held] if token > s.last_token and _lapsed_by(s, op.ret if stamp is None else stamp) else []
    token = inp["token"]
    if out is None:
        if not _is(s, holder, token):
            return [s]
        if kind == "renew":
            return [s, s._replace(token=token, lo=op.call + (inp.get("ttl") or 0), hi=INF)]
        return [s, Lock(last_token=max(s.last_token, token))]
    if not out["ok"]:
        return [s] if not _is(s, holder, token) or _lapsed_by(s, op.ret) or s.token is None else []
    if not (_is(s, holder, token) and _live_at(s, op.call)):
        return []
    if kind == "renew":
        expiry = out["expires_at"]
        if not _live_at(s, out["stamp"] if out.get("stamp") is not None else op.call):
            return []
        return [s._replace(token=token, lo=expiry, hi=expiry, last_token=max(s.last_token, token))]
    return [Lock(last_token=max(s.last_token, token))]  # released


# -- model registry ----------------------------------------------------------------------------

def registry_step(s: frozenset, op: Operation) -> list[frozenset]:
    """A model name: ``s`` holds its (version, stage) pairs."""
    kind, out, version = op.input["op"], op.output, op.input.get("version")
    stages = dict(s)
    if kind == "read":
        return [s] if dict(s) == out["versions"] else []
    if kind == "register":
        added = frozenset({**stages, version: "candidate"}.items())
        if out is None:
            return [s, added] if version not in stages else [s]
        if out["ok"]:  # registering the same content again answers ok, created false
            created = out.get("created")
            if version in stages:
                return [s] if not created else []
            return [added] if created is not False else []
        return [s] if version in stages else []
    if kind == "promote":  # one production version per name: the one before it is archived
        promoted = {v: ("archived" if st == "production" else st) for v, st in stages.items()}
        promoted[version] = "production"
        after = frozenset(promoted.items())
        if out is None:
            return [s, after] if version in stages else [s]
        if out["ok"]:
            return [after] if version in stages else []
        return [s] if version not in stages else []
    return []


class Model(NamedTuple):
    name: str
    init: Any
    step: Callable[[Any, Operation], list[Any]]


MODELS = {"work": Model("work item", Item(), work_step), "lock": Model("lock", Lock(), lock_step),
          "model": Model("model registry", frozenset(), registry_step)}


def model_for(key: str) -> Model:
    return MODELS[key.split(":", 1)[0]]


__all__ = ["Item", "Lock", "MODELS", "Model", "lock_step", "model_for", "registry_step", "work_step"]
