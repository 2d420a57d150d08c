"""Length-prefixed SWIM messages over TCP: the whole transport for ``transport: tcp``, and the
path for messages over the packet budget (full anti-entropy syncs) beside UDP.

One outbound connection per peer, reused; a message's sender is the ``from`` field it carries,
not the connection's ephemeral port (the caller's ``deliver`` reads it).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Callable, Optional

from ...timeouts import within

MAX_FRAME = 16 * 1024 * 1024


class StreamLink:
    def __init__(self, sock: socket.socket, deliver: Callable[[bytes, tuple[str, int]], None],
                 on_bad_frame: Callable[[], None], connect_timeout_s: float) -> None:
        self._sock = sock
        self._deliver = deliver
        self._on_bad_frame = on_bad_frame
        self._connect_timeout_s = connect_timeout_s
        self._server: Optional[asyncio.base_events.Server] = None
        self._out: dict[tuple[str, int], asyncio.StreamWriter] = {}
        self._connecting: dict[tuple[str, int], asyncio.Future[asyncio.StreamWriter]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, sock=self._sock)

    def _own(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        peer = writer.get_extra_info("peername") or ("", 0)
        try:
            while True:
                header = await reader.readexactly(4)
                length = int.from_bytes(header, "big")
                if length > MAX_FRAME:
                    self._on_bad_frame()
                    break
                self._deliver(await reader.readexactly(length), (peer[0], peer[1]))
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            pass  # closing: end quietly (asyncio's server callback logs a cancelled handler)
        finally:
            writer.close()

    async def _connection(self, dest: tuple[str, int]) -> asyncio.StreamWriter:
        writer = self._out.get(dest)
        if writer is not None and not writer.is_closing():
            return writer
        pending = self._connecting.get(dest)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[asyncio.StreamWriter] = asyncio.get_running_loop().create_future()
        self._connecting[dest] = future
        try:
            reader, writer = await within(asyncio.open_connection(dest[0], dest[1]), self._connect_timeout_s)
            self._out[dest] = writer
            self._own(self._watch(dest, reader, writer))
            future.set_result(writer)
            return writer
        except BaseException as e:
            future.set_exception(e if isinstance(e, Exception) else ConnectionError(str(e)))
            future.exception()  # retrieved: no "never retrieved" warning
            raise
        finally:
            self._connecting.pop(dest, None)

    async def _watch(self, dest: tuple[str, int], reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        """Forget an outbound connection as soon as the peer closes it (e.g. it restarted)."""
        try:
            while await reader.read(65536):
                pass
        except (ConnectionError, OSError):
            pass
        finally:
            if self._out.get(dest) is writer:
                del self._out[dest]
            writer.close()

    async def send(self, data: bytes, dest: tuple[str, int]) -> None:
        """Raises on failure (no connection, peer gone, slow peer)."""
        writer = await self._connection(dest)
        try:
            writer.write(len(data).to_bytes(4, "big") + data)
            await within(writer.drain(), self._connect_timeout_s)
        except BaseException:
            if self._out.get(dest) is writer:
                del self._out[dest]
            writer.close()
            raise

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._out.values()):
            writer.close()
        self._out.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            try:
                await within(self._server.wait_closed(), 1.0)
            except (asyncio.TimeoutError, Exception):
                pass
            self._server = None
