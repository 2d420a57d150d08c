"""The bridge from membership events to discovery backends.

joined -> registered; failed / left -> removed; suspect -> marked unhealthy but kept, once the
suspicion has lasted ``damping_s`` (one refuted sooner never reaches discovery); alive again ->
marked healthy. The logic (``handle``, ``tick``, ``reconcile``) is synchronous and takes a clock,
so it is tested without a loop; ``consume`` and ``flush_loop`` run it on the node's loop. Writes
are batched (``batch_s``) and run in a thread: the loop never waits on a disk.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Callable, Sequence

import structlog

from ..events import Subscription
from ..model import EventKind, Member, MembershipEvent, MemberState, NodeId
from ..timeouts import within
from .base import DiscoveryBackend, DiscoveryError, Target

if TYPE_CHECKING:
    from ..config import ClusterConfig
    from ..membership.base import Membership
    from .metrics import DiscoveryMetrics

_log = structlog.get_logger("ringrift.discovery")


class DiscoveryBridge:
    """Keeps every backend equal to ``view``: this node plus the members membership calls alive."""

    def __init__(self, config: "ClusterConfig", membership: "Membership", backends: Sequence[DiscoveryBackend],
                 *, metrics: "DiscoveryMetrics | None" = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.settings = config.discovery
        self.membership = membership
        self.backends = list(backends)
        self.metrics = metrics
        self.clock = clock
        self.view: dict[NodeId, Target] = {}
        self.pending: dict[NodeId, float] = {}  # suspects still inside the damping window: deadline
        self.damped = 0  # suspicions refuted inside the window (never reached discovery)
        self.refused = 0  # members that could not be made a target (no address, bad label)
        self.write_failures = 0
        self.changed = asyncio.Event()
        self._flush_lock = asyncio.Lock()

    # -- Logic ---------------------------------------------------------------------------------

    def handle(self, event: MembershipEvent) -> None:
        """Apply one membership event to the view and the backends."""
        node_id = event.node_id
        if node_id == self.config.node_id:
            return  # this node is always listed while it runs
        kind = event.kind
        if kind is EventKind.JOINED or (kind is EventKind.ALIVE and node_id not in self.view and node_id not in self.pending):
            self.pending.pop(node_id, None)
            target = self.target_for(node_id, self.membership.members().get(node_id), event.source)
            if target is not None:
                self._register(target)
        elif kind is EventKind.SUSPECT:
            current = self.view.get(node_id)
            if node_id not in self.pending and (current is None or current.healthy):
                self.pending[node_id] = self.clock() + self.settings.damping_s
        elif kind is EventKind.ALIVE:
            if self.pending.pop(node_id, None) is not None:
                self.damped += 1
                if self.metrics is not None:
                    self.metrics.flaps_damped.inc()
            else:
                self._health(node_id, True)
        elif kind in (EventKind.FAILED, EventKind.LEFT):
            self.pending.pop(node_id, None)
            self._remove(node_id)

    def tick(self) -> None:
        """Mark unhealthy the suspects whose damping window has passed."""
        now = self.clock()
        for node_id, deadline in sorted(self.pending.items()):
            if deadline > now:
                continue
            del self.pending[node_id]
            if node_id in self.view:
                self._health(node_id, False)
                continue
            target = self.target_for(node_id, self.membership.members().get(node_id), "")
            if target is not None:
                self._register(target.with_health(False))

    def next_deadline(self) -> float | None:
        return min(self.pending.values()) if self.pending else None

    def desired(self) -> dict[NodeId, Target]:
        """What discovery should hold, from membership's snapshot (damping respected)."""
        out: dict[NodeId, Target] = {}
        me = self.target_for(self.config.node_id, None, self.membership.name)
        if me is not None:
            out[me.node_id] = me
        for node_id, member in self.membership.members().items():
            if not member.is_alive or node_id == self.config.node_id:
                continue
            target = self.target_for(node_id, member, member.source)
            if target is not None:
                healthy = member.state is MemberState.ALIVE or node_id in self.pending
                out[node_id] = target.with_health(healthy)
        return out

    def reconcile(self) -> None:
        """Rewrite the view and every backend from membership."""
        self.view = self.desired()
        self.pending = {n: d for n, d in self.pending.items() if n in self.view}
        for backend in self.backends:
            backend.replace(self.view)
        self._changed()

    def target_for(self, node_id: NodeId, member: Member | None, source: str) -> Target | None:
        """The target of a member: the operator's address and role from the cluster file (the
        member's own when the file does not list it) and the scrape port (default: its API)."""
        host = self.config.hosts.get(node_id)
        scrape = 0 if self.settings.scrape_port == "api" else int(self.settings.scrape_port)
        if node_id == self.config.node_id:
            address, port = self.config.me.address, scrape or self.config.api.port
        else:
            address = host.address if host is not None else (member.host if member is not None else "")
            port = scrape or (host.api_port if host is not None else (member.api_port if member is not None else 0))
        gpu = host.gpu if host is not None and host.gpu else (member.gpu_name if member is not None else "")
        try:
            return Target(node_id=node_id, address=address, port=port, role=host.role if host is not None else "",
                          gpu=gpu, source=(member.source if member is not None and member.source else source))
        except DiscoveryError as e:
            self.refused += 1
            _log.warning("discovery_target_refused", node=node_id, reason=str(e))
            return None

    def _register(self, target: Target) -> None:
        if self.view.get(target.node_id) == target:
            return
        self.view[target.node_id] = target
        for backend in self.backends:
            backend.register(target)
        self._changed()

    def _remove(self, node_id: NodeId) -> None:
        if self.view.pop(node_id, None) is None:
            return
        for backend in self.backends:
            backend.remove(node_id)
        self._changed()

    def _health(self, node_id: NodeId, healthy: bool) -> None:
        target = self.view.get(node_id)
        if target is None or target.healthy == healthy:
            return
        self.view[node_id] = target.with_health(healthy)
        for backend in self.backends:
            if healthy:
                backend.mark_healthy(node_id)
            else:
                backend.mark_unhealthy(node_id)
        self._changed()

    def _changed(self) -> None:
        self.changed.set()
        if self.metrics is not None:
            self.metrics.count_targets(self.view.values())

    # -- Running on the loop -------------------------------------------------------------------

    async def consume(self, subscription: Subscription[MembershipEvent]) -> None:
        """Apply events as they come, and damped suspicions as their windows end."""
        while True:
            deadline = self.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - self.clock())
            try:
                event = await within(subscription.__anext__(), timeout)
            except asyncio.TimeoutError:
                event = None
            except StopAsyncIteration:
                return
            if event is not None:
                try:
                    self.handle(event)
                except DiscoveryError as e:  # one bad member never stops the bridge
                    _log.warning("discovery_event_refused", node=event.node_id, kind=event.kind.value, reason=str(e))
            self.tick()

    async def flush_loop(self) -> None:
        """Write once per batch window after changes; after a failed write, retry later."""
        while True:
            await self.changed.wait()
            await asyncio.sleep(self.settings.batch_s)  # let a burst of events become one write
            self.changed.clear()
            if not await self.flush():
                await asyncio.sleep(self.settings.retry_s)
                self.changed.set()

    async def flush(self) -> bool:
        """Persist every backend's changes; False (logged and counted) when one could not."""
        ok = True
        async with self._flush_lock:
            for backend in self.backends:
                try:
                    await backend.flush()
                except OSError as e:
                    ok = False
                    self.write_failures += 1
                    if self.metrics is not None:
                        self.metrics.write_failures.labels(backend=backend.name).inc()
                    _log.warning("discovery_write_failed", backend=backend.name, error=e.strerror or str(e),
                                 path=str(getattr(backend, "path", "")), retry_in_s=self.settings.retry_s)
        return ok

    def counts(self) -> dict[str, int]:
        healthy = sum(1 for t in self.view.values() if t.healthy)
        return {"healthy": healthy, "unhealthy": len(self.view) - healthy}
