"""The leadership an election backend publishes: its current view, the subscribers told of each
change, and the callers waiting for a leader. One copy of that bookkeeping for every backend
that keeps its view on the loop (Raft, the Raft observer, the manual stub)."""

from __future__ import annotations

import asyncio
import time
from typing import Callable, Optional

from ..errors import NoLeader
from ..events import EventHub, Subscription
from ..model import ElectionOutcome, Leadership, LeadershipEvent
from ..timeouts import within

NO_LEADER = Leadership(leader=None, term=0, is_self=False)


class LeadershipTracker:
    """``current`` is the published view; :meth:`publish` changes it, tells the subscribers and
    wakes :meth:`wait_for_leader`."""

    def __init__(self) -> None:
        self.current: Leadership = NO_LEADER
        self._hub: EventHub[LeadershipEvent] = EventHub()
        self._changed = asyncio.Event()

    def subscribe(self) -> Subscription[LeadershipEvent]:
        return self._hub.subscribe()

    def publish(self, view: Leadership, *, outcome: Optional[ElectionOutcome] = None,
                latency_s: Optional[float] = None) -> None:
        self.current = view
        self._hub.publish(LeadershipEvent(leadership=view, changed=True, election_outcome=outcome,
                                          election_latency_s=latency_s))
        # A fresh event per change: a waiter woken by this one never sees it set again.
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for_leader(self, timeout: float, no_leader: Callable[[Leadership], str], *,
                              refresh: Optional[Callable[[], None]] = None,
                              poll_s: Optional[float] = None) -> Leadership:
        """Return once ``current`` names a leader; ``NoLeader(no_leader(current))`` after
        ``timeout``. ``refresh`` runs before each look, at least every ``poll_s`` when given
        (for a backend whose view also changes without a publish reaching the loop)."""
        deadline = time.monotonic() + timeout
        while True:
            if refresh is not None:
                refresh()
            if self.current.leader is not None:
                return self.current
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NoLeader(no_leader(self.current))
            try:
                await within(self._changed.wait(), remaining if poll_s is None else min(remaining, poll_s))
            except asyncio.TimeoutError:
                pass

    def close(self) -> None:
        self._hub.close()


__all__ = ["LeadershipTracker", "NO_LEADER"]
