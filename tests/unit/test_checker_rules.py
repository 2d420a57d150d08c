"""Every rule of every pure checker can fail, and does not fire on a consistent history.

One row per rule: a history that violates it (the verdict names it) and its repaired twin (no
violation at all). ``test_every_rule_has_a_row`` reads the checkers' source and fails when a
rule (a place that reports a violation) has no row, so a new rule comes with its proof.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

from ringrift_cluster.testing import checks
from ringrift_cluster.testing.checks.calls import NOT_APPLIED, OK, REFUSED, UNKNOWN, Attempt, Call, FinalState
from ringrift_cluster.testing.checks.deaths import false_deaths
from ringrift_cluster.testing.checks.leadership import leader_violations
from ringrift_cluster.testing.checks.rounds import Exemption, Round, View
from ringrift_cluster.testing.checks.state import check_history

CHECKS = Path(checks.__file__).resolve().parent


class H:
    """A history builder: calls one second apart, answered on node-1."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.t = 1000.0

    def add(self, op: str, args: dict, outcome: str = OK, result: dict | None = None,
            attempts: list[tuple[str, float]] | None = None, client: str = "c") -> Call:
        self.t += 1.0
        call = Call(len(self.calls) + 1, client, op, args, f"rid-{len(self.calls) + 1}", self.t, self.t + 0.5,
                    outcome, result if outcome in (OK, REFUSED) else None)
        for o, start in attempts or [(outcome, self.t)]:
            call.attempts.append(Attempt("node-1", start, start + 0.1, 200, o, o))
        self.calls.append(call)
        return call

    def work(self, w: str, outcome: str = OK, error: str | None = None) -> Call:
        result = {"ok": outcome == OK, "clock": self.t + 1}
        if error:
            result["error"] = error
        return self.add("work.add", {"work_id": w, "work_type": "train", "config": {"n": w}}, outcome, result)

    def claim(self, w: str, token: int, worker: str = "worker-1", outcome: str = OK) -> Call:
        item = {"work_id": w, "claim_token": token, "claimed_by": worker, "claimed_at": self.t + 1,
                "expires_at": self.t + 601, "status": "claimed"}
        return self.add("work.claim", {"node_id": worker, "lease_s": 600.0}, outcome,
                        {"ok": True, "item": item, "claim_token": token, "expires_at": self.t + 601, "clock": self.t + 1})

    def follow(self, op: str, w: str, token: int, outcome: str = OK, error: str | None = None,
               expires_at: float | None = None) -> Call:
        result: dict[str, Any] = {"ok": outcome == OK, "clock": self.t + 1}
        if error:
            result["error"] = error
        if expires_at is not None:
            result["expires_at"] = expires_at
        return self.add(op, {"work_id": w, "claim_token": token}, outcome, result)

    def lock(self, op: str, holder: str, token: int | None, acquired_at: float = 2000.0,
             expires_at: float | None = 2002.0, outcome: str = OK, renewed: bool = False, name: str = "L",
             clock: float | None = None) -> Call:
        if op == "lock.release":
            result: dict[str, Any] = {"ok": True, "name": name, "holder": holder, "fence_token": token,
                                      "clock": expires_at if clock is None else clock, "released": True}
        else:
            result = {"ok": True, "name": name, "holder": holder, "fence_token": token, "acquired_at": acquired_at,
                      "expires_at": expires_at, "renewed": renewed,
                      "clock": (acquired_at if not renewed else self.t) if clock is None else clock}
            if token is None:
                del result["fence_token"]
        args = {"name": name, "holder": holder, "ttl_s": 2.0}
        if op != "lock.acquire":
            args["fence_token"] = token
        return self.add(op, args, outcome, result)

    def held(self, holder: str = "worker-2", clock: float = 2001.0, name: str = "L") -> Call:
        return self.add("lock.acquire", {"name": name, "holder": holder, "ttl_s": 2.0}, REFUSED,
                        {"ok": False, "error": "lock_held", "holder": "worker-1", "expires_at": clock + 5, "clock": clock})

    def model(self, outcome: str = OK, uri: str = "s3://1") -> Call:
        return self.add("model.register", {"name": "m", "version": "v1", "uri": uri, "checksum": "c1"}, outcome,
                        {"ok": outcome == OK, "clock": self.t + 1})

    def read(self, w: str, item: dict | None) -> Call:
        if item is None:
            return self.add("work.read", {"work_id": w}, REFUSED, {"error": "not found"})
        return self.add("work.read", {"work_id": w}, OK, {"item": item})


