"""The one module that imports swim-p2p, and the one that crosses between the SWIM thread and the
node's loop (the twin of ``consensus/raft/bridge.py``).

* **The library.** Every swim-p2p name the backend uses comes from here. Its modules print to
  stdout on import; the import below swallows that. Nothing imports this module at package
  import time: ``membership.py`` loads the engine (and so this module) on ``start``.
* **The thread.** The engine runs on a private asyncio loop in a daemon thread (:class:`EngineThread`),
  so a node whose own loop stalls does not starve the failure detector. The node's loop hands
  coroutines over with ``run_coroutine_threadsafe`` and awaits them wrapped (never blocking);
  everything coming back goes through :func:`hop` (``call_soon_threadsafe``) only.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import threading
from typing import Any, Callable, Optional

from ...timeouts import within

with contextlib.redirect_stdout(io.StringIO()):  # the library prints on import
    from swim.protocol.member import MemberList, MemberState as RawState
    from swim.protocol.node import Node
    from swim.transport.base import Transport
    from swim.utils.serialization import serialize_message


def library_member_list() -> tuple[Any, Any]:
    """swim-p2p's ``MemberList`` class and ``MemberState`` enum, for the simulator's measurements
    (``ringrift_cluster.sim``)."""
    return MemberList, RawState


def library_serialize(message: Any) -> bytes:
    """swim-p2p's own serializer, for the simulator's message sizes."""
    return serialize_message(message)


def library_as_it_comes() -> tuple[Any, Any, Any]:
    """swim-p2p's own ``Node``, UDP transport and default config, for the raw baseline
    (``testing/drivers/swim.py --engine raw``)."""
    with contextlib.redirect_stdout(io.StringIO()):
        from swim.config import get_config
        from swim.transport.udp import UDPTransport
    return Node, UDPTransport, get_config


class EngineThread:
    """A private asyncio loop on a daemon thread, and the awaitable way onto it."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None

    @property
    def running(self) -> bool:
        return self._loop is not None and self._loop.is_running()

    async def start(self) -> None:
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(self._loop, ready), name=self._name, daemon=True)
        self._thread.start()
        await asyncio.to_thread(ready.wait, 5.0)

    async def run(self, coro: Any, timeout: float) -> Any:
        """Run ``coro`` on the SWIM loop and await it here without blocking this loop."""
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return await within(asyncio.wrap_future(future), timeout)
        except asyncio.TimeoutError:
            future.cancel()
            raise

    def call_soon(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` on the SWIM loop, from any thread."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(fn, *args)

    async def close(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(loop.stop)
            except RuntimeError:
                pass
        if thread is not None:
            await asyncio.to_thread(thread.join, 5.0)
        self._thread = None
        self._loop = None

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            try:
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()


def hop(loop: Optional[asyncio.AbstractEventLoop], fn: Callable[..., None], *args: Any) -> None:
    """From the SWIM thread to ``loop``: the only way across. Never raises."""
    if loop is None or loop.is_closed():
        return
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:
        pass  # the node's loop is closing


__all__ = ["EngineThread", "MemberList", "Node", "RawState", "Transport", "hop", "library_as_it_comes", "library_member_list",
           "library_serialize", "serialize_message"]
