"""Long-lived replicated state out of the garbage collector's full passes.

CPython's cyclic collector walks every tracked object in a full (generation 2) collection, and
runs one each time the long-lived heap has grown by a quarter. A replica holding a million work
items spends about a second in such a pass with the GIL held: every thread of the node stops,
the Raft tick thread with it, heartbeats stop, and followers elect a new leader with nobody
dead. The replicated state is plain acyclic data that reference counting alone frees, so it can
leave the collector's view: ``gc.freeze()`` moves every object alive into a permanent generation
that collections skip, in O(1).

When: once the state is large, after every few applies in proportion to its size (a 500th of
it, at least a thousand). Freezing only at growth steps is not enough: a queue that turns over
at a constant size fills the collector's view again with new items, and the automatic full pass
over them grows with the queue. With this rule the objects outside the frozen generation stay a
small fraction of the state, so every full pass, ours included, is short (about 1 ms at a
million items, against 42 ms when freezing at each tenth of growth).

The price: an object frozen while alive that later dies inside a reference cycle is never
reclaimed. A full collection just before each freeze leaves only what is in flight at that
instant (a request being served, a pending future), and the freezes come at most once per
thousand applies.
"""

from __future__ import annotations

import gc
import threading

FLOOR_ITEMS = 5_000  # below this a full collection takes about 2 ms: leave it be
MIN_STEP = 1_000  # applies between freezes, at least
STEP_FRACTION = 1 / 500  # ... and this share of the state's records


class HeapFreezer:
    """``applied(size, n)`` after every ``n`` applies; it collects and freezes the heap when due."""

    def __init__(self, floor: int = FLOOR_ITEMS, min_step: int = MIN_STEP,
                 fraction: float = STEP_FRACTION) -> None:
        self._floor, self._min_step, self._fraction = floor, min_step, fraction
        self._since = 0  # applies since the last freeze, in this process
        self._lock = threading.Lock()  # Raft applies on its thread, the legacy store on the loop
        self.freezes = 0

    def applied(self, size: int, n: int = 1) -> bool:
        """``size``: the records the state holds now; ``n``: applies since the last call."""
        with self._lock:
            self._since += n
            if size < self._floor or self._since < max(self._min_step, size * self._fraction):
                return False
            self._freeze()
            return True

    def baseline(self) -> None:
        """Once a process has started everything: freeze what is alive then (modules, engines,
        servers), which no later full collection need walk again. In a node that is most of the
        heap until the state grows large: full passes over it held the GIL for 45-60 ms, a stall
        of the Raft thread that every write in flight waited out."""
        with self._lock:
            self._freeze()

    def restored(self, size: int) -> bool:
        """A whole state was restored: freeze it at once if it is large."""
        with self._lock:
            if size < self._floor:
                return False
            self._freeze()
            return True

    def _freeze(self) -> None:
        gc.collect()  # what is already garbage is not frozen for good
        gc.freeze()
        self._since = 0
        self.freezes += 1


FREEZER = HeapFreezer()  # one heap per process
