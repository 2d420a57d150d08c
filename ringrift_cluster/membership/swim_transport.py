"""The transports we hand to swim-p2p (UDP and TCP), and the exclusive bind of the SWIM port.

swim-p2p takes its transport as a parameter; ours replaces the library's own for measured reasons
(swim-p2p 1.2.6, see docs in the report of the SWIM backend):

* **Exclusive bind.** The library's UDP transport binds ``0.0.0.0`` with ``SO_REUSEADDR`` and
  ``SO_REUSEPORT``, so a second process on the same port binds too and steals half the datagrams
  (hundreds of false transitions). We bind the socket ourselves, without port sharing, before the
  engine starts: a second instance fails fast instead of disturbing the cluster.
* **Identity.** The library keys members by the sender address of each message. Over TCP that
  is the peer's ephemeral port, so replies go nowhere. We report the ``from`` field every
  swim-p2p message carries (the sender's configured ``host:port``) instead.
* **No head-of-line blocking.** The library handles a PING-REQ inline in its single receive loop
  and waits up to a ping timeout for the target's PONG; meanwhile the helper answers no PING of its
  own, so one dead member made its helpers look dead too (the collateral suspicions measured after
  a kill). PING-REQs run as their own tasks here.
* **PONG routing.** All PONGs went to one shared queue that direct pings and PING-REQ helpers both
  read, so one could consume the other's reply; stale replies piled up and were taken as the
  answer to the next ping. A PONG is delivered here to the task that sent the matching PING (by
  message id, else by address), or dropped.
* Unbounded per-type queues nobody read (HEARTBEAT) are gone; sends never raise (a datagram
  transport does not promise delivery; the library logged every refused send at ERROR).

Counters (messages and bytes each way, send errors, drops) feed ``describe()``.
"""

from __future__ import annotations

import asyncio
import errno
import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from swim.transport.base import Transport

# A serialized swim-p2p message is b"U" + json.dumps(dict) and every message dict starts with its
# type: this prefix identifies an outgoing PING without decoding it.
_PING_PREFIX = b'U{"type": "PING", '
_MAX_FRAME = 16 * 1024 * 1024
_MAX_HELPER_TASKS = 64
_INBOX_SIZE = 4096


@dataclass
class TransportStats:
    """Shared by every transport instance of one backend (they survive engine restarts)."""

    messages_sent: int = 0
    messages_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    send_errors: int = 0
    dropped: int = 0  # inbox full, helper tasks at their bound, undecodable
    stale_pongs: int = 0  # a PONG nobody was waiting for
    last_heard: dict[tuple[str, int], float] = field(default_factory=dict)  # sender -> monotonic

    def snapshot(self) -> dict[str, int]:
        return {
            "messages_sent": self.messages_sent,
            "messages_received": self.messages_received,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "send_errors": self.send_errors,
            "dropped": self.dropped,
            "stale_pongs": self.stale_pongs,
        }