def item(w: str, status: str = "pending", token: int | None = None, by: str | None = None, **extra: Any) -> dict:
    return {"work_id": w, "work_type": "train", "config": {"n": w}, "status": status, "claim_token": token,
            "claimed_by": by, **extra}


def final(items: dict, locks: dict | None = None, models: dict | None = None, total: int | None = None,
          clock: float = 1100.0) -> FinalState:
    """The final state, read at ``clock`` (claims granted near 1000 hold 600 s leases; the lock
    histories use clocks near 2000 and read at 3000)."""
    return FinalState(items=items, locks=locks or {}, models=models or {},
                      total_items=sum(1 for i in items.values() if i) if total is None else total, clock=clock)


def lock_state(holder: str, token: int, expires_at: float = 5000.0) -> dict:
    return {"L": {"name": "L", "holder": holder, "fence_token": token, "expires_at": expires_at}}


M1 = {"m": [{"version": "v1", "uri": "s3://1", "checksum": "c1"}]}


# --------------------------------------------------------------------------------------------
# check_history: (site in the checker's source, verdict text, violating history, repaired one)


@dataclass
class Row:
    site: str  # a fragment of the reporting line in the checkers' source
    verdict: str  # what the violation says
    bad: Callable[[], list[str]]
    good: Callable[[], list[str]]


def history(build: Callable[[H], FinalState]) -> Callable[[], list[str]]:
    def run() -> list[str]:
        h = H()
        state = build(h)
        return check_history(h.calls, state)
    return run


def _bad_refusal(error: str) -> Callable[[H], FinalState]:
    def build(h: H) -> FinalState:
        h.work("w1", REFUSED, error=error)
        return final({"w1": None})
    return build


def _retry(clock: float) -> Callable[[H], FinalState]:
    def build(h: H) -> FinalState:
        h.add("work.add", {"work_id": "w1", "work_type": "train", "config": {"n": "w1"}}, OK, {"ok": True, "clock": clock},
              attempts=[(NOT_APPLIED, 1000.0), (OK, 1001.0)])
        return final({"w1": item("w1")})
    return build


def _models(outcome: str, state: dict, uri: str = "s3://1", register: bool = True) -> Callable[[H], FinalState]:
    def build(h: H) -> FinalState:
        if register:
            h.model(outcome, uri)
        return final({}, models=state)
    return build


def _stale_read(found: dict | None, complete: bool = False) -> Callable[[H], FinalState]:
    def build(h: H) -> FinalState:
        h.work("w1")
        if complete:
            h.claim("w1", 1)
            h.follow("work.complete", "w1", 1)
        h.read("w1", found)
        return final({"w1": item("w1", "completed", 1, "worker-1") if complete else item("w1")})
    return build


def _add(outcome: str, state: dict | None, total: int | None = None) -> Callable[[H], FinalState]:
    def build(h: H) -> FinalState:
        h.work("w1", outcome)
        return final({"w1": state}, total=total)
    return build


def _two_claims(fail_between: bool, t2: int = 2) -> Callable[[H], FinalState]:
    def build(h: H) -> FinalState:
        h.work("w1")
        h.claim("w1", 1)
        if fail_between:
            h.follow("work.fail", "w1", 1)
        h.claim("w1", t2, "worker-2")
        return final({"w1": item("w1", "claimed", t2, "worker-2")})
    return build


