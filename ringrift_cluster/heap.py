"""Long-lived replicated state out of the garbage collector's full passes.

CPython's cyclic collector walks every tracked object in a full (generation 2) collection, and
runs one each time the long-lived heap has grown by a quarter. A replica holding a million work
items spends about a second in such a pass with the GIL held: every thread of the node stops,
the Raft tick thread with it, heartbeats stop, and followers elect a new leader with nobody
dead. The replicated state is plain acyclic data that reference counting alone frees, so it can
leave the collector's view: ``gc.freeze()`` moves every object alive into a permanent generation
that collections skip, in O(1).

The price: an object frozen while alive that later dies inside a reference cycle is never
reclaimed. Freezing only when the state has grown by half since the last freeze bounds that to
what was in flight at a few moments, a logarithmic number of times as the state grows.
"""

from __future__ import annotations

import gc
import threading

FLOOR_ITEMS = 20_000  # below this a full collection takes a few milliseconds: leave it be
GROWTH = 1.1


class HeapFreezer:
    """``grew(items)`` after changes to the state; it freezes the heap at each growth step."""

    def __init__(self, floor: int = FLOOR_ITEMS, growth: float = GROWTH) -> None:
        self._growth = growth
        self._next = floor
        self._lock = threading.Lock()  # Raft applies on its thread, the legacy store on the loop
        self.freezes = 0

    def grew(self, items: int) -> bool:
        if items < self._next:
            return False
        with self._lock:
            if items < self._next:
                return False
            gc.freeze()
            self._next = int(items * self._growth)
            self.freezes += 1
            return True


FREEZER = HeapFreezer()  # one heap per process
