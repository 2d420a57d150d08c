"""Parts of the SWIM engine: its hooks on one swim-p2p node (instance attributes: the library is
untouched), anti-entropy, and its counters. ``self`` is the ``SwimEngine``; these live here only
to keep the engine module short."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from typing import Any, Optional

from . import gossip
from .bridge import serialize_message

Addr = tuple[str, int]


def hook_member_list(self: Any, node: Any) -> None:
    """Two hooks on the node's member list (instance attributes, the library is untouched):

    * ``mark_dead``: know when *this* node's detector declares a member DEAD (not when gossip
      says so). The originator announces the death to everyone at once instead of letting it
      spread at gossip fan-out while every cycle is slowed by probes of the dead member.
    * ``mark_suspect``: swim-p2p demotes a DEAD member to SUSPECT with a *higher* incarnation
      when a ping to it fails (a probe in flight when the death arrived, or one of its
      periodic probes of dead members). That SUSPECT then overrides the DEAD everywhere and
      restarts every suspicion timer: measured, one survivor in three reported a death 3 s
      late. A failed ping never revives a DEAD member here. A suspicion this node raises
      itself (no incarnation given: its own ping failed) is remembered for indirect probes.
    * ``mark_alive``: swim-p2p resurrects a DEAD member that answers a ping (direct or
      indirect), with a higher incarnation. A member that announced its leave answers the pings
      it received just before: a reply arriving after the leave turned it ALIVE again, and that
      spread (survivors saw ``left``, ``joined``, then ``left`` once it was probed dead). A left
      member comes back only by its own word: a restart announces a new, higher incarnation
      without the leave marker (a digest merge, not this call).
    """
    members = node.members
    original_dead, original_suspect = members.mark_dead, members.mark_suspect
    original_alive = members.mark_alive
    self_addr = self.plan.self_addr

    async def mark_dead(addr: Addr, *args: Any, **kwargs: Any) -> bool:
        changed = await original_dead(addr, *args, **kwargs)
        if changed and addr != self_addr:
            self._pending_announce = True
            self._announce_addrs.add(addr)
            self.status.deaths_originated += 1
        return bool(changed)

    async def mark_suspect(addr: Addr, incarnation: Optional[int] = None, *args: Any, **kwargs: Any) -> bool:
        member = members.get_member(addr)
        if member is not None and member.is_dead and incarnation is None and addr != self_addr:
            return False
        changed = bool(await original_suspect(addr, incarnation, *args, **kwargs))
        if changed and incarnation is None and addr != self_addr:
            self._suspected_here.add(addr)
            # Lifeguard's "buddy": tell the suspect itself at once. Alive but slow, it refutes
            # now instead of when gossip happens to reach it (which took most of a short
            # suspicion timeout at 30 nodes).
            self._own_task(self._send_digest([addr], [addr]))
        return changed

    async def mark_alive(addr: Addr, *args: Any, **kwargs: Any) -> bool:
        member = members.get_member(addr)
        if member is not None and member.is_dead and member.metadata.get("left") and addr != self_addr:
            return False
        return bool(await original_alive(addr, *args, **kwargs))

    members.mark_dead = mark_dead  # type: ignore[method-assign]
    members.mark_alive = mark_alive  # type: ignore[method-assign]
    members.mark_suspect = mark_suspect  # type: ignore[method-assign]

def gate_indirect_probes(self: Any, node: Any) -> None:
    """Only the suspecter probes indirectly, once per suspicion, without holding up the
    protocol loop (whose cycle also paces the suspicion timeout checks)."""
    original = node.failure_detector.indirect_probe

    async def indirect_probe(target: Addr) -> bool:
        if target not in self._suspected_here or target in self._probes:
            return False
        self._suspected_here.discard(target)
        self.status.indirect_probes += 1
        task = asyncio.create_task(original(target))
        self._probes[target] = task
        task.add_done_callback(lambda _t, a=target: self._probes.pop(a, None))
        return False

    node.failure_detector.indirect_probe = indirect_probe  # type: ignore[method-assign]


async def anti_entropy(self: Any, node: Any, now: float) -> None:
    """Anti-entropy with one random live member: ask for its whole list (the library's
    SYNC-REQ with version 0) and send ours; both are over the packet budget beyond a few
    dozen members, so they go over TCP."""
    s = self.plan.settings
    answers = self.stats.by_type.get("received:SYNC-RESP", (0, 0))[0]
    if answers > self._sync_answers:
        self._synced = True
    self._sync_answers = answers
    if self._synced:
        live = sum(1 for m in node.members.get_all_members() if not m.is_dead)  # once per sync
        interval = gossip.push_pull_interval(s.sync_interval_s, live)
        self._next_sync = now + interval * random.uniform(0.75, 1.25)  # no lock-step across nodes
    else:
        # Joining: pull from a member known to run (it sent us its own entry), and again
        # soon until one answers; a seed entry may be a node that has not started yet.
        self._next_sync = now + 2.0
    candidates = node.members.get_random_members(8)
    running = [m for m in candidates if m.metadata.get("id")] if not self._synced else candidates
    if not running:
        self._next_sync = now + 0.5
        return
    targets = running[:1]
    self.status.syncs += 1
    request = {"type": "SYNC-REQ", "from": self._host_str, "id": uuid.uuid4().hex[:8],
               "known_version": 0, "timestamp": time.time()}
    await node.transport.send(serialize_message(request), targets[0].addr)
    # Push too (memberlist's push-pull): news that only this node holds spreads as fast as
    # news it lacks.
    await self._send_digest(None, [targets[0].addr])


async def expire_suspects(self: Any, node: Any) -> None:
    """The library's own rule (SUSPECT longer than ``SUSPECT_TIMEOUT`` -> DEAD), checked every
    engine tick instead of once per protocol cycle: a cycle lasts a period plus its probes, so the
    check alone added about half a second to every detection. Lifeguard scales the timeout per
    member: then the library's check stays the only one."""
    if self.plan.settings.lifeguard:
        return
    timeout = self.plan.settings.suspicion_timeout_s
    now = time.time()
    for addr in list(self.publisher.suspects):
        member = node.members.get_member(addr)
        if member is None or not member.is_suspect:
            self.publisher.suspects.discard(addr)
        elif now - member.last_state_change > timeout:
            self.publisher.suspects.discard(addr)
            await node.members.mark_dead(addr)