def _token_two_items(second: int) -> Callable[[H], FinalState]:
    def build(h: H) -> FinalState:
        h.work("w1"), h.work("w2")
        h.claim("w1", 1)
        h.claim("w2", second, "worker-2")
        return final({"w1": item("w1", "claimed", 1, "worker-1"), "w2": item("w2", "claimed", second, "worker-2")})
    return build


def _claim_then(state: dict | None, *follow: tuple[str, str]) -> Callable[[H], FinalState]:
    def build(h: H) -> FinalState:
        h.work("w1")
        h.claim("w1", 1)
        for op, outcome in follow:
            h.follow(op, "w1", 1, outcome)
        return final({"w1": state})
    return build


def _older_token(final_token: int) -> Callable[[H], FinalState]:
    def build(h: H) -> FinalState:
        h.work("w1")
        h.claim("w1", 1)
        h.follow("work.fail", "w1", 1)
        h.claim("w1", 2)
        return final({"w1": item("w1", "claimed", final_token, "worker-1")})
    return build


def _refused_follow_up(fail_first: bool) -> Callable[[H], FinalState]:
    def build(h: H) -> FinalState:
        h.work("w1")
        h.claim("w1", 1)
        if fail_first:
            h.follow("work.fail", "w1", 1, UNKNOWN)
        h.follow("work.start", "w1", 1, REFUSED, error="stale_token")
        return final({"w1": item("w1") if fail_first else item("w1", "claimed", 1, "worker-1")})
    return build


def _renewal(final_expiry: float) -> Callable[[H], FinalState]:
    def build(h: H) -> FinalState:
        h.work("w1")
        h.claim("w1", 1)
        h.follow("work.renew", "w1", 1, expires_at=1700.0)
        return final({"w1": item("w1", "claimed", 1, "worker-1", expires_at=final_expiry)})
    return build


def _completed(complete: str | None) -> Callable[[H], FinalState]:
    def build(h: H) -> FinalState:
        h.work("w1")
        h.claim("w1", 1)
        if complete:
            h.follow("work.complete", "w1", 1, complete)
        return final({"w1": item("w1", "completed", 1, "worker-1")})
    return build


def _unexplained(unknown_claim: bool) -> Callable[[H], FinalState]:
    def build(h: H) -> FinalState:
        h.work("w1")
        if unknown_claim:
            h.claim("w1", 9, outcome=UNKNOWN)
        return final({"w1": item("w1", "claimed", 9, "worker-1")})
    return build


def _lock_token(token: int | None) -> Callable[[H], FinalState]:
    def build(h: H) -> FinalState:
        h.lock("lock.acquire", "worker-1", token)
        return final({}, clock=3000.0)
    return build


def _token_two_holders(second: int) -> Callable[[H], FinalState]:
    def build(h: H) -> FinalState:
        h.lock("lock.acquire", "worker-1", 5, 2000.0, 2002.0)
        h.lock("lock.acquire", "worker-2", second, 2003.0, 2005.0)
        return final({}, clock=3000.0)
    return build


def _acquired_at(second: float) -> Callable[[H], FinalState]:
    def build(h: H) -> FinalState:
        h.lock("lock.acquire", "worker-1", 5, 2000.0, 2002.0)
        h.lock("lock.acquire", "worker-1", 5, second, 2003.0, renewed=True)
        return final({}, clock=3000.0)
    return build


def _fence_order(second: int) -> Callable[[H], FinalState]:
    def build(h: H) -> FinalState:
        h.lock("lock.acquire", "worker-1", 7, 2000.0, 2001.0)
        h.lock("lock.acquire", "worker-2", second, 2002.0, 2003.0)
        return final({}, clock=3000.0)
    return build


