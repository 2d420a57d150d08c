"""Garbage on the engine ports of a real 3-node cluster (hybrid membership, Raft consensus).

Each node's SWIM port (UDP, or TCP frames when ``swim.transport`` is tcp) and Raft port (TCP,
pysyncobj's length-prefixed zlib+pickle frames) get a few thousand packets: random bytes,
truncated and huge length prefixes, half a pickle, valid-looking messages cut short, well-formed
messages with nonsense fields, zlib bombs. The sender is paced by the cluster itself: after
every batch it waits for the target's ``/health`` to answer.

Afterwards every node is the same process and answers ``/health``; everyone sees everyone alive
(in ``/status`` and in SWIM's own view); there is one agreed leader; a write still commits through
the API; and no node ever declared another failed (the ``failed`` membership events counter stays
at zero everywhere, sampled for the whole run, not just at the end).

Nothing here impersonates a member: no message carries a member's own address as its sender and
no Raft connection completes the handshake as a member, since neither protocol authenticates
peers on loopback (Raft requires a password off loopback; SWIM has none by design).
"""

from __future__ import annotations

import json
import pickle
import random
import socket
import struct
import threading
import time
import urllib.request
import zlib
from typing import Callable, Iterator

import pytest

from ringrift_cluster.testing import LocalCluster, wait_until

pytestmark = pytest.mark.integration
# SWIM membership in hybrid mode: both engines' ports get garbage. The fixture requires SWIM to
# have started on every node (a node that stopped composing SWIM fails here, never fuzzes less).
START_S = 45.0
FUZZ_BUDGET_S = 40.0  # the barrage stops here even if packets are left (a slow CI box)
BATCH = 50  # packets between two /health answers of the target
UDP_PER_NODE = 1200
TCP_CONNECTIONS_PER_PORT = 120
SWIM_TYPES = ("PING", "PONG", "PING-REQ", "PING-REQ-ACK", "HEARTBEAT", "SYNC-REQ", "SYNC-RESP", "FULL_STATE")
# Sender (and PING-REQ target) addresses that are nobody, or no address at all. A port past 65535
# or a host with a NUL once made the reply's sendto raise a non-OSError, on which asyncio closed
# the SWIM socket for good (membership/swim/sockets.py: valid_dest now refuses such addresses).
BOGUS_SENDERS = ("127.0.0.1:99999", "a\x00b:80", "\ud800:80", "127.0.0.1:1", "10.255.255.1:7947", "::1:80", "a:b:c", "", ":", "127.0.0.1:-5", "127.0.0.1:0",
                 "x" * 300, "127.0.0.1")


def nonsense(rng: random.Random, depth: int = 0) -> object:
    """A random JSON value, nested a little."""
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 1, 2 ** 31, -(2 ** 63), 10 ** 30, rng.randrange(-1000, 1000)])
    if kind == 3:
        return rng.choice([0.0, -0.5, 1e308, 1e-308, rng.random()])
    if kind == 4:
        return "".join(chr(rng.randrange(32, 0x2FF)) for _ in range(rng.randrange(0, 20)))
    if kind == 5:
        return rng.choice(BOGUS_SENDERS)
    if kind == 6:
        return [nonsense(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    return {rng.choice(["addr", "state", "incarnation", "members", "entries", "version", "digest", "x"]):
            nonsense(rng, depth + 1) for _ in range(rng.randrange(0, 4))}


def swim_message(rng: random.Random) -> bytes:
    """A message shaped like swim-p2p's (b"U" + JSON) with fields of the wrong kind."""
    msg: dict[str, object] = {"type": rng.choice(SWIM_TYPES + ("NOPE", "", "ping")),
                              "from": rng.choice(BOGUS_SENDERS + (5, None, ["127.0.0.1", 1]))}
    for key in ("id", "timestamp", "target", "in_response_to", "orig_timestamp", "status", "rtt", "digest",
                "known_version", "incarnation", "state", "members"):
        if rng.random() < 0.5:
            msg[key] = nonsense(rng)
    return b"U" + json.dumps(msg).encode()


def swim_payload(rng: random.Random) -> bytes:
    """One datagram (or frame body) of garbage for the SWIM port."""
    kind = rng.randrange(8)
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 1400))
    if kind == 1:
        return b"U" + rng.randbytes(rng.randrange(0, 200))
    if kind == 2:
        return b"C" + rng.randbytes(rng.randrange(0, 200))  # not zlib at all
    if kind == 3:
        whole = swim_message(rng)
        return whole[:rng.randrange(0, len(whole))]  # a valid-looking message cut short
    if kind == 4:
        return b"C" + zlib.compress(swim_message(rng))
    if kind == 5:
        whole = b"C" + zlib.compress(swim_message(rng))
        return whole[:rng.randrange(1, len(whole))]
    if kind == 6:
        return rng.choice([b"", b"U", b"C", b"U{}", b"U[]", b"Unull", b'U"PING"', b"U{\"type\": 5}",
                           b'U{"type": "PING", "from": {"a": 1}}', b"\x00" * 512, b"\xff" * 1400])
    return swim_message(rng)


