"""swim-p2p driven on its own event loop: supervision, refutation, leave, and the raw view.

Everything in this module runs on the SWIM thread's loop (see ``bridge.py`` for the thread and the
crossing back to the node's loop). What we add to the library, each for a measured reason:

* **Incarnations from the clock.** A node announces itself with incarnation = wall-clock ms
  (never lower than its previous one), so a restarted process outranks everything the cluster
  still believes about its previous life, at once.
* **Refutation.** swim-p2p never refutes: gossip that marks a node SUSPECT/DEAD with a higher
  incarnation just overwrites the node's own entry, which it then gossips itself. We watch our own
  entry and, if it is not ALIVE (or lost our metadata), set it ALIVE with a higher incarnation
  and announce it. A node SIGSTOPped past its suspicion timeout came back only after 142 s with
  the library alone (it re-probes DEAD members every 30 s to 5 min).
* **Announce.** On start, after a long pause (a tick later than a probe of us could wait),
  after a refutation and after a death this node declared, we send *the changed entries* (our
  own, the dead member's) to the configured seeds and known members at once (at most 48 of them
  with bounded gossip): one small datagram each.
* **Leave.** The library has no leave message. A graceful stop marks our own entry DEAD with a
  higher incarnation and the metadata ``left: true``, and announces it to everyone before the
  engine stops; peers see DEAD + left and report ``left``.
* **Bounded gossip** (``gossip``): heartbeats carry our entry plus the freshest changes that
  fit the packet budget; a push-pull full sync (the library's SYNC-REQ plus our whole list, over
  TCP when big) with one random member on start and then every ``push_pull_interval`` (grows
  with N).
* **Suspicion timeouts on the engine's clock**: the library's rule, checked every 0.1 s tick
  rather than once per protocol cycle (``hooks.expire_suspects``).
* **Indirect probes by the suspecter only.** swim-p2p has *every* node that knows a SUSPECT
  indirect-probe it every cycle, sequentially, each waiting up to two ping timeouts: N x k pings
  per period at the suspect, and every cycle (hence every suspicion timeout check) late. Here only
  the node whose own ping failed asks k helpers, once, off the protocol loop, and tells the
  suspect itself (Lifeguard's buddy); others wait for the timeout or a refutation, as in SWIM.
* **Telling the dead.** A member held DEAD that is still heard from is sent its own entry, so
  that it refutes (``hooks.tell_the_dead``); otherwise the side of a healed partition stayed
  failed in the other side's views until a full sync happened to reach it.
* **Reaching the dead.** Every 2 s (jittered) our own entry goes to one member held DEAD (not
  left): the two sides of a healed partition hold each other DEAD and otherwise waited for the
  library's resurrection probe, 30 s to 5 min apart (``hooks.reach_the_dead``).
* **Tombstones.** A member DEAD for ``tombstone_s`` is removed from the library's list (the
  library never removes anyone), so the list does not grow with address churn.
* **Supervision** (``supervise.py``). If a library task dies or the protocol loop stops advancing, the node is torn
  down and recreated (same socket) with bounded exponential backoff.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

from ...config import HostConfig, SwimSettings
from ...model import Member, MembershipEvent, NodeId
from ...timeouts import within
from . import gossip, hooks
from .bridge import Node, RawState, serialize_message
# Re-exported: membership.py reaches the engine only through this module (imported lazily).
from .library import LibraryLogBridge, install_library_log_bridge, library_config  # noqa: F401
from .sockets import bind_exclusive, port_in_use  # noqa: F401
from .transport import TransportStats, make_transport  # noqa: F401
from .publish import Publisher
from .supervise import dead_task, library_tasks, supervise
from .view import SwimView

Addr = tuple[str, int]
_TICK_S = 0.1
_ANNOUNCE_MIN_GAP_S = 0.5
_UDP_MAX = 65507
_ANNOUNCE_MAX = 48  # announce targets at most (bounded gossip): the rest learn by gossip
_TOMBSTONE_SCAN_S = 5.0


@dataclass(frozen=True)
class EnginePlan:
    """Everything the engine needs, resolved on the caller's side before the thread starts."""

    node_id: NodeId
    self_addr: Addr
    transport: str
    settings: SwimSettings
    seeds: tuple[Addr, ...]
    addr_to_id: Mapping[Addr, NodeId]
    hosts: Mapping[NodeId, HostConfig]
    id_to_addr: Mapping[NodeId, Addr]


