"""SWIM transport at the packet budget (real sockets on loopback): big payloads compressed,
over-budget messages over TCP, a refused datagram counted and never "sent"; and the metrics."""

from __future__ import annotations

import asyncio
import json
import socket
import zlib
from typing import Any

from ringrift_cluster.membership.swim.membership import _load_engine

_load_engine()

from ringrift_cluster.membership.swim.sockets import bind_exclusive  # noqa: E402
from ringrift_cluster.membership.swim.transport import make_transport  # noqa: E402
from ringrift_cluster.membership.swim.wire import TransportStats, frame, message_type  # noqa: E402
from ringrift_cluster.observability import NodeMetrics  # noqa: E402
from ringrift_cluster.testing.engines import poll_until  # noqa: E402


def _message(kind: str, size: int, sender: str) -> bytes:
    # Varied content (not compressible to nothing), like real digests.
    entries = [{"addr": f"10.0.{i // 250}.{i % 250}:{7000 + i}", "incarnation": 1_700_000_000_000 + i * 7919}
               for i in range(size // 60)]
    return b"U" + json.dumps({"type": kind, "from": sender, "digest": {"entries": entries}}).encode()


def _bound_pair() -> tuple[int, tuple[socket.socket, socket.socket]]:
    """A UDP and a TCP socket bound to one free port (another process may hold the TCP side of a
    free UDP port: try the next one)."""
    for _ in range(100):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        port = int(udp.getsockname()[1])
        udp.close()
        try:
            pair = bind_exclusive("udp", "127.0.0.1", port)
        except OSError:
            continue
        try:
            return port, (pair, bind_exclusive("tcp", "127.0.0.1", port))
        except OSError:
            pair.close()
    raise AssertionError("no free UDP+TCP port pair in 100 tries")


def test_frame_compresses_only_big_payloads_and_types_are_read_without_decoding() -> None:
    small, big = _message("PING", 200, "a:1"), _message("HEARTBEAT", 9000, "a:1")
    assert frame(small) is small
    packed = frame(big)
    assert packed[:1] == b"C" and len(packed) < len(big) and zlib.decompress(packed[1:]) == big[1:]
    assert message_type(small) == "PING" and message_type(big) == "HEARTBEAT" and message_type(packed) == "COMPRESSED"


def test_over_budget_goes_over_tcp_refused_is_counted_not_sent() -> None:
    async def run() -> None:
        (port_a, pair_a), (port_b, pair_b) = _bound_pair(), _bound_pair()
        socks = {port_a: pair_a, port_b: pair_b}
        stats_a, stats_b = TransportStats(), TransportStats()
        a = make_transport("udp", socks[port_a][0], stats_a, 1.0, stream_sock=socks[port_a][1], budget=1400)
        b = make_transport("udp", socks[port_b][0], stats_b, 1.0, stream_sock=socks[port_b][1], budget=1400)
        bare = make_transport("udp", socks[port_a][0], TransportStats(), 1.0, budget=1400)  # no TCP side
        huge = make_transport("udp", socks[port_a][0], TransportStats(), 1.0, budget=100_000, compress=False)
        got: list[tuple[str, Any]] = []
        await a.bind(("127.0.0.1", port_a))
        await b.bind(("127.0.0.1", port_b))
        await b.start_receiver(lambda data, sender: got.append((message_type(data), sender)))
        try:
            sender = f"127.0.0.1:{port_a}"
            await a.send(_message("PING", 100, sender), ("127.0.0.1", port_b))
            await a.send(_message("SYNC-RESP", 60_000, sender), ("127.0.0.1", port_b))  # ~9 KB zlib: TCP
            async def both() -> tuple[bool, list[Any]]:
                return len(got) == 2, list(got)

            await poll_until(both, 5.0, "both messages at b")
            assert [k for k, _ in got] == ["PING", "COMPRESSED"] and got[1][1] == ("127.0.0.1", port_a)
            assert stats_a.oversize == 1 and stats_a.largest_datagram <= 1400 and stats_a.messages_sent == 2
            assert stats_a.by_type["sent:SYNC-RESP"][0] == 1 and stats_b.by_type["received:SYNC-RESP"][0] == 1
            # No TCP side: an over-budget message is dropped and counted, never a datagram.
            await bare.send(_message("SYNC-RESP", 60_000, sender), ("127.0.0.1", port_b))
            assert bare.stats.oversize_dropped == 1 and bare.stats.messages_sent == 0
            # Over the UDP limit: the OS refuses it; counted as an error, not as sent.
            await huge.send(_message("HEARTBEAT", 90_000, sender), ("127.0.0.1", port_b))
            assert huge.stats.send_errors == 1 and huge.stats.messages_sent == 0
            assert huge.stats.largest_datagram == 0
        finally:
            for t in (a, b):
                await t.close()
            for pair in socks.values():
                for s in pair:
                    s.close()

    asyncio.run(run())


def test_metrics_mirror_types_sizes_refusals_and_queue_depth() -> None:
    metrics = NodeMetrics()
    described = {"messages_sent": 3, "send_errors": 2, "oversize": 5, "oversize_dropped": 1,
                 "by_type": {"sent:HEARTBEAT": [3, 2400]}, "datagram_size_buckets": [128, 1400],
                 "datagram_sizes": [1, 2, 0], "largest_datagram": 1200, "piggyback_depth": 4}
    metrics.update_swim(described)
    metrics.update_swim(described)  # totals, not increments: mirrored once
    text = metrics.exposition().decode()
    for line in ('ringrift_swim_type_bytes_total{direction="sent",type="HEARTBEAT"} 2400.0',
                 'ringrift_swim_datagrams_total{size_le="1400"} 2.0', 'ringrift_swim_send_refused_total 2.0',
                 'ringrift_swim_oversize_total{outcome="tcp"} 4.0', 'ringrift_swim_piggyback_queue_depth 4.0',
                 'ringrift_swim_largest_datagram_bytes 1200.0'):
        assert line in text, line
