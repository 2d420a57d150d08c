"""Bounded gossip for swim-p2p: what a heartbeat carries, and how often a full sync runs.

swim-p2p 1.2.6 puts its *whole* member list in every heartbeat (``serialize_digest`` with
``since_version=0`` means "everything"): about 149 B per member, so 15 KB at 100 members and over
the 65,507 B UDP limit at about 438. Receivers merge a digest entry by entry and never read
anything into an absent entry, so a heartbeat may carry any subset. We make it carry, memberlist
style, the sender's own entry plus the freshest *changes* that fit the packet budget, each change
sent a bounded number of times (``retransmit_mult * ceil(log10(N + 1))``). What a heartbeat can no
longer carry (a member list that never changed, a change that ran out of sends) is repaired by a
full anti-entropy sync over TCP on an interval that grows with N (memberlist's ``pushPullScale``).

Hooks are instance attributes on the library's objects (the library is not modified):
``members._record_delta`` (every change goes through it) feeds the queue, ``gossip.send_heartbeat``
marks the heartbeat context, ``members.serialize_digest`` answers a bounded digest only there;
SYNC-RESP and our own messages still get the library's full digest.
"""

from __future__ import annotations

import contextvars
import heapq
import json
import math
import time
import zlib
from typing import Any, Callable, Iterable, Mapping, Optional

from .wire import COMPRESS_OVER

Addr = tuple[str, int]
# Digest entries compress 4-7x with zlib; candidates are gathered up to this multiple of the
# budget, then cut to what really fits compressed.
_ZLIB_RATIO = 6

# The real heartbeat's id and float timestamps may print a few bytes longer than our estimate.
_SLACK = 24
_IN_HEARTBEAT: contextvars.ContextVar[bool] = contextvars.ContextVar("ringrift_swim_heartbeat", default=False)


def retransmit_limit(mult: int, members: int) -> int:
    """memberlist's ``retransmitLimit``: sends of one change before it leaves the queue."""
    return max(1, mult * math.ceil(math.log10(members + 1)))


def push_pull_interval(base_s: float, members: int) -> float:
    """memberlist's ``pushPullScale``: the full-sync period, constant up to 32 members, then one
    more ``base_s`` per doubling, so the cluster-wide sync traffic grows as N log N, not N^2."""
    if members <= 32:
        return base_s
    return base_s * (math.ceil(math.log2(members) - math.log2(32)) + 1)


def entry_of(member: Any) -> dict[str, Any]:
    """One digest entry, exactly as the library's ``serialize_digest`` builds it."""
    return {
        "addr": f"{member.addr[0]}:{member.addr[1]}",
        "state": member.state.name,
        "incarnation": member.incarnation,
        "last_heartbeat": member.last_heartbeat,
        "metadata": member.metadata,
    }


def _size(obj: Any) -> int:
    return len(json.dumps(obj))


