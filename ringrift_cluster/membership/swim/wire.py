"""What goes over the SWIM wire: framing (zlib for big payloads), message types, and counters.

Every swim-p2p message is ``b"U" + json`` and every library receiver (ours too) also decodes
``b"C" + zlib(json)``, which the library never sends. We compress anything over
``COMPRESS_OVER`` bytes when that makes it smaller. Counters are shared by every transport
instance of one backend (they survive engine restarts) and feed ``describe()`` and the metrics.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from typing import Any

COMPRESS_OVER = 1024
# Upper bounds (bytes) of the datagram size histogram: 1,400 is the packet budget.
SIZE_BUCKETS = (128, 256, 512, 1024, 1400, 4096, 16384, 65507)
_TYPE = re.compile(rb'^U\{"type": "([A-Z-]{1,20})"')
KNOWN_TYPES = ("PING", "PONG", "PING-REQ", "PING-REQ-ACK", "HEARTBEAT", "SYNC-REQ", "SYNC-RESP")


def message_type(data: bytes) -> str:
    """The type of an uncompressed swim-p2p message from its first bytes (no decoding)."""
    match = _TYPE.match(data[:40])
    if match is None:
        return "COMPRESSED" if data[:1] == b"C" else "OTHER"
    kind = match.group(1).decode()
    return kind if kind in KNOWN_TYPES else "OTHER"


def frame(data: bytes) -> bytes:
    """``data`` zlib-framed when it is big and that makes it smaller, else unchanged."""
    if len(data) <= COMPRESS_OVER or data[:1] != b"U":
        return data
    packed = b"C" + zlib.compress(data[1:], 6)
    return packed if len(packed) < len(data) else data


@dataclass
class TransportStats:
    """Counters of one backend's SWIM traffic (totals, plus by message type and direction)."""

    messages_sent: int = 0
    messages_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    send_errors: int = 0  # the OS refused a send (or reported an error for one)
    dropped: int = 0  # inbox full, helper tasks at their bound, undecodable
    stale_pongs: int = 0  # a PONG nobody was waiting for
    oversize: int = 0  # messages over the packet budget (sent over TCP instead of UDP)
    oversize_dropped: int = 0  # ... that could not be sent at all (no stream link)
    compressed: int = 0  # messages sent zlib-framed
    largest_datagram: int = 0
    datagram_sizes: list[int] = field(default_factory=lambda: [0] * (len(SIZE_BUCKETS) + 1))
    by_type: dict[str, list[int]] = field(default_factory=dict)  # "sent:PING" -> [messages, bytes]
    piggyback_depth: int = 0  # changes waiting to ride on heartbeats (set by the engine)
    piggyback_entries: int = 0
    last_heard: dict[tuple[str, int], float] = field(default_factory=dict)  # sender -> monotonic

    def count(self, direction: str, kind: str, size: int) -> None:
        key = f"{direction}:{kind}"
        slot = self.by_type.get(key)
        if slot is None:
            slot = self.by_type[key] = [0, 0]
        slot[0] += 1
        slot[1] += size
        if direction == "sent":
            self.messages_sent += 1
            self.bytes_sent += size
        else:
            self.messages_received += 1
            self.bytes_received += size

    def datagram(self, size: int) -> None:
        """One datagram handed to the OS (sent): the size histogram and the maximum."""
        if size > self.largest_datagram:
            self.largest_datagram = size
        for i, bound in enumerate(SIZE_BUCKETS):
            if size <= bound:
                self.datagram_sizes[i] += 1
                return
        self.datagram_sizes[-1] += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "messages_sent": self.messages_sent,
            "messages_received": self.messages_received,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "send_errors": self.send_errors,
            "dropped": self.dropped,
            "stale_pongs": self.stale_pongs,
            "oversize": self.oversize,
            "oversize_dropped": self.oversize_dropped,
            "compressed": self.compressed,
            "largest_datagram": self.largest_datagram,
            "datagram_size_buckets": list(SIZE_BUCKETS),
            "datagram_sizes": list(self.datagram_sizes),
            "by_type": {k: list(v) for k, v in sorted(self.by_type.items())},
            "piggyback_depth": self.piggyback_depth,
            "piggyback_entries": self.piggyback_entries,
        }


class OncePerKey:
    """Log a send problem once per (peer, reason): a dead peer must not flood the log."""

    def __init__(self, log: Any, limit: int = 1024) -> None:
        self._log = log
        self._seen: set[tuple[Any, str]] = set()
        self._limit = limit

    def __call__(self, event: str, peer: Any, reason: str, **fields: Any) -> None:
        key = (peer, reason)
        if key in self._seen or self._log is None:
            return
        if len(self._seen) >= self._limit:
            self._seen.clear()
        self._seen.add(key)
        try:
            self._log.warning(event, peer=f"{peer[0]}:{peer[1]}", reason=reason, **fields)
        except Exception:
            pass
