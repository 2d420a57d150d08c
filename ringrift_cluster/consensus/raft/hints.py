"""Leader-loss hints: a follower that *knows* the leader is gone campaigns at once, instead of
waiting out the whole election timeout.

pysyncobj starts an election only when its election deadline passes. That deadline must be
long enough that a busy leader (GIL contention, an fsync, a burst of entries) never looks dead,
or the cluster changes leader under load with nobody dead. A long deadline makes every real
failover wait for it, unless something stronger than silence says the leader is gone: the
follower's connection to the leader is closed and stays closed for ``confirm_s``. That is a
crashed or stopped process, whose kernel closes its sockets. A machine that loses power or its
network sends nothing, so that case still waits out the timeout. (Membership's word that the
leader failed comes later than the election timeout in every preset, so it is no hint.)

When to start an election is a matter of liveness and stability only, never of Raft's safety,
so pulling the deadline in is safe. Followers that learn of the loss together must not all
campaign at once and split the vote (a split costs a whole election timeout more), so each waits
its rank among the surviving voters (addresses in order) times ``step_s``, plus up to
``jitter_s``: the first campaigns at once, the others vote for it before their turn comes (a vote
pushes their own deadline out again), and take over in turn if it cannot win.

Everything here runs on pysyncobj's tick thread (from the engine's tick callback), the thread
that owns the deadline; the one reach into pysyncobj's internals is that deadline, kept here.
"""

from __future__ import annotations

import random
from typing import Any, Callable

# pysyncobj 0.3.x keeps the election deadline, on its own clock, in this private attribute.
_DEADLINE = "_SyncObj__raftElectionDeadline"


def supported(syncobj: Any) -> bool:
    """Whether this pysyncobj has the deadline we pull in (checked once, at start)."""
    return isinstance(getattr(syncobj, _DEADLINE, None), float)


class LeaderLossHints:
    """Runs on the tick thread, once per tick: watches the leader's connection."""

    def __init__(self, syncobj: Any, *, clock: Callable[[], float], confirm_s: float, step_s: float,
                 jitter_s: float, rand: Callable[[], float] = random.random) -> None:
        """``clock``: the one pysyncobj's deadline is on."""
        self._so = syncobj
        self._confirm_s = confirm_s
        self._step_s = step_s
        self._jitter_s = jitter_s
        self._clock = clock
        self._rand = rand
        self._enabled = supported(syncobj)
        self._lost_since: float | None = None
        self._lost_leader: Any = None
        self._acted_on: tuple[Any, int] | None = None  # (leader, term) already acted on
        self.elections_started = 0  # deadlines pulled in

    @property
    def enabled(self) -> bool:
        return self._enabled

    def on_tick(self) -> None:
        so = self._so
        if not self._enabled or so._isLeader():
            self._lost_since = None
            return
        leader = so._getLeader()
        if leader is None or so.isNodeConnected(leader):
            self._lost_since = None
            return
        now = self._clock()
        if self._lost_since is None or self._lost_leader != leader:
            self._lost_since, self._lost_leader = now, leader
        if now - self._lost_since < self._confirm_s:
            return
        key = (leader, int(so.raftCurrentTerm))
        if self._acted_on == key:
            return  # one pull per leader and term; after that pysyncobj's own timers rule
        self._acted_on = key
        deadline = now + self._delay(leader)
        if deadline < getattr(so, _DEADLINE):
            setattr(so, _DEADLINE, deadline)
            self.elections_started += 1

    def _delay(self, leader: Any) -> float:
        so = self._so
        me = str(so.selfNode.address)
        survivors = sorted({str(n.address) for n in so.otherNodes if n != leader} | {me})
        return survivors.index(me) * self._step_s + self._jitter_s * self._rand()


def hint_counts(hints: "LeaderLossHints | None") -> dict[str, Any]:
    """Elections started early on a leader-loss hint."""
    if hints is None:
        return {"enabled": False}
    return {"enabled": hints.enabled, "elections_started": hints.elections_started}
