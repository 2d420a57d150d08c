"""Bounded gossip: what one heartbeat carries (own entry, freshest changes, retransmit limit,
packet budget), and the same through swim-p2p's own member list and gossip service."""

from __future__ import annotations

import asyncio
import json
import zlib
from typing import Any

import pytest

from ringrift_cluster.membership.swim.membership import _load_engine

_load_engine()  # imports swim-p2p with its import-time prints swallowed

from swim.protocol.disseminator import GossipService  # noqa: E402
from swim.protocol.member import Member, MemberList, MemberState  # noqa: E402
from swim.utils.serialization import serialize_message  # noqa: E402

from ringrift_cluster.membership.swim import gossip as swim_gossip  # noqa: E402
from ringrift_cluster.membership.swim.gossip import Piggyback, push_pull_interval, retransmit_limit  # noqa: E402
from ringrift_cluster.membership.swim.wire import frame  # noqa: E402

ME = ("127.0.0.1", 7000)


def members(n: int) -> dict[tuple[str, int], Member]:
    out = {ME: Member(addr=ME, incarnation=1_700_000_000_000, metadata={"id": "me"})}
    for i in range(n):
        addr = (f"10.0.{i // 250}.{i % 250}", 7000 + i)
        out[addr] = Member(addr=addr, incarnation=1_700_000_000_000 + i, metadata={"id": f"node-{i:05d}"})
    return out


def heartbeat_size(entries: list[dict[str, Any]], compress: bool) -> int:
    message = {"type": "HEARTBEAT", "from": "127.0.0.1:7000",
               "digest": {"version": 123456, "entries": entries, "is_full": False,
                          "timestamp": 1_700_000_000.123456, "source": "127.0.0.1:7000"},
               "id": "abcdef12", "timestamp": 1_700_000_000.123456}
    data = serialize_message(message)
    return len(frame(data) if compress else data)


OVERHEAD = heartbeat_size([], False) + 24


def addrs(entries: list[dict[str, Any]]) -> list[str]:
    return [e["addr"] for e in entries]


@pytest.mark.parametrize("compress", [False, True])
def test_own_entry_always_first_even_with_nothing_queued(compress: bool) -> None:
    table = members(5)
    q = Piggyback(ME, compress=compress)
    assert addrs(q.select(table, OVERHEAD)) == ["127.0.0.1:7000"]
    q.changed(ME)  # our own changes are carried anyway, never queued
    assert len(q) == 0
    table[ME].metadata = {"id": "me", "blob": "x" * 3000}  # even when it alone is over budget
    assert addrs(q.select(table, OVERHEAD)) == ["127.0.0.1:7000"]


def test_freshest_change_first_then_fewest_sends() -> None:
    table = members(50)
    keys = [a for a in table if a != ME]
    q = Piggyback(ME, budget=OVERHEAD + 2 * 160 + 40, compress=False)  # room for own + 1
    for a in keys[:3]:
        q.changed(a)
    first = q.select(table, OVERHEAD)
    assert addrs(first)[1:] == [f"{keys[2][0]}:{keys[2][1]}"]  # the freshest of the three
    second = q.select(table, OVERHEAD)
    assert addrs(second)[1:] == [f"{keys[1][0]}:{keys[1][1]}"]  # unsent ones before a resend
    q.changed(keys[2])  # a new change of the same member: back to zero sends, freshest
    assert addrs(q.select(table, OVERHEAD))[1:] == [f"{keys[2][0]}:{keys[2][1]}"]


def test_each_change_is_sent_a_bounded_number_of_times() -> None:
    table = members(30)
    q = Piggyback(ME, retransmit_mult=4, compress=False)
    target = next(a for a in table if a != ME)
    q.changed(target)
    limit = retransmit_limit(4, len(table))
    assert limit == 8  # 4 * ceil(log10(32))
    sent = 0
    for _ in range(20):
        if len(q.select(table, OVERHEAD, copies=3)) > 1:
            sent += 1
    assert sent == -(-limit // 3)  # three copies per heartbeat: 3 heartbeats reach 8+ sends
    assert len(q) == 0
    assert retransmit_limit(4, 10_000) == 20 and retransmit_limit(4, 1) == 4


@pytest.mark.parametrize("compress", [False, True])
def test_budget_never_exceeded_however_long_the_queue(compress: bool) -> None:
    table = members(500)
    q = Piggyback(ME, budget=1400, compress=compress)
    for a in table:
        q.changed(a)
    carried: list[int] = []
    while len(q):
        entries = q.select(table, OVERHEAD, copies=3)
        assert len(entries) > 1, "a heartbeat made no progress"
        assert heartbeat_size(entries, compress) <= 1400
        carried.append(len(entries) - 1)
    assert sum(carried) >= 500 * 3  # every change carried until its limit (9 sends = 3 beats)
    if compress:
        assert max(carried) >= 20  # compression carries several times the raw ~7 entries
    else:
        assert max(carried) <= 8


def test_members_gone_since_they_changed_are_skipped() -> None:
    table = members(5)
    q = Piggyback(ME, compress=False)
    gone = next(a for a in table if a != ME)
    q.changed(gone)
    del table[gone]
    assert addrs(q.select(table, OVERHEAD)) == ["127.0.0.1:7000"] and len(q) == 0


def test_push_pull_interval_grows_with_log_n() -> None:
    assert push_pull_interval(30, 10) == 30 and push_pull_interval(30, 32) == 30
    assert push_pull_interval(30, 100) == 90 and push_pull_interval(30, 1000) == 180
    assert push_pull_interval(30, 10_000) == 300


class _Capture:
    """A transport that keeps what it is given (the library's gossip code runs for real)."""

    local_address = ME

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple[str, int]]] = []

    async def send(self, data: bytes, dest: tuple[str, int]) -> None:
        self.sent.append((data, dest))


def test_library_heartbeat_is_bounded_and_merges_entry_by_entry() -> None:
    async def run() -> None:
        listed = MemberList(ME)
        for i in range(300):
            listed.add_member((f"10.0.{i // 250}.{i % 250}", 7000 + i))
        capture = _Capture()
        config = {"GOSSIP_FANOUT": 3, "GOSSIP_FANOUT_FACTOR": 0, "FULL_SYNC_INTERVAL": 0,
                  "PUSH_PULL_SYNC_ENABLED": False, "PUSH_PULL_SYNC_PROBABILITY": 0.0}
        gossip = GossipService(capture, listed, config)
        q = Piggyback(ME, budget=1400)
        swim_gossip.install(_NodeLike(listed, gossip), q, fanout=3)
        listed.get_member(ME).metadata = {"id": "me"}
        await listed.mark_suspect(("10.0.0.7", 7007))  # a change: queued through _record_delta
        await gossip.send_heartbeat()
        assert len(capture.sent) == 3  # fan-out pinned at 3 with 301 members
        data = frame(capture.sent[0][0])
        assert len(data) <= 1400
        digest = json.loads(zlib.decompress(data[1:]) if data[:1] == b"C" else data[1:])["digest"]
        assert digest["entries"][0]["addr"] == "127.0.0.1:7000"
        assert "10.0.0.7:7007" in addrs(digest["entries"])
        assert len(listed.serialize_digest(full=False)["entries"]) == 301  # elsewhere: everything
        receiver = MemberList(("127.0.0.1", 7001))
        await receiver.merge_digest(digest)
        assert receiver.get_member(("10.0.0.7", 7007)).state is MemberState.SUSPECT

    asyncio.run(run())


class _NodeLike:
    def __init__(self, members: MemberList, gossip: GossipService) -> None:
        self.members = members
        self.gossip = gossip