class Piggyback:
    """The queue of membership changes waiting to ride on heartbeats (no I/O, no library).

    ``changed(addr)`` (re)queues a member with zero sends; ``select`` returns the entries of one
    heartbeat: the own entry first, then queued members by fewest sends, freshest change first,
    as long as the whole message stays within ``budget`` bytes; every selected change counts
    ``copies`` sends (one heartbeat goes to ``copies`` peers) and leaves the queue at the limit.
    """

    def __init__(self, self_addr: Addr, budget: int = 1400, retransmit_mult: int = 4,
                 compress: bool = True) -> None:
        self.self_addr = self_addr
        self.compress = compress
        self.budget = budget
        self.retransmit_mult = retransmit_mult
        self._sends: dict[Addr, int] = {}
        self._fresh: dict[Addr, int] = {}  # addr -> sequence number of its latest change
        self._seq = 0
        self.selected = 0  # entries piggybacked so far (a counter for metrics)
        self.truncated = 0  # heartbeats that left queued changes behind for lack of room

    def __len__(self) -> int:
        return len(self._sends)

    def changed(self, addr: Addr) -> None:
        if addr == self.self_addr:
            return  # always carried anyway
        self._seq += 1
        self._sends[addr] = 0
        self._fresh[addr] = self._seq

    def forget(self, addr: Addr) -> None:
        self._sends.pop(addr, None)
        self._fresh.pop(addr, None)

    def queued(self) -> list[Addr]:
        """Queued members in selection order (fewest sends, then freshest)."""
        return sorted(self._sends, key=lambda a: (self._sends[a], -self._fresh[a]))

    def select(self, members: Mapping[Addr, Any], overhead: int, copies: int = 1,
               entry: Callable[[Any], dict[str, Any]] = entry_of) -> list[dict[str, Any]]:
        """Entries for one heartbeat: ``overhead`` is the size of the message with no entries;
        the result keeps the whole message within ``budget`` bytes (only the own entry may not),
        counted compressed when ``compress`` (our transport zlib-frames big messages)."""
        limit = retransmit_limit(self.retransmit_mult, len(members))
        me = members.get(self.self_addr)
        entries = [entry(me)] if me is not None else []
        room = self.budget * (_ZLIB_RATIO if self.compress else 1) - overhead - sum(_size(e) + 2 for e in entries)
        if len(self._sends) > 64:  # no full sort of a long queue per heartbeat
            order = heapq.nsmallest(64, self._sends, key=lambda a: (self._sends[a], -self._fresh[a]))
        else:
            order = self.queued()
        chosen: list[tuple[Addr, dict[str, Any]]] = []
        for addr in order:
            member = members.get(addr)
            if member is None:
                self.forget(addr)  # removed since it changed: nothing to say about it
                continue
            candidate = entry(member)
            cost = _size(candidate) + 2  # ", " between list items
            if cost > room:
                self.truncated += 1
                break
            room -= cost
            chosen.append((addr, candidate))
        if self.compress and chosen:
            chosen = chosen[:self._fit_packed(overhead, entries, [c for _, c in chosen])]
        for addr, candidate in chosen:
            entries.append(candidate)
            self.selected += 1
            sends = self._sends[addr] + max(1, copies)
            if sends >= limit:
                self.forget(addr)
            else:
                self._sends[addr] = sends
        return entries

    def _fit_packed(self, overhead: int, fixed: list[dict[str, Any]], extra: list[dict[str, Any]]) -> int:
        """How many of ``extra`` fit once compressed: guess from the compression ratio of all of
        them, then check and shrink (two or three compressions, not a search per heartbeat). The
        envelope is counted uncompressed, so the estimate errs on the small side."""
        def packed(k: int) -> int:
            raw = json.dumps(fixed + extra[:k]).encode()
            size = len(raw) if len(raw) + overhead <= COMPRESS_OVER else len(zlib.compress(raw, 6))
            return overhead + size

        k = len(extra)
        total = packed(k)
        while k and total > self.budget:
            k = min(k - 1, int(k * (self.budget / total) * 0.95))
            total = packed(k)
        return k


def install(node: Any, piggyback: Piggyback, on_change: Optional[Callable[[Addr], None]] = None,
            fanout: int = 3, bounded: bool = True) -> None:
    """Hook one library node: changes feed ``piggyback`` (and ``on_change``); with ``bounded``,
    heartbeats carry ``piggyback.select``. Everything else keeps the library's full digest."""
    members, gossip = node.members, node.gossip
    original_record = members._record_delta
    original_serialize = members.serialize_digest
    original_heartbeat = gossip.send_heartbeat

    def record_delta(addr: Addr) -> None:
        original_record(addr)
        piggyback.changed(addr)
        if on_change is not None:
            on_change(addr)

    def serialize_digest(full: bool = True, since_version: int = 0) -> dict[str, Any]:
        if not _IN_HEARTBEAT.get():
            return original_serialize(full, since_version)
        source = f"{members.self_addr[0]}:{members.self_addr[1]}"
        digest = {"version": members._version, "entries": [], "is_full": False,
                  "timestamp": time.time(), "source": source}
        message = {"type": "HEARTBEAT", "from": source, "digest": digest, "id": "00000000",
                   "timestamp": time.time()}
        overhead = _size(message) + _SLACK
        digest["entries"] = piggyback.select(members._members, overhead, copies=fanout)
        return digest

    async def send_heartbeat() -> None:
        token = _IN_HEARTBEAT.set(True)
        try:
            await original_heartbeat()
        finally:
            _IN_HEARTBEAT.reset(token)

    async def handle_heartbeat(from_addr: Addr, msg: dict[str, Any]) -> None:
        # The library's handler, minus two dicts of *all* members built around every merge only
        # to log the differences: O(N) per received heartbeat, the top cost at 200 members.
        await members.update_heartbeat(from_addr)
        digest = msg.get("digest")
        if digest:
            gossip._known_versions[from_addr] = digest.get("version", 0)
            gossip._gossip_received += 1
            await members.merge_digest(digest)

    members._record_delta = record_delta
    gossip._handle_heartbeat = handle_heartbeat
    if bounded:
        members.serialize_digest = serialize_digest
        gossip.send_heartbeat = send_heartbeat


def digest_of(members: Any, addrs: Iterable[Addr]) -> dict[str, Any]:
    """A digest of just these members (the library's shape): what announce and leave send."""
    entries = [entry_of(m) for m in (members.get_member(a) for a in addrs) if m is not None]
    return {"version": members._version, "entries": entries, "is_full": False,
            "timestamp": time.time(), "source": f"{members.self_addr[0]}:{members.self_addr[1]}"}