def _window(variant: str, overlap: bool) -> Callable[[H], FinalState]:
    def build(h: H) -> FinalState:
        start = 2003.0 if overlap else 2005.0
        h.lock("lock.acquire", "worker-1", 3, 2000.0, 2002.0)
        if variant == "valid until":
            h.lock("lock.renew", "worker-1", 3, 2000.0, 2004.0, renewed=True, clock=2001.0)
        elif variant == "released at":
            h.lock("lock.renew", "worker-1", 3, 2000.0, 2010.0, renewed=True, clock=2001.0)
            h.lock("lock.release", "worker-1", 3, clock=2004.0)
        else:  # a release of unknown outcome: the last acknowledged answer bounds the window
            h.lock("lock.renew", "worker-1", 3, 2000.0, 2010.0, renewed=True, clock=2004.0)
            h.lock("lock.release", "worker-1", 3, outcome=UNKNOWN)
        h.lock("lock.acquire", "worker-2", 4, start, start + 2.0)
        return final({}, clock=3000.0)
    return build


def _shortened(second_at: float, unknown: bool = False) -> Callable[[H], FinalState]:
    """worker-1's lease (to 2004) shortened by its own re-acquire with a shorter TTL (to 2002.5), or
    by one of unknown outcome (TTL 1 s, started at 2001: it may end the lease at 2002)."""
    def build(h: H) -> FinalState:
        h.lock("lock.acquire", "worker-1", 3, 2000.0, 2004.0)
        if unknown:
            c = h.add("lock.acquire", {"name": "L", "holder": "worker-1", "ttl_s": 1.0}, UNKNOWN)
            c.start, c.end = 2001.0, None
        else:
            h.lock("lock.acquire", "worker-1", 3, 2000.0, 2002.5, renewed=True, clock=2001.0)
        h.lock("lock.acquire", "worker-2", 4, second_at, second_at + 2.0)
        return final({}, clock=3000.0)
    return build


def _final_lock(holder: str, token: int, release: bool = False, acquirer: str | None = None) -> Callable[[H], FinalState]:
    def build(h: H) -> FinalState:
        h.lock("lock.acquire", "worker-1", 5, 1000.0, 5000.0)
        if release:
            h.lock("lock.release", "worker-1", 5, clock=1050.0)
        if acquirer:
            h.add("lock.acquire", {"name": "L", "holder": acquirer, "ttl_s": 2.0}, UNKNOWN)
        return final({}, locks=lock_state(holder, token) if not (release and token == 0) else {}, clock=3000.0)
    return build


def _lost_release(reacquire: bool) -> Callable[[H], FinalState]:
    def build(h: H) -> FinalState:
        h.lock("lock.acquire", "worker-1", 5, 2000.0, 2002.0)
        h.lock("lock.release", "worker-1", 5, clock=2001.0)
        if reacquire:
            h.lock("lock.acquire", "worker-1", 6, 2001.5, 2003.5)
        h.held("worker-2", clock=2002.5)
        return final({}, clock=3000.0)
    return build


def _lost_grant(held: bool) -> Callable[[H], FinalState]:
    def build(h: H) -> FinalState:
        h.lock("lock.acquire", "worker-1", 5, 1000.0, 5000.0)
        return final({}, locks=lock_state("worker-1", 5) if held else {}, clock=3000.0)
    return build


def _lost_lock_renewal(final_expiry: float) -> Callable[[H], FinalState]:
    def build(h: H) -> FinalState:
        h.lock("lock.acquire", "worker-1", 5, 1000.0, 3000.0)
        h.lock("lock.renew", "worker-1", 5, 1000.0, 5000.0, renewed=True, clock=1050.0)
        return final({}, locks=lock_state("worker-1", 5, final_expiry), clock=3000.0)
    return build