def bind_exclusive(kind: str, host: str, port: int) -> socket.socket:
    """Bind the SWIM port without sharing it. Raises ``OSError`` (EADDRINUSE when taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if kind == "udp":
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            sock.bind((host, port))
        except BaseException:
            sock.close()
            raise
    else:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            # SO_REUSEADDR only lets a restart bind over TIME_WAIT; Linux still refuses a second
            # listener on the same address. No SO_REUSEPORT.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(128)
        except BaseException:
            sock.close()
            raise
    sock.setblocking(False)
    return sock


def port_in_use(error: OSError) -> bool:
    return error.errno in (errno.EADDRINUSE, errno.EACCES)


def _parse_addr(value: Any) -> Optional[tuple[str, int]]:
    if not isinstance(value, str):
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    dest = (host, int(port))
    return dest if valid_dest(dest) else None


def valid_dest(dest: Any) -> bool:
    """An address the socket layer accepts. asyncio closes a datagram endpoint on any sendto error
    that is not an OSError (a port over 65535, a NUL or a lone surrogate in the host): one such
    address from a garbage datagram would leave the node deaf for good."""
    try:
        host, port = dest
    except (TypeError, ValueError):
        return False
    if not isinstance(host, str) or not host or len(host) > 253 or "\x00" in host:
        return False
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        return False
    try:
        host.encode("idna")
    except UnicodeError:
        return False
    return True


@dataclass
class _PongWaiter:
    target: Optional[tuple[str, int]]
    msg_id: Optional[str]
    future: "asyncio.Future[tuple[bytes, tuple[str, int]]]"


class _EngineTransport(Transport):
    """What both transports share: inbound dispatch, PONG routing, counters."""

    def __init__(self, sock: socket.socket, stats: TransportStats) -> None:
        self._sock = sock  # our own dup of the backend's socket; closing it frees nothing
        self.stats = stats
        self.local_address: Optional[tuple[str, int]] = None
        self._inbox: asyncio.Queue[tuple[str, bytes, tuple[str, int]]] = asyncio.Queue(_INBOX_SIZE)
        self._acks: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue(256)
        self._pong_waiters: list[_PongWaiter] = []
        self._expect: dict[asyncio.Task[Any], tuple[tuple[str, int], Optional[str]]] = {}
        self._helpers: set[asyncio.Task[Any]] = set()
        self._receiver: Optional[asyncio.Task[None]] = None
        self.running = False

    # -- inbound ---------------------------------------------------------------------------------

    def _deliver(self, data: bytes, peer: tuple[str, int]) -> None:
        stats = self.stats
        stats.messages_received += 1
        stats.bytes_received += len(data)
        try:
            body = data[1:] if data[:1] in (b"U", b"C") else data
            if data[:1] == b"C":
                import zlib

                body = zlib.decompress(body)
            msg = json.loads(body)
            kind = msg.get("type", "")
        except Exception:
            stats.dropped += 1
            return
        sender = _parse_addr(msg.get("from")) or (peer[0], peer[1])
        stats.last_heard[sender] = time.monotonic()
        if kind == "PONG":
            self._route_pong(data, sender, msg.get("id"))
        elif kind == "PING-REQ-ACK":
            if self._acks.full():
                self._acks.get_nowait()
            self._acks.put_nowait((data, sender))
        else:
            try:
                self._inbox.put_nowait((kind, data, sender))
            except asyncio.QueueFull:
                stats.dropped += 1

    def _route_pong(self, data: bytes, sender: tuple[str, int], msg_id: Any) -> None:
        chosen = None
        for waiter in self._pong_waiters:
            if waiter.future.done():
                continue
            if waiter.msg_id is not None and waiter.msg_id == msg_id and waiter.target == sender:
                chosen = waiter
                break
            if chosen is None and (waiter.target is None or waiter.target == sender):
                chosen = waiter
        if chosen is None:
            self.stats.stale_pongs += 1
            return
        chosen.future.set_result((data, sender))

    # -- the Transport interface -------------------------------------------------------------------

    async def receive(self, timeout: Optional[float] = None,
                      msg_type: Optional[str] = None) -> tuple[bytes, tuple[str, int]]:
        if msg_type == "PONG":
            task = asyncio.current_task()
            target, msg_id = self._expect.pop(task, (None, None)) if task else (None, None)
            future: asyncio.Future[tuple[bytes, tuple[str, int]]] = asyncio.get_running_loop().create_future()
            waiter = _PongWaiter(target, msg_id, future)
            self._pong_waiters.append(waiter)
            try:
                return await asyncio.wait_for(future, timeout)
            finally:
                self._pong_waiters.remove(waiter)
        if msg_type == "PING-REQ-ACK":
            return await asyncio.wait_for(self._acks.get(), timeout)
        _, data, sender = await asyncio.wait_for(self._inbox.get(), timeout)
        return data, sender

    async def send(self, data: bytes, dest: tuple[str, int]) -> None:
        try:
            dest = (dest[0], int(dest[1]))
        except (TypeError, ValueError, IndexError, OverflowError):
            dest = None  # type: ignore[assignment]
        if not valid_dest(dest):
            self.stats.dropped += 1
            return
        if data.startswith(_PING_PREFIX):
            task = asyncio.current_task()
            if task is not None:
                try:
                    msg_id = json.loads(data[1:]).get("id")
                except ValueError:
                    msg_id = None
                if len(self._expect) > 256:
                    for done in [t for t in self._expect if t.done()]:
                        del self._expect[done]
                self._expect[task] = (dest, msg_id)
        try:
            await self._send(data, dest)
        except Exception:
            self.stats.send_errors += 1
            return
        self.stats.messages_sent += 1
        self.stats.bytes_sent += len(data)

    async def start_receiver(self, callback: Callable[[bytes, tuple[str, int]], Any]) -> None:
        if self.running:
            return
        self.running = True
        self._receiver = asyncio.create_task(self._receive_loop(callback), name="swim-receive")

    async def _receive_loop(self, callback: Callable[[bytes, tuple[str, int]], Any]) -> None:
        while self.running:
            kind, data, sender = await self._inbox.get()
            if kind == "PING-REQ":
                # The helper waits for the target's PONG: never in line with everything else.
                if len(self._helpers) >= _MAX_HELPER_TASKS:
                    self.stats.dropped += 1
                    continue
                task = asyncio.create_task(self._call(callback, data, sender))
                self._helpers.add(task)
                task.add_done_callback(self._helpers.discard)
            else:
                await self._call(callback, data, sender)

    @staticmethod
    async def _call(callback: Callable[[bytes, tuple[str, int]], Any], data: bytes,
                    sender: tuple[str, int]) -> None:
        try:
            result = callback(data, sender)
            if asyncio.iscoroutine(result):
                await result
        except asyncio.CancelledError:
            raise
        except Exception:
            pass  # the library logs its own handler errors

    @property
    def receiver_task(self) -> Optional[asyncio.Task[None]]:
        return self._receiver

    async def close(self) -> None:
        self.running = False
        tasks = [t for t in (self._receiver, *self._helpers) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for waiter in self._pong_waiters:
            if not waiter.future.done():
                waiter.future.cancel()
        await self._close()

    # -- per transport ------------------------------------------------------------------------------

    async def _send(self, data: bytes, dest: tuple[str, int]) -> None:
        raise NotImplementedError

    async def _close(self) -> None:
        raise NotImplementedError


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, owner: "UdpEngineTransport") -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        self.owner._deliver(data, addr)

    def error_received(self, exc: Exception) -> None:
        self.owner.stats.send_errors += 1  # ICMP port unreachable from a stopped peer


class UdpEngineTransport(_EngineTransport):
    """UDP on a socket we bound exclusively."""

    def __init__(self, sock: socket.socket, stats: TransportStats) -> None:
        super().__init__(sock, stats)
        self._endpoint: Optional[asyncio.DatagramTransport] = None

    async def bind(self, address: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        self._endpoint, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(self), sock=self._sock)
        self.local_address = (address[0], int(address[1]))

    async def _send(self, data: bytes, dest: tuple[str, int]) -> None:
        if self._endpoint is None:
            raise RuntimeError("transport not bound")
        self._endpoint.sendto(data, dest)

    async def _close(self) -> None:
        if self._endpoint is not None:
            self._endpoint.close()
            self._endpoint = None


class TcpEngineTransport(_EngineTransport):
    """Length-prefixed frames over TCP (for networks that block UDP), one outbound connection per
    peer; a message's sender is the ``from`` it carries, not the connection's ephemeral port."""

    def __init__(self, sock: socket.socket, stats: TransportStats, connect_timeout_s: float) -> None:
        super().__init__(sock, stats)
        self._connect_timeout_s = connect_timeout_s
        self._server: Optional[asyncio.base_events.Server] = None
        self._out: dict[tuple[str, int], asyncio.StreamWriter] = {}
        self._connecting: dict[tuple[str, int], asyncio.Future[asyncio.StreamWriter]] = {}
        self._conn_tasks: set[asyncio.Task[Any]] = set()

    async def bind(self, address: tuple[str, int]) -> None:
        self._server = await asyncio.start_server(self._serve, sock=self._sock)
        self.local_address = (address[0], int(address[1]))

    def _own(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._conn_tasks.add(task)
        task.add_done_callback(self._conn_tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._conn_tasks.add(task)
            task.add_done_callback(self._conn_tasks.discard)
        peer = writer.get_extra_info("peername") or ("", 0)
        try:
            while True:
                header = await reader.readexactly(4)
                length = int.from_bytes(header, "big")
                if length > _MAX_FRAME:
                    self.stats.dropped += 1
                    break
                self._deliver(await reader.readexactly(length), (peer[0], peer[1]))
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
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
            reader, writer = await asyncio.wait_for(asyncio.open_connection(dest[0], dest[1]),
                                                    self._connect_timeout_s)
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

    async def _send(self, data: bytes, dest: tuple[str, int]) -> None:
        writer = await self._connection(dest)
        try:
            writer.write(len(data).to_bytes(4, "big") + data)
            await asyncio.wait_for(writer.drain(), self._connect_timeout_s)
        except BaseException:
            if self._out.get(dest) is writer:
                del self._out[dest]
            writer.close()
            raise

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._out.values()):
            writer.close()
        self._out.clear()
        tasks = list(self._conn_tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            except (asyncio.TimeoutError, Exception):
                pass
            self._server = None


def make_transport(kind: str, sock: socket.socket, stats: TransportStats,
                   connect_timeout_s: float) -> _EngineTransport:
    """A transport on a duplicate of ``sock``: closing it (engine restart) keeps the port ours."""
    dup = sock.dup()
    dup.setblocking(False)
    if kind == "udp":
        return UdpEngineTransport(dup, stats)
    return TcpEngineTransport(dup, stats, connect_timeout_s)
