"""How long the node's event loop was kept from running, reported once every ``interval_s``.

Two measures, the larger of which is the interval's stall:

* the longest **iteration** of the loop: from its selector returning (ready callbacks start to
  run) to the loop asking the selector again. A blocking call, a long GC pause, a CPU-heavy
  callback: every timer, heartbeat and API answer waited that long. Timed around the loop's
  selector, so it costs two clock reads per iteration and no wake-up of its own (a timer that
  woke the loop 20 times a second to look for lateness cost a third of an idle node's CPU).
* how late the reporter itself woke: a host that starves the process of CPU while the loop
  sleeps delays every wake-up, which no iteration shows.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable


class _IterationProbe:
    """Wraps the loop's selector (``BaseSelectorEventLoop._selector``, every loop asyncio ships
    on Linux); on a loop without one only the reporter's lateness is measured."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.worst = 0.0
        self._ran_since: float | None = None
        self._selector: Any = getattr(loop, "_selector", None)
        if self._selector is not None:
            self._select = self._selector.select
            self._selector.select = self._timed

    def _timed(self, timeout: float | None = None) -> Any:
        now = time.perf_counter()
        if self._ran_since is not None and now - self._ran_since > self.worst:
            self.worst = now - self._ran_since
        try:
            return self._select(timeout)
        finally:
            self._ran_since = time.perf_counter()

    def take(self) -> float:
        worst, self.worst = self.worst, 0.0
        return worst

    def remove(self) -> None:
        if self._selector is not None:
            del self._selector.select  # the class's method again


async def watch_loop(observe: Callable[[float, int], None], interval_s: float = 1.0) -> None:
    """Forever: every ``interval_s`` call ``observe(stall_seconds, tasks)`` with the interval's
    stall and how many tasks the loop holds."""
    loop = asyncio.get_running_loop()
    probe = _IterationProbe(loop)
    try:
        while True:
            asked = loop.time()
            await asyncio.sleep(interval_s)
            late = loop.time() - asked - interval_s
            observe(max(probe.take(), late, 0.0), len(asyncio.all_tasks(loop)))
    finally:
        probe.remove()


__all__ = ["watch_loop"]