ROWS: dict[str, Row] = {
    # answers
    "bad refusal": Row("refusal no correct client should see", "refusal no correct client should see",
                       history(_bad_refusal("rid_conflict")), history(_bad_refusal("already_exists"))),
    "not applied was applied": Row("503 no_leader (not applied) was applied", "503 no_leader (not applied) was applied",
                                   history(_retry(1000.5)), history(_retry(1001.5))),
    # models
    "lost registration": Row("acknowledged registration of model", "acknowledged registration of model m v1",
                             history(_models(OK, {})), history(_models(OK, M1))),
    "registration never happened": Row("every registration of it was refused", "every registration of it was refused",
                                       history(_models(REFUSED, M1)), history(_models(REFUSED, {}))),
    "registration mismatch": Row("that no registration sent", "that no registration sent",
                                 history(_models(OK, M1, uri="s3://2")), history(_models(OK, M1))),
    "model never registered": Row("this workload never registered it", "never registered it",
                                  history(_models(OK, M1, register=False)), history(_models(OK, {}, register=False))),
    # reads during the run
    "stale read: missing": Row("was not found by a linearizable read", "stale read: w1 was not found",
                               history(_stale_read(None)), history(_stale_read(item("w1")))),
    "stale read: not completed": Row("after its complete was acknowledged", "stale read: w1 read as claimed",
                                     history(_stale_read(item("w1", "claimed", 1, "worker-1"), complete=True)),
                                     history(_stale_read(item("w1", "completed", 1, "worker-1"), complete=True))),
    # work: adds
    "lost add": Row("acknowledged add of", "acknowledged add of w1", history(_add(OK, None)), history(_add(OK, item("w1")))),
    "add never happened": Row("every add of it was refused or not applied", "every add of it was refused or not applied",
                              history(_add(NOT_APPLIED, item("w1"))), history(_add(UNKNOWN, item("w1")))),
    "add mismatch": Row("does not match its add", "does not match its add",
                        history(_add(OK, {**item("w1"), "work_type": "other"})), history(_add(OK, item("w1")))),
    "phantom items": Row("only {ours} of them added by this workload", "only 1 of them added by this workload",
                         history(_add(OK, item("w1"), total=2)), history(_add(OK, item("w1"), total=1))),
    # work: claims
    "double claim": Row("double claim of", "double claim of w1", history(_two_claims(False)), history(_two_claims(True))),
    "token on two claims": Row("one claim token returned to two claims", "one claim token returned to two claims of w1",
                               history(_two_claims(True, t2=1)), history(_two_claims(True, t2=2))),
    "token on two items": Row("granted for two items", "claim token 1 granted for two items",
                              history(_token_two_items(1)), history(_token_two_items(2))),
    "item gone after claim": Row("but the item is gone", "acknowledged claim of w1 (token 1) but the item is gone",
                                 history(_claim_then(None)), history(_claim_then(item("w1", "claimed", 1, "worker-1")))),
    "token held by another": Row("but the claim was {worker}'s", "but the claim was worker-1's",
                                 history(_claim_then(item("w1", "claimed", 1, "worker-2"))),
                                 history(_claim_then(item("w1", "claimed", 1, "worker-1")))),
    "back at an older token": Row("is back at the older claim token", "is back at the older claim token 1",
                                  history(_older_token(1)), history(_older_token(2))),
    "claim vanished": Row("neither holds nor ended", "neither holds nor ended",
                          history(_claim_then(item("w1"))), history(_claim_then(item("w1", "claimed", 1, "worker-1")))),
    "lost complete": Row("acknowledged complete of", "acknowledged complete of w1",
                         history(_claim_then(item("w1", "claimed", 1, "worker-1"), ("work.complete", OK))),
                         history(_claim_then(item("w1", "completed", 1, "worker-1"), ("work.complete", OK)))),
    "lost fail": Row("acknowledged fail of", "acknowledged fail of w1",
                     history(_claim_then(item("w1", "claimed", 1, "worker-1"), ("work.fail", OK))),
                     history(_claim_then(item("w1"), ("work.fail", OK)))),
    "lost start": Row("but it is only claimed", "acknowledged start of w1 (token 1) but it is only claimed",
                      history(_claim_then(item("w1", "claimed", 1, "worker-1"), ("work.start", OK))),
                      history(_claim_then(item("w1", "running", 1, "worker-1"), ("work.start", OK)))),
    "refused follow-up": Row("claim lost: {c.op} on the acknowledged, live claim", "claim lost: work.start",
                             history(_refused_follow_up(False)), history(_refused_follow_up(True))),
    "lost work renewal": Row("in the final state, before ", "expires at 1500.000 in the final state, before the acknowledged work.renew",
                             history(_renewal(1500.0)), history(_renewal(1700.0))),
    "completed without a complete": Row("but no complete of it may have happened", "no complete of it may have happened",
                                        history(_completed(None)), history(_completed(UNKNOWN))),
    "unexplained tokens": Row("with tokens no acknowledged claim returned", "with tokens no acknowledged claim returned",
                              history(_unexplained(False)), history(_unexplained(True))),
    # locks
    "answer without a token": Row("lock answer without a fence token", "lock answer without a fence token",
                                  history(_lock_token(None)), history(_lock_token(5))),
    "token on two grants": Row("belongs to two grants", "fence token 5 belongs to two grants",
                               history(_token_two_holders(5)), history(_token_two_holders(6))),
    "two acquired_at": Row("with two acquired_at values", "fence token 5 of L with two acquired_at values",
                           history(_acquired_at(2000.5)), history(_acquired_at(2000.0))),
    "fence went back": Row("did not increase", "fence token of L did not increase",
                           history(_fence_order(5)), history(_fence_order(8))),
    "window: valid until": Row("(fence {t1}) {how}", "(fence 3) valid until 2004.000",
                               history(_window("valid until", True)), history(_window("valid until", False))),
    "window: shortened by a re-acquire": Row("(fence {t1}) {how}", "(fence 3) valid until 2002.500",
                                             history(_shortened(2002.2)), history(_shortened(2002.6))),
    "window: maybe shortened": Row("(fence {t1}) {how}", "(fence 3) valid until 2002.000",
                                   history(_shortened(2001.5, unknown=True)), history(_shortened(2002.2, unknown=True))),
    "window: released at": Row("(fence {t1}) {how}", "(fence 3) released at 2004.000",
                               history(_window("released at", True)), history(_window("released at", False))),
    "window: unknown release": Row("(fence {t1}) {how}", "(fence 3) last acknowledged at",
                                   history(_window("unknown", True)), history(_window("unknown", False))),
    "final lock older": Row("by {lock.get('holder')}, older ", "is held with fence token 4 by worker-1, older than the acknowledged grant 5",
                            history(_final_lock("worker-1", 4, acquirer="worker-1")), history(_final_lock("worker-1", 5))),
    "final token of another holder": Row("but that token ", "but that token was granted to worker-1",
                                         history(_final_lock("worker-2", 5, acquirer="worker-2")),
                                         history(_final_lock("worker-1", 5))),
    "held after release": Row("after its release ", "is still held with fence token 5 after its release",
                              history(_final_lock("worker-1", 5, release=True)),
                              history(_final_lock("worker-1", 0, release=True))),
    "held by a non-acquirer": Row("but no acquire of it by that ", "is held by worker-9 (fence 9), but no acquire",
                                  history(_final_lock("worker-9", 9)),
                                  history(_final_lock("worker-9", 9, acquirer="worker-9"))),
    "lost release (lock_held)": Row("was refused as held by", "was refused as held by worker-1 after worker-1's release",
                                    history(_lost_release(False)), history(_lost_release(True))),
    "lost grant": Row("acknowledged grant of lock", "acknowledged grant of lock L to worker-1 (fence 5) valid until",
                      history(_lost_grant(False)), history(_lost_grant(True))),
    "lost lock renewal": Row("(fence {token}) expires at", "lock L (fence 5) expires at 4000.000 in the final state",
                             history(_lost_lock_renewal(4000.0)), history(_lost_lock_renewal(5000.0))),
}