def counters(self: Any) -> dict[str, Any]:
    """Everything the engine counts, for ``describe()`` and the metrics."""
    st, view = self.status, self.view
    return {
        "running": st.running,
        "restarts": st.restarts,
        "last_error": st.last_error,
        "incarnation": st.incarnation,
        "raw_transitions": view.raw_transitions,
        "raw_flaps": view.raw_flaps,
        "raw_dead_flaps": view.raw_dead_flaps,
        "refutations": view.refutations,
        "failures_detected": view.failures_detected,
        "leaves_detected": view.leaves_detected,
        "self_refutations": st.self_refutations,
        "pauses_detected": st.pauses_detected,
        "announces": st.announces,
        "deaths_originated": st.deaths_originated,
        "dead_told": st.dead_told,
        "dead_reached": st.dead_reached,
        "protocol_cycles": st.protocol_cycles,
        "syncs": st.syncs,
        "indirect_probes": st.indirect_probes,
        "forgotten": st.forgotten,
        "library_members": st.members,
        "unknown_addresses": sorted(st.unknown_addresses)[:100],
        "unknown_address_count": len(st.unknown_addresses),
        "mismatched_ids": sorted(st.mismatched_ids),
        **self.stats.snapshot(),
    }


def tell_the_dead(self: Any, node: Any, now: float, every_s: float = 1.0) -> int:
    """A member this node holds DEAD (not left) but still hears from is alive and does not know
    it was declared dead: a node refutes only what it is told, and its own ALIVE at the old
    incarnation never outranks the DEAD. After a partition heals (or a one-way drop ends) nothing
    else tells it until a full sync happens to pick it, so it stayed failed for many seconds.
    Send it its own entry, at most once per ``every_s``: it refutes with a higher incarnation and
    announces itself to everyone. Returns how many were told."""
    heard = self.stats.last_heard
    told = 0
    for m in node.members.get_all_members(exclude_self=True):
        if not m.is_dead or m.metadata.get("left"):
            continue
        last = heard.get(m.addr)
        if last is None:
            continue
        heard_at = time.time() - (now - last)  # wall clock, as the member's state change is kept
        if heard_at <= m.last_state_change or now - self._told_dead.get(m.addr, -every_s) < every_s:
            continue
        self._told_dead[m.addr] = now
        self._own_task(self._send_digest([m.addr], [m.addr]))
        self.status.dead_told += 1
        told += 1
    return told


def reach_the_dead(self: Any, node: Any, now: float, every_s: float = 2.0) -> bool:
    """After a partition heals, each side holds the other DEAD, and nothing crosses: the library
    probes only live members (a DEAD one at its resurrection probe, 30 s to 5 min apart) and
    ``tell_the_dead`` needs to hear from the dead member first. So every ``every_s`` (jittered)
    send our own entry to one random member held DEAD (not left): if it is alive it hears from us
    and tells us (``tell_the_dead``), we refute and announce, and it does the same the other way,
    within a round trip or two. (memberlist gossips to the dead for the same reason.) Stops once
    the dead are forgotten (tombstones). Returns whether one was sent."""
    if now < self._next_reach_dead:
        return False
    self._next_reach_dead = now + every_s * random.uniform(0.5, 1.5)
    dead = [m.addr for m in node.members.get_all_members(exclude_self=True) if m.is_dead and not m.metadata.get("left")]
    if not dead:
        return False
    self._own_task(self._send_digest([self.plan.self_addr], [random.choice(dead)]))
    self.status.dead_reached += 1
    return True