@dataclass
class EngineStatus:
    running: bool = False
    restarts: int = 0
    last_error: Optional[str] = None
    incarnation: int = 0
    self_refutations: int = 0
    pauses_detected: int = 0
    announces: int = 0
    deaths_originated: int = 0
    dead_told: int = 0  # members held dead but still heard from, told so (they refute)
    dead_reached: int = 0  # our entry sent to a member held dead (a healed partition comes back)
    unknown_addresses: set[str] = field(default_factory=set)
    mismatched_ids: set[str] = field(default_factory=set)
    protocol_cycles: int = 0
    syncs: int = 0
    indirect_probes: int = 0
    forgotten: int = 0
    members: int = 0


Publish = Callable[[Mapping[NodeId, Member], list[MembershipEvent], dict[str, Any]], None]


class SwimEngine:
    def __init__(self, plan: EnginePlan, sock: Any, stats: TransportStats, publish: Publish,
                 log: Any, stream_sock: Any = None) -> None:
        self.plan = plan
        self._sock = sock
        self._stream_sock = stream_sock
        self.stats = stats
        self._log = log
        s = plan.settings
        self.view = SwimView(s.suspect_report_after_s, s.failed_confirm_s)
        self.status = EngineStatus()
        self.publisher = Publisher(plan, self.view, stats, self.status, log, publish, self.describe_counters)
        self.piggyback = gossip.Piggyback(plan.self_addr, s.packet_budget_bytes, s.retransmit_mult)
        self.node: Optional[Node] = None
        self._supervisor: Optional[asyncio.Task[None]] = None
        self._stopping = False
        self._incarnation = 0
        self._last_announce = 0.0
        self._meta = {"id": plan.node_id}
        self._pending_announce = False
        self._announce_addrs: set[Addr] = set()  # changed entries the next announce carries
        self._suspected_here: set[Addr] = set()  # members whose suspicion this node originated
        self._probes: dict[Addr, asyncio.Task[Any]] = {}  # indirect probes in flight
        self._told_dead: dict[Addr, float] = {}  # members told they are dead here, and when
        self._next_reach_dead = 0.0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._next_sync = 0.0
        self._synced = False  # a full sync answered since the node (re)started
        self._sync_answers = 0
        self._next_tombstone_scan = 0.0
        self._host_str = f"{plan.self_addr[0]}:{plan.self_addr[1]}"
        # A protocol cycle can take: heartbeat + an indirect probe per suspect + a direct ping.
        self._stall_s = max(30.0, 20 * (s.protocol_period_s + (s.ping_retries + 2) * s.ping_timeout_s))

    # -- lifecycle (called on the SWIM loop) -------------------------------------------------------

    async def start(self) -> None:
        """Create and start the library node; errors propagate (the first start must work)."""
        await self._create()
        self._supervisor = asyncio.create_task(supervise(self), name="swim-supervisor")

    async def shutdown(self, graceful: bool) -> None:
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        node = self.node
        if node is not None and graceful:
            try:
                await self._leave(node)
            except Exception as e:  # never let the library break a stop
                self._log.warning("swim_leave_failed", error=repr(e))
        await self._teardown()
        self.status.running = False
        self.publisher.emit()

    # -- the library node --------------------------------------------------------------------------

    async def _create(self) -> None:
        plan, s = self.plan, self.plan.settings
        transport = make_transport(plan.transport, self._sock, self.stats, max(s.ping_timeout_s, 1.0),
                                   stream_sock=self._stream_sock, log=self._log,
                                   # swim-p2p's own gossip (for comparison): its datagrams as they were
                                   budget=s.packet_budget_bytes if s.bounded_gossip else _UDP_MAX,
                                   compress=s.bounded_gossip)
        try:
            node = await Node.create(
                bind_addr=plan.self_addr,
                transport=transport,
                seed_addrs=list(plan.seeds),
                config=library_config(s),
                validate_ports=False,
            )
        except BaseException:
            await transport.close()
            raise
        me = node.members.get_member(plan.self_addr)
        self._incarnation = max(self._incarnation + 1, _now_ms())
        me.incarnation = self._incarnation
        me.metadata = dict(self._meta)
        hooks.hook_member_list(self, node)
        gossip.install(node, self.piggyback, self.publisher.changed, s.gossip_fanout, s.bounded_gossip)
        hooks.gate_indirect_probes(self, node)
        if s.lifeguard and node.timing_service is not None:
            node.timing_service.set_base_timing(s.protocol_period_s, s.ping_timeout_s, s.suspicion_timeout_s)
        self.node = node
        self.publisher.everything_changed(node)
        try:
            await node.start()
        except BaseException:
            await self._teardown()
            raise
        self.status.running = True
        self.status.incarnation = self._incarnation
        self._announce_addrs.add(plan.self_addr)
        await self._announce()
        self._next_sync, self._synced = 0.0, False  # a full pull from one peer: a joiner learns everyone
        self.publisher.emit()

    async def _teardown(self) -> None:
        node, self.node = self.node, None
        for task in [*self._probes.values(), *self._tasks]:
            task.cancel()
        self._probes.clear()
        if node is None:
            return
        try:
            await within(node.stop(), 5.0)
        except BaseException as e:  # includes a timeout: the transport is closed below regardless
            if isinstance(e, asyncio.CancelledError):
                raise
            self._log.warning("swim_engine_stop_failed", error=repr(e))
        try:
            await node.transport.close()
        except Exception:
            pass

    async def _watch(self) -> str:
        """Runs until the library node fails; returns why."""
        s = self.plan.settings
        pause_s = max(0.5, s.ping_timeout_s)
        refute_after_s = max(pause_s, s.ping_retries * s.ping_timeout_s + s.protocol_period_s)
        last_tick = time.monotonic()
        last_cycles, cycles_since = -1, last_tick
        tasks: list[asyncio.Task[Any]] = []
        # The sync service's task appears once it has run; without one, two tasks are all.
        expected = 3 if self.node is not None and self.node.sync_service is not None else 2
        while True:
            await asyncio.sleep(_TICK_S)
            node = self.node
            if node is None:
                return "engine node missing"
            now = time.monotonic()
            if now - last_tick > pause_s:
                self.status.pauses_detected += 1
                paused = now - last_tick - _TICK_S
                if paused > refute_after_s:
                    # Not scheduled long enough for a probe of us to fail (SIGSTOP, a stalled
                    # host): peers may have suspected us. Outrank whatever they decided and tell
                    # everyone at once. Shorter stalls (common on a loaded host) do not announce:
                    # at 200 nodes they were most of the traffic; a suspicion they cause reaches
                    # us directly (the suspecter tells the suspect) and is refuted then.
                    self._log.warning("swim_pause_detected", paused_s=round(paused, 3))
                    self._refute(node, reason="pause")
            last_tick = now
            if len(tasks) < expected:
                tasks = library_tasks(node)
                if not any("_protocol_loop" in getattr(t.get_coro(), "__qualname__", "") for t in tasks):
                    return "library protocol task missing"
            problem = dead_task(tasks)
            if problem:
                return problem
            cycles = node._protocol_cycles
            if cycles != last_cycles:
                last_cycles, cycles_since = cycles, now
            elif now - cycles_since > self._stall_s:
                return f"protocol loop stalled for {now - cycles_since:.1f}s"
            self.status.protocol_cycles = cycles
            me = node.members.get_member(self.plan.self_addr)
            if me is not None and (me.state != RawState.ALIVE or me.metadata.get("id") != self.plan.node_id
                                   or me.metadata.get("left")):
                self._refute(node, reason=me.state.name.lower())
            elif me is not None and me.incarnation > self._incarnation:
                self._incarnation = me.incarnation  # a peer's mark_alive bumped us: keep up
            self._suspected_here.intersection_update(a for a in self._suspected_here
                                                     if (m := node.members.get_member(a)) is not None and m.is_suspect)
            self.stats.piggyback_depth = len(self.piggyback)
            self.stats.piggyback_entries = self.piggyback.selected
            self.status.members = node.members.size
            self.publisher.observe(now)
            await hooks.expire_suspects(self, node)
            hooks.tell_the_dead(self, node, now)
            hooks.reach_the_dead(self, node, now)
            if self._pending_announce and time.monotonic() - self._last_announce >= _ANNOUNCE_MIN_GAP_S:
                await self._announce()
            if s.bounded_gossip and now >= self._next_sync:
                await hooks.anti_entropy(self, node, now)
            if now >= self._next_tombstone_scan:
                self._next_tombstone_scan = now + _TOMBSTONE_SCAN_S
                self._forget_dead(node)

    def _forget_dead(self, node: Node) -> None:
        s = self.plan.settings
        removed = node.members.cleanup_dead_members(max_age=s.tombstone_s)
        if removed:
            self.status.forgotten += removed

    def _restamp(self, node: Node, state: Any, metadata: dict[str, Any]) -> Any:
        """Our own entry in ``state`` under a new incarnation, above every one seen and at least
        the clock in ms (so a restarted node's is above its past life's), marked for the
        piggyback; None when the list holds no entry for us."""
        me = node.members.get_member(self.plan.self_addr)
        if me is None:
            return None
        self._incarnation = max(self._incarnation + 1, me.incarnation + 1, _now_ms())
        me.state = state
        me.incarnation = self._incarnation
        me.metadata = metadata
        me.last_state_change = time.time()
        _record_delta(node, self.plan.self_addr)
        return me

    def _refute(self, node: Node, reason: str) -> None:
        me = self._restamp(node, RawState.ALIVE, dict(self._meta))
        if me is None:
            return
        me.last_heartbeat = time.time()
        self.status.incarnation = self._incarnation
        if reason != "pause":
            self.status.self_refutations += 1
        self._announce_addrs.add(self.plan.self_addr)
        self._pending_announce = True

    async def _announce(self) -> None:
        """Send the changed entries (ours, deaths we declared) to every seed and known member now,
        instead of waiting for them to spread at gossip fan-out. Without bounded gossip, the
        whole list as before."""
        node = self.node
        if node is None:
            return
        self._pending_announce = False
        self._last_announce = time.monotonic()
        self.status.announces += 1
        addrs, self._announce_addrs = self._announce_addrs | {self.plan.self_addr}, set()
        targets = set(self.plan.seeds)
        targets.update(m.addr for m in node.members.get_all_members(exclude_self=True) if not m.is_dead)
        targets.discard(self.plan.self_addr)
        if len(targets) > _ANNOUNCE_MAX and self.plan.settings.bounded_gossip:
            # One hop to everyone is N datagrams per event from every node that declares it: at
            # 200 nodes and a burst of suspicions that was most of the load. A random subset
            # starts the epidemic several rounds ahead; piggyback gossip carries it the rest.
            targets = set(random.sample(sorted(targets), _ANNOUNCE_MAX))
        await self._send_digest(None if not self.plan.settings.bounded_gossip else sorted(addrs), targets)

    async def _send_digest(self, addrs: Optional[list[Addr]], targets: Any) -> None:
        """A HEARTBEAT carrying the entries of ``addrs`` (None: the whole list) to ``targets``."""
        node = self.node
        if node is None:
            return
        if addrs is None:
            digest = node.members.serialize_digest(full=True)
        else:
            digest = gossip.digest_of(node.members, addrs)
        data = serialize_message({
            "type": "HEARTBEAT",
            "from": self._host_str,
            "digest": digest,
            "id": uuid.uuid4().hex[:8],
            "timestamp": time.time(),
        })
        for target in targets:  # one at a time: a task per datagram cost more than the send
            await node.transport.send(data, target)

    def _own_task(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _leave(self, node: Node) -> None:
        if self._restamp(node, RawState.DEAD, {**self._meta, "left": True}) is None:
            return
        for _ in range(2):  # datagrams may drop: say it twice
            await self._announce()
            await asyncio.sleep(0.05)

    def describe_counters(self) -> dict[str, Any]:
        return hooks.counters(self)


def _record_delta(node: Node, addr: Addr) -> None:
    record = getattr(node.members, "_record_delta", None)
    if record is not None:
        record(addr)


def _now_ms() -> int:
    return int(time.time() * 1000)