@pytest.mark.parametrize("name", list(ROWS))
def test_check_history_rule(name: str) -> None:
    row = ROWS[name]
    found = row.bad()
    assert any(row.verdict in v for v in found), found
    assert row.good() == []


def test_a_refusal_at_the_clock_of_the_release_is_no_lost_release() -> None:
    # The refused acquire, stamped later, was applied first: the release (stamped earlier, applied
    # after it) left the machine clock where the acquire had put it. Seen under heavy load.
    h = H()
    h.lock("lock.acquire", "worker-1", 5, 2000.0, 2002.0)
    h.lock("lock.release", "worker-1", 5, clock=2001.0)
    h.held("worker-2", clock=2001.0)
    assert check_history(h.calls, final({}, clock=3000.0)) == []


# --------------------------------------------------------------------------------------------
# leader_violations and false_deaths


def view(node: str, role: str | None = "follower", leader: str | None = None, term: int | None = 1,
         lease: float | None = None, peers: dict | None = None) -> View:
    return View(node, role, leader, term, lease, peers or {})


def rnd(t: float, *views: View) -> Round:
    return Round(t, t + 0.1, {v.node: v for v in views})


def lead(node: str, term: int = 1, lease: float | None = 2000.0) -> View:
    return view(node, "leader", node, term, lease)


