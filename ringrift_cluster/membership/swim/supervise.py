"""Supervision of the SWIM engine: if a library task dies or the protocol loop stops advancing
(``engine._watch`` returns why), the library node is torn down and recreated on the same socket,
with bounded exponential backoff. ``self`` is the ``SwimEngine``, as in ``hooks.py``."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Optional

_BACKOFF_MIN_S = 0.5
_BACKOFF_MAX_S = 30.0
_HEALTHY_RESET_S = 60.0


async def supervise(self: Any) -> None:
    """Run ``self._watch`` (the engine's tick) until the library node fails, then tear it down
    and recreate it, backing off exponentially while recreating fails; until the engine stops."""
    backoff = _BACKOFF_MIN_S
    while not self._stopping:
        started = time.monotonic()
        try:
            reason = await self._watch()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            reason = f"watcher failed: {e!r}"
        if self._stopping:
            return
        self.status.restarts += 1
        self.status.last_error = reason
        self.status.running = False
        self._log.warning("swim_engine_restart", reason=reason, restarts=self.status.restarts,
                          backoff_s=backoff)
        self.publisher.emit()
        await self._teardown()
        if time.monotonic() - started > _HEALTHY_RESET_S:
            backoff = _BACKOFF_MIN_S
        while not self._stopping:
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX_S)
            try:
                await self._create()
                break
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.status.restarts += 1
                self.status.last_error = f"restart failed: {e!r}"
                self._log.warning("swim_engine_restart_failed", error=repr(e), backoff_s=backoff)
                self.publisher.emit()


def library_tasks(node: Any) -> list[asyncio.Task[Any]]:
    """The long-lived tasks of a started node: protocol loop, sync loop, our receiver."""
    tasks = [t for t in node.tasks if "_protocol_loop" in getattr(t.get_coro(), "__qualname__", "")]
    sync = getattr(node.sync_service, "_sync_task", None)
    if sync is not None:
        tasks.append(sync)
    receiver = getattr(node.transport, "receiver_task", None)
    if receiver is not None:
        tasks.append(receiver)
    return tasks


def dead_task(tasks: list[asyncio.Task[Any]]) -> Optional[str]:
    for task in tasks:
        if task.done():
            name = getattr(task.get_coro(), "__qualname__", task.get_name())
            error = None if task.cancelled() else task.exception()
            if error is None:
                return f"library task {name} ended (cancelled or returned)"
            return f"library task {name} died: {error!r}"
    return None


__all__ = ["dead_task", "library_tasks", "supervise"]
