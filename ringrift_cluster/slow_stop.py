"""A graceful stop takes milliseconds. One still running after ``after_s`` is stuck somewhere,
and whoever stops the node will soon kill it: before that, say where.

* ``stop_slow`` (structured log): every task of the loop, with the chain of coroutines it is
  suspended in, innermost last;
* if the loop itself is blocked (no task can run, so nothing above is logged), the interpreter
  writes every thread's stack to stderr a little later (``faulthandler``).
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import sys
from typing import Any, AsyncIterator


def awaiting(task: "asyncio.Task[Any]") -> list[str]:
    """Where ``task`` is suspended: ``function (file:line)`` from its coroutine inwards."""
    chain: list[str] = []
    coro: Any = task.get_coro()
    while coro is not None and len(chain) < 30:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        code = frame.f_code
        chain.append(f"{code.co_name} ({code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno})")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return chain


@contextlib.asynccontextmanager
async def reported_if_slow(log: Any, after_s: float = 5.0) -> AsyncIterator[None]:
    """Run the body; if it is still running after ``after_s``, log what every task waits on."""
    async def report() -> None:
        await asyncio.sleep(after_s)
        me = asyncio.current_task()
        log.warning("stop_slow", after_s=after_s,
                    waiting={t.get_name(): awaiting(t) for t in asyncio.all_tasks() if t is not me})

    watchdog = asyncio.create_task(report(), name="stop-watchdog")
    try:  # the process's own stderr (a node's log); none with a file descriptor: no dump
        faulthandler.dump_traceback_later(after_s * 2, exit=False, file=sys.__stderr__)
        dumping = True
    except (AttributeError, ValueError, OSError):
        dumping = False
    try:
        yield
    finally:
        if dumping:
            faulthandler.cancel_dump_traceback_later()
        watchdog.cancel()


__all__ = ["awaiting", "reported_if_slow"]
