"""From swim-p2p's member list to the published view: only what changed is looked at.

The engine used to walk every member ten times a second (about 15 ms per pass at 10,000
members). Now the member list's change hook names the members that changed; those, plus the few
whose damping is still running (a SUSPECT not yet reported, a DEAD not yet confirmed), are fed to
the view each tick. In the snapshot (``Member`` objects for subscribers) a member is rebuilt when
its published state changed, and all of them every few seconds for ``last_seen``.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Optional

from ...model import Member, MemberState, MembershipEvent, NodeId
from .bridge import RawState
from .view import RAW_ALIVE, RAW_DEAD, RAW_SUSPECT, RawObservation, SwimView

Addr = tuple[str, int]
_RAW_NAMES = {RawState.ALIVE: RAW_ALIVE, RawState.SUSPECT: RAW_SUSPECT, RawState.DEAD: RAW_DEAD}
_REFRESH_S = 1.0  # counters and snapshot published at least this often
_LAST_SEEN_REFRESH_S = 5.0  # every Member rebuilt (for last_seen) at most this often


class Publisher:
    def __init__(self, plan: Any, view: SwimView, stats: Any, status: Any, log: Any,
                 publish: Callable[[Mapping[NodeId, Member], list[MembershipEvent], dict[str, Any]], None],
                 counters: Callable[[], dict[str, Any]]) -> None:
        self.plan = plan
        self.view = view
        self.stats = stats
        self.status = status
        self._log = log
        self._publish = publish
        self._counters = counters
        self._changed: set[Addr] = set()
        self._pending: set[Addr] = set()  # damping still running: look again next tick
        self.suspects: set[Addr] = set()  # configured members the library holds SUSPECT
        self._last_publish = 0.0
        self._dirty = True
        self._last_refresh = 0.0
        self._cache: dict[NodeId, Member] = {}
        self._keys: dict[NodeId, tuple[MemberState, float]] = {}
        self.node: Any = None

    def changed(self, addr: Addr) -> None:
        """The member list's change hook (called by the library, under its lock: cheap only)."""
        self._changed.add(addr)

    def everything_changed(self, node: Any) -> None:
        """A new library node: every member is news."""
        self.node = node
        self._changed.update(m.addr for m in node.members.get_all_members(exclude_self=True))

    def observe(self, now: float) -> None:
        node = self.node
        if node is None:
            return
        addrs = self._changed | self._pending
        self._changed = set()
        if not addrs:
            return self._maybe_emit(now, [])
        plan = self.plan
        raw: dict[NodeId, RawObservation] = {}
        by_id: dict[NodeId, Addr] = {}
        for addr in addrs:
            m = node.members.get_member(addr)
            if m is None or addr == plan.self_addr:
                continue  # forgotten (tombstone expired): the view keeps its last state
            node_id = plan.addr_to_id.get(addr)
            if node_id is None:
                if len(self.status.unknown_addresses) < 10_000:
                    self.status.unknown_addresses.add(f"{addr[0]}:{addr[1]}")
                continue
            announced_id = m.metadata.get("id") if isinstance(m.metadata, dict) else None
            if announced_id is None:
                continue  # a seed entry the node itself has not confirmed yet
            if announced_id != node_id:
                self.status.mismatched_ids.add(f"{addr[0]}:{addr[1]} says {announced_id!r}, config {node_id!r}")
                continue
            if m.state is RawState.SUSPECT:
                self.suspects.add(addr)
            else:
                self.suspects.discard(addr)
            raw[node_id] = RawObservation(_RAW_NAMES.get(m.state, RAW_DEAD), bool(m.metadata.get("left")))
            by_id[node_id] = addr
        transitions = self.view.observe(now, raw)
        self._pending = {by_id[n] for n, obs in raw.items() if obs.state != RAW_ALIVE and not self.view.settled(n)}
        events = [MembershipEvent(kind=t.kind, node_id=t.node_id, source="swim", after_s=t.after_s)
                  for t in transitions]
        for event in events:
            self._log.info(f"member_{event.kind.value}", node_id=event.node_id, after_s=event.after_s,
                           source="swim")
        if transitions:
            self._dirty = True
        self._maybe_emit(now, events)

    def _maybe_emit(self, now: float, events: list[MembershipEvent]) -> None:
        if events or self._dirty or now - self._last_publish >= _REFRESH_S:
            self.emit(events)

    def emit(self, events: Optional[list[MembershipEvent]] = None) -> None:
        now = time.monotonic()
        refresh = now - self._last_refresh >= _LAST_SEEN_REFRESH_S
        if refresh:
            self._last_refresh = now
        self._dirty = False
        self._last_publish = now
        states = self.view.states()
        cache = self._cache
        for node_id in [n for n in cache if n not in states]:
            del cache[node_id]
        for node_id, key in states.items():
            if refresh or self._keys.get(node_id) != key:  # only what changed, or all for last_seen
                cache[node_id] = self._member(node_id, key[0])
                self._keys[node_id] = key
        self._publish(dict(cache), list(events or ()), self._counters())

    def _member(self, node_id: NodeId, state: MemberState) -> Member:
        plan = self.plan
        host = plan.hosts[node_id]
        addr = plan.id_to_addr.get(node_id, (host.address, host.swim_port))
        raw = self.node.members.get_member(addr) if self.node is not None else None
        heard = self.stats.last_heard.get(addr, 0.0)
        incarnation = 0
        if raw is not None:
            incarnation = raw.incarnation
            if raw.last_heartbeat:
                heard = max(heard, time.monotonic() - max(0.0, time.time() - raw.last_heartbeat))
        return Member(
            node_id=node_id,
            state=state,
            host=host.address,
            api_port=host.api_port,
            role=host.role,
            raft_address=f"{host.address}:{host.raft_port}",
            capabilities=tuple(host.capabilities),
            has_gpu=bool(host.gpu),
            gpu_name=host.gpu,
            last_seen=heard,
            source="swim",
            meta={"swim_address": f"{addr[0]}:{addr[1]}", "incarnation": incarnation,
                  "gpu_vram_gb": host.gpu_vram_gb},
        )
