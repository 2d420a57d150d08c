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
* **Bounded datagrams.** Payloads over 1 KB are zlib-framed (``wire.frame``); a message still
  over the packet budget goes over TCP to the same port (``stream``), never as a fragmented
  or refused datagram. A datagram the OS refuses is counted and logged once per peer and reason,
  never counted as sent (it used to be: gossip stopped silently at about 438 members).

Counters (``wire.TransportStats``: by type and direction, sizes, refusals) feed ``describe()``.
"""

from __future__ import annotations

import asyncio
import errno
import json
import socket
import time
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Optional

from ...timeouts import within
from .bridge import Transport
from .sockets import parse_addr, valid_dest
from .stream import StreamLink
from .wire import OncePerKey, TransportStats, frame, message_type

# A serialized swim-p2p message is b"U" + json.dumps(dict) and every message dict starts with its
# type: this prefix identifies an outgoing PING without decoding it.
_PING_PREFIX = b'U{"type": "PING", '
_MAX_HELPER_TASKS = 64
_INBOX_SIZE = 4096


@dataclass
class _PongWaiter:
    target: Optional[tuple[str, int]]
    msg_id: Optional[str]
    future: "asyncio.Future[tuple[bytes, tuple[str, int]]]"


class _EngineTransport(Transport):
    """What both transports share: inbound dispatch, PONG routing, counters."""

    def __init__(self, sock: socket.socket, stats: TransportStats, budget: int = 1400,
                 log: Any = None, compress: bool = True) -> None:
        self._sock = sock  # our own dup of the backend's socket; closing it frees nothing
        self.stats = stats
        self.budget = budget
        self.compress = compress
        self._complain = OncePerKey(log)
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
        try:
            body = data[1:] if data[:1] in (b"U", b"C") else data
            if data[:1] == b"C":
                body = zlib.decompress(body)
            msg = json.loads(body)
            kind = msg.get("type", "")
        except Exception:
            stats.count("received", "OTHER", len(data))
            stats.dropped += 1
            return
        stats.count("received", kind if isinstance(kind, str) and len(kind) <= 20 else "OTHER", len(data))
        sender = parse_addr(msg.get("from")) or (peer[0], peer[1])
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
                return await within(future, timeout)
            finally:
                self._pong_waiters.remove(waiter)
        if msg_type == "PING-REQ-ACK":
            return await within(self._acks.get(), timeout)
        _, data, sender = await within(self._inbox.get(), timeout)
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
        kind = message_type(data)
        framed = frame(data) if self.compress else data
        if framed is not data:
            self.stats.compressed += 1
        try:
            sent = await self._send(framed, dest)
        except Exception as e:
            self.stats.send_errors += 1
            self._complain("swim_send_failed", dest, type(e).__name__, message_type=kind, size=len(framed))
            return
        if sent:
            self.stats.count("sent", kind, len(framed))

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

    async def _send(self, data: bytes, dest: tuple[str, int]) -> bool:
        """Hand ``data`` to the OS; False when it was not (counted and logged here), raises on
        an error the caller counts."""
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
    """UDP on a socket we bound exclusively; messages over the packet budget go over TCP to the
    same port when we hold that port's TCP listener too (``stream_sock``)."""

    def __init__(self, sock: socket.socket, stats: TransportStats, budget: int = 1400, log: Any = None,
                 stream_sock: Optional[socket.socket] = None, connect_timeout_s: float = 1.0,
                 compress: bool = True) -> None:
        super().__init__(sock, stats, budget, log, compress)
        self._endpoint: Optional[asyncio.DatagramTransport] = None
        self._stream = None if stream_sock is None else StreamLink(
            stream_sock, self._deliver, self._bad_frame, connect_timeout_s)

    def _bad_frame(self) -> None:
        self.stats.dropped += 1

    async def bind(self, address: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        self._endpoint, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(self), sock=self._sock)
        if self._stream is not None:
            await self._stream.start()
        self.local_address = (address[0], int(address[1]))

    async def _send(self, data: bytes, dest: tuple[str, int]) -> bool:
        if len(data) > self.budget:
            self.stats.oversize += 1
            if self._stream is None:
                self.stats.oversize_dropped += 1
                self._complain("swim_oversize_dropped", dest, "no TCP listener", size=len(data))
                return False
            await self._stream.send(data, dest)
            return True
        endpoint = self._endpoint
        if endpoint is None:
            raise RuntimeError("transport not bound")
        if endpoint.get_write_buffer_size():
            endpoint.sendto(data, dest)  # keep order behind what asyncio already queued
        else:
            # asyncio's sendto reports a refused datagram to error_received and returns as if
            # sent; sending ourselves first tells a refusal (EMSGSIZE, ENETUNREACH...) apart.
            try:
                self._sock.sendto(data, dest)
            except (BlockingIOError, InterruptedError):
                endpoint.sendto(data, dest)
            except OSError as e:
                self.stats.send_errors += 1
                reason = errno.errorcode.get(e.errno or 0, str(e.errno))
                self._complain("swim_datagram_refused", dest, reason, size=len(data))
                return False
        self.stats.datagram(len(data))
        return True

    async def _close(self) -> None:
        if self._endpoint is not None:
            self._endpoint.close()
            self._endpoint = None
        if self._stream is not None:
            await self._stream.close()


class TcpEngineTransport(_EngineTransport):
    """Length-prefixed frames over TCP (for networks that block UDP), one outbound connection per
    peer; a message's sender is the ``from`` it carries, not the connection's ephemeral port."""

    def __init__(self, sock: socket.socket, stats: TransportStats, connect_timeout_s: float,
                 log: Any = None) -> None:
        super().__init__(sock, stats, budget=0, log=log)
        self._stream = StreamLink(sock, self._deliver, self._bad_frame, connect_timeout_s)

    def _bad_frame(self) -> None:
        self.stats.dropped += 1

    async def bind(self, address: tuple[str, int]) -> None:
        await self._stream.start()
        self.local_address = (address[0], int(address[1]))

    async def _send(self, data: bytes, dest: tuple[str, int]) -> bool:
        await self._stream.send(data, dest)
        return True

    async def _close(self) -> None:
        await self._stream.close()


def make_transport(kind: str, sock: socket.socket, stats: TransportStats, connect_timeout_s: float,
                   stream_sock: Optional[socket.socket] = None, budget: int = 1400,
                   log: Any = None, compress: bool = True) -> _EngineTransport:
    """A transport on duplicates of the bound sockets: closing it (engine restart) keeps the
    ports ours. ``budget``: the largest datagram (bigger goes over ``stream_sock``'s TCP, or is
    dropped and counted); ``compress``: zlib-frame big payloads."""
    dup = sock.dup()
    dup.setblocking(False)
    if kind == "udp":
        stream = None
        if stream_sock is not None:
            stream = stream_sock.dup()
            stream.setblocking(False)
        return UdpEngineTransport(dup, stats, budget, log, stream, connect_timeout_s, compress)
    return TcpEngineTransport(dup, stats, connect_timeout_s, log)