LEADER_ROWS: dict[str, tuple[str, str, Callable[[], list[str]], Callable[[], list[str]]]] = {
    "one leader per term": (
        'out = [f"term {t}: claimed by', "term 1: claimed by ['a', 'b']",
        lambda: leader_violations([rnd(1000, lead("a")), rnd(1001, lead("b", lease=None))]),
        lambda: leader_violations([rnd(1000, lead("a")), rnd(1001, lead("b", term=2, lease=None))])),
    "followers agree per term": (
        "followers name different leaders", "term 1: followers name different leaders ['a', 'b']",
        lambda: leader_violations([rnd(1000, view("c", leader="a")), rnd(1001, view("d", leader="b"))]),
        lambda: leader_violations([rnd(1000, view("c", leader="a")), rnd(1001, view("d", leader="b", term=2))])),
    "no two unexpired leases": (
        "leaders with unexpired leases", "2 leaders with unexpired leases",
        lambda: leader_violations([rnd(1000, lead("a", 1, 1005.0), lead("b", 2, 1005.0))]),
        lambda: leader_violations([rnd(1000, lead("a", 1, 1000.05), lead("b", 2, 1005.0))])),
    "a leader reports its lease": (
        "but reports no lease_expires", "a claims leadership of term 1 but reports no lease_expires",
        lambda: leader_violations([rnd(1000, lead("a", lease=None))], leases=True),
        lambda: leader_violations([rnd(1000, lead("a", lease=1005.0))], leases=True)),
}


@pytest.mark.parametrize("name", list(LEADER_ROWS))
def test_leader_violations_rule(name: str) -> None:
    _, verdict, bad, good = LEADER_ROWS[name]
    found = bad()
    assert any(verdict in v for v in found), found
    assert good() == []


def _dead_rounds(at: float) -> list[Round]:
    return [rnd(at, view("a", peers={"b": "failed"}), view("b"))]


def _log(tmp_path: Path, at: float) -> dict[str, Path]:
    from datetime import datetime, timezone

    path = tmp_path / "a.log"
    stamp = datetime.fromtimestamp(at, timezone.utc).isoformat()
    path.write_text('{"timestamp": "%s", "event": "member_failed", "node_id": "b"}\n' % stamp)
    return {"a": path}


def test_false_deaths_status_verdict() -> None:
    assert "a saw b failed" in false_deaths(_dead_rounds(1000.0))[0][0]
    assert false_deaths(_dead_rounds(1000.0), [Exemption("b", 999.0, 1001.0)]) == ([], [])


def test_false_deaths_log_verdict(tmp_path: Path) -> None:
    logs = _log(tmp_path, 1000.0)
    assert "a declared b failed" in false_deaths([], logs=logs)[0][0]
    assert false_deaths([], [Exemption("b", 999.0, 1001.0)], logs=logs) == ([], [])
    assert false_deaths([], logs=logs, since=1000.5) == ([], [])


def test_false_deaths_known_issue_is_reported_as_known() -> None:
    violations, known = false_deaths(_dead_rounds(1000.0), [Exemption("b", 999.0, 1001.0, known="issue X")])
    assert violations == [] and known and known[0].startswith("issue X: a saw b failed")


