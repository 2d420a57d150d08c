"""Message sizes, built the way the running code builds them: the library's message dicts, its
serializer, our digest entries (``membership.swim.gossip.entry_of``), our zlib framing (``membership.swim.wire.frame``)
and our piggyback selection (``membership.swim.gossip.Piggyback``) for how many changes fit a heartbeat.
Measured once per (N, address style), not written down."""

from __future__ import annotations

import functools
import json
import random
from dataclasses import dataclass
from types import SimpleNamespace

from ..membership.swim import gossip as swim_gossip
from ..membership.swim.bridge import library_serialize as serialize_message
from ..membership.swim.wire import frame


@dataclass(frozen=True)
class Sizes:
    ping: int
    pong: int
    ping_req: int
    ping_req_ack: int
    sync_req: int
    heartbeat_own: int  # a heartbeat with only the sender's entry (the idle case)
    entry: int  # one more entry, uncompressed
    heartbeat_full_budget: int  # a heartbeat filled to the budget
    capacity: int  # changed entries one heartbeat carries besides the own one
    full_list: int  # a whole member list as anti-entropy sends it (framed)
    member_bytes: int  # one member's entry as JSON: the memory model's unit

    def heartbeat(self, changes: int) -> int:
        """Bytes of a heartbeat carrying ``changes`` entries besides the own one."""
        if changes <= 0:
            return self.heartbeat_own
        if changes >= self.capacity:
            return self.heartbeat_full_budget
        raw = self.heartbeat_own + changes * self.entry
        return raw if raw <= 1024 else min(self.heartbeat_full_budget, int(raw / 4))


def _addr(i: int, loopback: bool) -> str:
    return f"127.0.0.1:{20000 + i}" if loopback else f"10.{i // 65536}.{i // 256 % 256}.{i % 256}:7947"


def _member(i: int, loopback: bool, now: float) -> SimpleNamespace:
    # Incarnations are start times in ms and heartbeats recent wall-clock floats: as varied as
    # real ones, so zlib compresses them no better than it does real lists.
    rnd = random.Random(i)
    host, port = _addr(i, loopback).rsplit(":", 1)
    return SimpleNamespace(addr=(host, int(port)), state=SimpleNamespace(name="ALIVE"),
                           incarnation=int(now * 1000) - rnd.randrange(10**9), last_heartbeat=now - rnd.random() * 5,
                           metadata={"id": f"n{i:02d}" if loopback else f"node-{i:05d}"})


# A fixed wall-clock time with the digits of a real one: sizes (and so every run) do not depend on
# when they were measured.
_NOW = 1764133200.123456


def _heartbeat(source: str, entries: list[dict]) -> dict:
    now = _NOW
    return {"type": "HEARTBEAT", "from": source,
            "digest": {"version": 123456, "entries": entries, "is_full": False, "timestamp": now, "source": source},
            "id": "0123abcd", "timestamp": now}


@functools.lru_cache(maxsize=64)
def measure(n: int, loopback: bool = False, fanout: int = 3, budget: int = 1400) -> Sizes:
    now = _NOW
    src = _addr(0, loopback)
    members = {m.addr: m for m in (_member(i, loopback, now) for i in range(400))}
    own = swim_gossip.entry_of(members[next(iter(members))])
    one = len(frame(serialize_message(_heartbeat(src, [own]))))
    two = len(frame(serialize_message(_heartbeat(src, [own, own]))))
    # How many changes the real selection puts in one heartbeat, from a long queue.
    pig = swim_gossip.Piggyback(next(iter(members)), budget, 4)
    for addr in list(members)[1:]:
        pig.changed(addr)
    overhead = len(json.dumps(_heartbeat(src, []))) + 24
    chosen = pig.select(members, overhead, copies=fanout)
    full_hb = len(frame(serialize_message(_heartbeat(src, chosen))))
    # A full list: measured on up to 400 members, scaled per member (zlib's ratio is stable).
    sample = [swim_gossip.entry_of(m) for m in list(members.values())[:max(2, min(n, 400))]]
    sample_bytes = len(frame(serialize_message({"type": "SYNC-RESP", "from": src, "digest": {
        "version": 1, "entries": sample, "is_full": True, "timestamp": now, "source": src}, "id": "0123abcd"})))
    pid = {"type": "PING", "from": src, "id": "0123abcd", "timestamp": now}
    pong = {"type": "PONG", "from": src, "id": "0123abcd", "in_response_to": "PING", "orig_timestamp": now,
            "timestamp": now}
    preq = {"type": "PING-REQ", "from": src, "target": _addr(1, loopback), "id": "0123abcd", "timestamp": now}
    ack = {"type": "PING-REQ-ACK", "from": src, "target": _addr(1, loopback), "status": "alive", "id": "0123abcd",
           "rtt": 0.000123}
    sreq = {"type": "SYNC-REQ", "from": src, "id": "0123abcd", "known_version": 0, "timestamp": now}
    return Sizes(
        ping=len(serialize_message(pid)), pong=len(serialize_message(pong)), ping_req=len(serialize_message(preq)),
        ping_req_ack=len(serialize_message(ack)), sync_req=len(serialize_message(sreq)),
        heartbeat_own=one, entry=two - one, heartbeat_full_budget=full_hb, capacity=max(1, len(chosen) - 1),
        full_list=int(sample_bytes * max(n, 2) / len(sample)), member_bytes=len(json.dumps(own)),
    )