def zlib_bomb() -> bytes:
    """A datagram under 64 KiB that decompresses to tens of MiB of JSON-looking text."""
    return b"C" + zlib.compress(b'{"type": "PING", "pad": "' + b"0" * (40 << 20) + b'"}', 9)


def raft_frame(rng: random.Random) -> bytes:
    """What a garbage pysyncobj peer might send: 4-byte native length + zlib(pickle(message))."""

    def framed(body: bytes, length: int | None = None) -> bytes:
        return struct.pack("i", len(body) if length is None else length) + body

    kind = rng.randrange(10)
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 3000))
    if kind == 1:
        return struct.pack("i", rng.randrange(1, 1000))[:rng.randrange(1, 4)]  # a truncated length prefix
    if kind == 2:
        return framed(rng.randbytes(rng.randrange(0, 200)), 2 ** 31 - 1)  # a huge length prefix
    if kind == 3:
        return framed(rng.randbytes(rng.randrange(0, 200)), -rng.randrange(1, 2 ** 31))  # a negative one
    if kind == 4:
        return framed(rng.randbytes(rng.randrange(1, 500)))  # a whole frame that is not zlib
    if kind == 5:
        return framed(zlib.compress(rng.randbytes(rng.randrange(1, 500))))  # zlib, but not a pickle
    if kind == 6:  # half a pickle, framed as the whole
        body = zlib.compress(pickle.dumps(["append_entries", nonsense(rng), list(range(50))]))
        return framed(body)[:4 + len(body) // 2]
    if kind == 7:  # half a pickle, framed as what was sent
        raw = pickle.dumps({"type": "request_vote", "term": 10 ** 9, "lastLogIdx": nonsense(rng)})
        return framed(zlib.compress(raw[:len(raw) // 2]))
    if kind == 8:  # a valid-looking first message (the node address handshake) cut short
        body = zlib.compress(pickle.dumps(f"127.0.0.1:{rng.randrange(1, 65536)}"))
        return framed(body)[:rng.randrange(1, 4 + len(body))]
    # well-formed frames whose pickles are values no peer would send first
    value = rng.choice([{}, {"a": 1}, [[1]], [{}], [None], [], set(), 12345, b"bytes", None, 1.5, ("t",),
                        ["status"[:rng.randrange(0, 6)]], nonsense(rng)])
    return framed(zlib.compress(pickle.dumps(value)))


# -- Observing the cluster --------------------------------------------------------------------------


def failed_events(cluster: LocalCluster, node_id: str) -> float | None:
    """Sum of the node's ``failed`` membership events (every source); None when unreachable."""
    try:
        with urllib.request.urlopen(cluster.nodes[node_id].url + "/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("ringrift_membership_events_total{") and 'kind="failed"' in line)


class Watch:
    """Samples every node's failed-events counter and peer states while the fuzzing runs."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.failed: dict[str, float] = {}
        self.not_alive: list[tuple[str, str, str]] = []  # (observer, peer, state) ever seen
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fuzz-watch", daemon=True)

    def __enter__(self) -> "Watch":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.sample()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(0.25)  # the sampling period, not a wait for a condition

    def sample(self) -> None:
        for node_id in self.cluster.nodes:
            count = failed_events(self.cluster, node_id)
            if count is not None:
                self.failed[node_id] = max(self.failed.get(node_id, 0.0), count)
            for peer, view in ((self.cluster.status(node_id) or {}).get("peers") or {}).items():
                if view.get("state") not in ("alive", None):
                    self.not_alive.append((node_id, peer, view.get("state")))
        self.samples += 1


def swim_sees_all(cluster: LocalCluster, node_id: str) -> bool:
    """SWIM's own view on ``node_id``: every other node alive."""
    members = (cluster.get(node_id, "/swim/members") or {}).get("members") or []
    alive = {m.get("id") for m in members if m.get("state") == "alive"}
    return alive == set(cluster.nodes) - {node_id}


def healthy(cluster: LocalCluster, node_id: str) -> bool:
    return (cluster.get(node_id, "/health", timeout=5) or {}).get("alive") is True


def commit_a_write(cluster: LocalCluster, via: str, work_id: str) -> None:
    def commit() -> bool:
        status, body = cluster.post(via, "/raft/work", {"work_id": work_id, "work_type": "fuzz", "request_id": work_id},
                                    timeout=5)
        return status == 200 and body.get("ok") is True

    wait_until(commit, 30, what=f"a write through {via} commits")


# -- Sending --------------------------------------------------------------------------------------


class Barrage:
    """Sends garbage to one node's ports, batch by batch, each batch paced by a /health answer."""

    def __init__(self, cluster: LocalCluster, node_id: str, rng: random.Random, deadline: float) -> None:
        self.cluster = cluster
        self.node_id = node_id
        self.node = cluster.nodes[node_id]
        self.rng = rng
        self.deadline = deadline
        self.sent = {"udp": 0, "swim_tcp": 0, "raft_tcp": 0, "refused": 0}

    def _paced(self, count: int, send_one: Callable[[], None]) -> None:
        for i in range(count):
            if time.monotonic() > self.deadline:
                return
            send_one()
            if i % BATCH == BATCH - 1:
                assert wait_until(lambda: healthy(self.cluster, self.node_id), 15, what=f"{self.node_id} answers /health")

    def udp(self, count: int, bombs: int) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(bombs):
                s.sendto(zlib_bomb(), ("127.0.0.1", self.node.swim_port))
                self.sent["udp"] += 1

            def one() -> None:
                try:
                    s.sendto(swim_payload(self.rng), ("127.0.0.1", self.node.swim_port))
                    self.sent["udp"] += 1
                except OSError:  # ECONNREFUSED from an earlier ICMP (no UDP listener), or a full buffer
                    self.sent["refused"] += 1

            self._paced(count, one)

    def tcp(self, port: int, key: str, count: int, frame: Callable[[], bytes]) -> None:
        def one() -> None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                    for _ in range(self.rng.randrange(1, 4)):
                        s.sendall(frame())
                        self.sent[key] += 1
                    if self.rng.random() < 0.3:
                        s.shutdown(socket.SHUT_WR)  # half-close, then leave
            except OSError:  # refused (nothing listens on that kind), reset by the peer, timeout
                self.sent["refused"] += 1

        self._paced(count, one)

    def swim_tcp_frame(self) -> bytes:
        body = swim_payload(self.rng)
        kind = self.rng.randrange(6)
        if kind == 0:
            return len(body).to_bytes(4, "big") + body
        if kind == 1:
            return len(body).to_bytes(4, "big")[:self.rng.randrange(0, 4)]  # a truncated length prefix
        if kind == 2:
            return (0xFFFFFFFF).to_bytes(4, "big") + body  # past the 16 MiB frame limit
        if kind == 3:
            return (16 * 1024 * 1024).to_bytes(4, "big") + body  # at the limit, never completed
        if kind == 4:
            framed = len(body).to_bytes(4, "big") + body
            return framed[:self.rng.randrange(0, len(framed) + 1)]  # cut short
        return self.rng.randbytes(self.rng.randrange(0, 2000))


@pytest.fixture(params=["udp", "tcp"], ids=["swim-udp", "swim-tcp"])
def cluster(request: pytest.FixtureRequest, make_cluster: Callable[..., LocalCluster]) -> Iterator[LocalCluster]:
    settings = {"membership_mode": "hybrid", "consensus_mode": "raft", "swim": {"transport": request.param}}
    cluster = make_cluster(3, settings=settings)
    cluster.start_all()
    wait_until(lambda: all(((cluster.status(n) or {}).get("swim_raft") or {}).get("swim", {}).get("started")
                           for n in cluster.nodes), START_S, what="SWIM started on every node",
               describe=lambda: {n: ((cluster.status(n) or {}).get("swim_raft") or {}).get("swim") for n in cluster.nodes})
    yield cluster


def test_garbage_on_swim_and_raft_ports(cluster: LocalCluster) -> None:
    ids = list(cluster.nodes)
    transport = cluster.settings.get("swim", {}).get("transport", "none")  # type: ignore[union-attr]
    cluster.wait_converged(START_S)
    if transport != "none":
        wait_until(lambda: all(swim_sees_all(cluster, n) for n in ids), START_S, what="SWIM sees all alive",
                   describe=lambda: {n: cluster.get(n, "/swim/members") for n in ids})
    cluster.wait_for_leader(START_S)
    commit_a_write(cluster, ids[0], "before-fuzz")
    pids = {n: cluster.nodes[n].proc.pid for n in ids}  # type: ignore[union-attr]
    assert all(failed_events(cluster, n) == 0 for n in ids)

    rng = random.Random(20240611)
    deadline = time.monotonic() + FUZZ_BUDGET_S
    started = time.monotonic()
    barrages = [Barrage(cluster, n, random.Random(rng.random()), deadline) for n in ids]
    with Watch(cluster) as watch:
        for b in barrages:
            if transport in ("udp", "none"):
                b.udp(UDP_PER_NODE, bombs=3)
            else:
                b.tcp(b.node.swim_port, "swim_tcp", TCP_CONNECTIONS_PER_PORT * 2, b.swim_tcp_frame)
                b.udp(UDP_PER_NODE // 4, bombs=0)  # nothing listens on UDP: must not matter either
            b.tcp(b.node.raft_port, "raft_tcp", TCP_CONNECTIONS_PER_PORT, lambda b=b: raft_frame(b.rng))
        elapsed = time.monotonic() - started
        sent = {k: sum(b.sent[k] for b in barrages) for k in barrages[0].sent}
        # The cluster after the barrage: same processes, healthy, converged, led, writable.
        for n in ids:
            assert cluster.nodes[n].running and cluster.nodes[n].proc.pid == pids[n], f"{n} died"  # type: ignore[union-attr]
            assert healthy(cluster, n), n
        cluster.wait_converged(20)
        if transport != "none":
            wait_until(lambda: all(swim_sees_all(cluster, n) for n in ids), 20, what="SWIM still sees all alive",
                       describe=lambda: {n: cluster.get(n, "/swim/members") for n in ids})
        cluster.wait_for_leader(20)
        commit_a_write(cluster, ids[-1], "after-fuzz")
    print(f"\nfuzzed {transport}: {sent} in {elapsed:.1f}s; {watch.samples} samples; not alive seen: {watch.not_alive[:10]}")
    assert sum(sent[k] for k in ("udp", "swim_tcp", "raft_tcp")) >= 1000, sent
    assert watch.samples >= 3
    assert watch.failed == {n: 0.0 for n in ids}, f"a node declared another failed: {watch.failed}; {watch.not_alive[:20]}"
    for n in ids if transport != "none" else ():
        swim = cluster.get(n, "/swim/status") or {}
        assert swim.get("engine_running") is True and swim.get("failures_detected") == 0, swim
