"""How long the node's event loop was kept from running: a task that asks to wake every
``interval_s`` and records how late it woke. A late wake-up is a stall (a blocking call, a long
GC pause, a CPU-starved host): timers, heartbeats and API answers all waited that long."""

from __future__ import annotations

import asyncio
from typing import Callable


async def watch_loop(observe: Callable[[float, int], None], interval_s: float = 0.05) -> None:
    """Forever: sleep ``interval_s`` and call ``observe(stall_seconds, tasks)`` with how much
    later than asked the loop woke, and how many tasks it holds."""
    loop = asyncio.get_running_loop()
    while True:
        asked = loop.time()
        await asyncio.sleep(interval_s)
        stall = loop.time() - asked - interval_s
        observe(max(stall, 0.0), len(asyncio.all_tasks(loop)))


__all__ = ["watch_loop"]
