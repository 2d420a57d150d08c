"""The one way this package waits with a timeout: :func:`within`.

Why not ``asyncio.wait_for``: before Python 3.12, when the awaited thing finishes in the same
loop iteration as a ``cancel()`` of the waiting task, ``wait_for`` returns the result and drops
the cancellation. A loop built on it (wait for a wake-up or a tick, repeat) then never ends, and
whoever cancelled it and waits for it (a node's graceful stop) waits forever.
``asyncio.timeout`` (3.11+) delivers the cancellation; on 3.10 the wait runs as its own task
under ``asyncio.wait``, which never swallows one either.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Awaitable, Optional, TypeVar

T = TypeVar("T")


async def within(awaitable: Awaitable[T], timeout: Optional[float]) -> T:
    """``await awaitable``, or ``asyncio.TimeoutError`` after ``timeout`` seconds (None: no
    limit). A cancellation of the caller is always delivered, and the awaitable is cancelled
    when the time runs out."""
    if timeout is None:
        return await awaitable
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(timeout):
            return await awaitable
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise asyncio.TimeoutError
    return task.result()


__all__ = ["within"]