def test_false_deaths_after_the_exemption_ends() -> None:
    """The audit's probe: node-2 restarted at 10 s and declared failed 20 s later. With the
    exemption ending when it is back (not at infinity), the late verdict is a violation."""
    exempt = Exemption("b", 0.0, 12.0, as_observer=True)
    assert false_deaths(_dead_rounds(30.0), [exempt])[0], "a false death after the restart must be reported"
    assert false_deaths(_dead_rounds(5.0), [exempt]) == ([], [])
    # An earlier exempt verdict does not hide a later one.
    assert false_deaths(_dead_rounds(5.0) + _dead_rounds(30.0), [exempt])[0]


# --------------------------------------------------------------------------------------------
# Every rule has a row


RULE_LINE = re.compile(r'(out\.append\(f?"|overlaps\.append\(|unleased\.append\(|out \+?= \[f"|'
                       r'violations\.setdefault\()')


def _rule_sites() -> list[str]:
    sites = []
    for name in ("state.py", "work.py", "locks.py", "leadership.py", "deaths.py"):
        lines = (CHECKS / name).read_text().splitlines()
        for i, line in enumerate(lines):
            if RULE_LINE.search(line) and "role=leader" not in line:  # role_mismatches: a note
                sites.append(f"{name}:{i + 1}: {line.strip()} {lines[i + 1].strip() if i + 1 < len(lines) else ''}")
    return sites


def test_every_rule_has_a_row() -> None:
    sites = _rule_sites()
    fragments = [r.site for r in ROWS.values()] + [r[0] for r in LEADER_ROWS.values()]
    fragments.append("violations.setdefault")  # false_deaths: the tests above
    uncovered = [s for s in sites if not any(f in s for f in fragments)]
    assert uncovered == [], "rules without a row in this file:\n" + "\n".join(uncovered)
    assert len(sites) >= 43, sites  # 38 history rules, 4 leader rules, 1 death rule


# --------------------------------------------------------------------------------------------
# The recorder judges its own history


class _Node:
    running = True


class _Cluster:
    """Answers ``/status`` as told: a dict, None (no answer) or an exception (a broken answer)."""

    def __init__(self, answer: Any) -> None:
        self.nodes = {"a": _Node(), "b": _Node()}
        self.answer = answer

    def status(self, node_id: str, timeout: float = 1.0) -> dict[str, Any] | None:
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


def _recorded(answer: Any, rounds: int = 30) -> list[str]:
    from ringrift_cluster.testing.history import Recorder
    from ringrift_cluster.testing.wait import wait_until

    recorder = Recorder(_Cluster(answer), interval=0.01, round_s=0.2)
    with recorder:
        wait_until(lambda: len(recorder.snapshot()) + len(recorder.errors) >= rounds, 10.0, interval=0.01,
                   what="rounds recorded or failed")
    return recorder.health()


def test_recorder_health() -> None:
    assert _recorded({"role": "follower", "peers": {}}) == []
    assert any("got any answer" in p for p in _recorded(None, rounds=150))  # nobody ever answered
    # A malformed answer makes View.of raise: counted per round, the thread lives on.
    assert any("failed" in p and "rounds" in p for p in _recorded({"peers": ["not", "a", "dict"]}))


def test_a_compacted_finished_item_is_excused_and_an_unfinished_one_is_not() -> None:
    """With retention bounds, a finished item may be gone from the final state; only an item a
    complete or fail of may have happened is excused (``compactable``), and only from the rules
    that read the final state."""
    from ringrift_cluster.testing.checks.calls import compactable

    h = H()
    h.work("done")
    h.claim("done", 1)
    h.follow("work.complete", "done", 1)
    h.work("open")
    h.claim("open", 2)
    gone = final({"done": None, "open": None}, total=0)
    assert compactable(h.calls, gone) == frozenset({"done"})
    verdicts = check_history(h.calls, FinalState(**{**gone.__dict__, "compacted": compactable(h.calls, gone)}))
    assert verdicts and all("open" in v and "done" not in v for v in verdicts), verdicts
    assert any("acknowledged add of open" in v for v in verdicts), verdicts
