"""swim-p2p driven on its own event loop: supervision, refutation, leave, and the raw view.

Everything in this module runs on the SWIM thread's loop (see ``swim.py`` for the thread and the
crossing back to the node's loop). What we add to the library, each for a measured reason:

* **Incarnations from the clock.** A node announces itself with incarnation = wall-clock ms
  (never lower than its previous one), so a restarted process outranks everything the cluster
  still believes about its previous life, at once.
* **Refutation.** swim-p2p never refutes: gossip that marks a node SUSPECT/DEAD with a higher
  incarnation just overwrites the node's own entry, which it then gossips itself. We watch our own
  entry and, if it is not ALIVE (or lost our metadata), set it ALIVE with a higher incarnation
  and announce it. A node SIGSTOPped past its suspicion timeout came back only after 142 s with
  the library alone (it re-probes DEAD members every 30 s to 5 min).
* **Announce.** On start, after a detected pause (a tick much later than due) and after a
  refutation, we send our full digest to every configured seed and known member at once.
* **Leave.** The library has no leave message. A graceful stop marks our own entry DEAD with a
  higher incarnation and the metadata ``left: true``, and announces it to everyone before the
  engine stops; peers see DEAD + left and report ``left``.
* **Supervision.** If a library task dies or the protocol loop stops advancing, the node is torn
  down and recreated (same socket) with bounded exponential backoff.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

from swim.protocol.member import MemberState as RawState
from swim.protocol.node import Node
from swim.utils.serialization import serialize_message

from ..config import HostConfig, SwimSettings
from ..model import Member, MemberState, MembershipEvent, NodeId
# Re-exported: swim.py reaches the engine only through this module (imported lazily).
from .swim_support import LibraryLogBridge, install_library_log_bridge, library_config  # noqa: F401
from .swim_transport import TransportStats, bind_exclusive, make_transport, port_in_use  # noqa: F401
from .swim_view import RAW_ALIVE, RAW_DEAD, RAW_SUSPECT, RawObservation, SwimView

Addr = tuple[str, int]
_RAW_NAMES = {RawState.ALIVE: RAW_ALIVE, RawState.SUSPECT: RAW_SUSPECT, RawState.DEAD: RAW_DEAD}
_TICK_S = 0.1
_BACKOFF_MIN_S = 0.5
_BACKOFF_MAX_S = 30.0
_HEALTHY_RESET_S = 60.0
_ANNOUNCE_MIN_GAP_S = 0.5


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
    unknown_addresses: set[str] = field(default_factory=set)
    mismatched_ids: set[str] = field(default_factory=set)
    protocol_cycles: int = 0


Publish = Callable[[Mapping[NodeId, Member], list[MembershipEvent], dict[str, Any]], None]


class SwimEngine:
    def __init__(self, plan: EnginePlan, sock: Any, stats: TransportStats, publish: Publish,
                 log: Any) -> None:
        self.plan = plan
        self._sock = sock
        self.stats = stats
        self._publish = publish
        self._log = log
        s = plan.settings
        self.view = SwimView(s.suspect_report_after_s, s.failed_confirm_s)
        self.status = EngineStatus()
        self.node: Optional[Node] = None
        self._supervisor: Optional[asyncio.Task[None]] = None
        self._stopping = False
        self._incarnation = 0
        self._last_announce = 0.0
        self._last_snapshot_key: Any = None
        self._last_publish = 0.0
        self._meta = {"id": plan.node_id}
        self._pending_announce = False
        self._incarnations: dict[NodeId, int] = {}
        self._heard: dict[NodeId, float] = {}
        self._host_str = f"{plan.self_addr[0]}:{plan.self_addr[1]}"
        # A protocol cycle can take: heartbeat + an indirect probe per suspect + a direct ping.
        self._stall_s = max(30.0, 20 * (s.protocol_period_s + (s.ping_retries + 2) * s.ping_timeout_s))

    # -- lifecycle (called on the SWIM loop) -------------------------------------------------------

    async def start(self) -> None:
        """Create and start the library node; errors propagate (the first start must work)."""
        await self._create()
        self._supervisor = asyncio.create_task(self._supervise(), name="swim-supervisor")

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
        self._emit(force=True)

    # -- the library node --------------------------------------------------------------------------

    async def _create(self) -> None:
        plan, s = self.plan, self.plan.settings
        transport = make_transport(plan.transport, self._sock, self.stats, max(s.ping_timeout_s, 1.0))
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
        self._hook_member_list(node)
        if s.lifeguard and node.timing_service is not None:
            node.timing_service.set_base_timing(s.protocol_period_s, s.ping_timeout_s, s.suspicion_timeout_s)
        self.node = node
        try:
            await node.start()
        except BaseException:
            await self._teardown()
            raise
        self.status.running = True
        self.status.incarnation = self._incarnation
        await self._announce()
        self._emit(force=True)

    def _hook_member_list(self, node: Node) -> None:
        """Two hooks on the node's member list (instance attributes, the library is untouched):

        * ``mark_dead``: know when *this* node's detector declares a member DEAD (not when gossip
          says so). The originator announces the death to everyone at once instead of letting it
          spread at gossip fan-out while every cycle is slowed by probes of the dead member.
        * ``mark_suspect``: swim-p2p demotes a DEAD member to SUSPECT with a *higher* incarnation
          when a ping to it fails (a probe in flight when the death arrived, or one of its
          periodic probes of dead members). That SUSPECT then overrides the DEAD everywhere and
          restarts every suspicion timer: measured, one survivor in three reported a death 3 s
          late. A failed ping never revives a DEAD member here.
        """
        members = node.members
        original_dead, original_suspect = members.mark_dead, members.mark_suspect
        self_addr = self.plan.self_addr

        async def mark_dead(addr: Addr, *args: Any, **kwargs: Any) -> bool:
            changed = await original_dead(addr, *args, **kwargs)
            if changed and addr != self_addr:
                self._pending_announce = True
                self.status.deaths_originated += 1
            return bool(changed)

        async def mark_suspect(addr: Addr, incarnation: Optional[int] = None, *args: Any, **kwargs: Any) -> bool:
            member = members.get_member(addr)
            if member is not None and member.is_dead and incarnation is None and addr != self_addr:
                return False
            return bool(await original_suspect(addr, incarnation, *args, **kwargs))

        members.mark_dead = mark_dead  # type: ignore[method-assign]
        members.mark_suspect = mark_suspect  # type: ignore[method-assign]

    async def _teardown(self) -> None:
        node, self.node = self.node, None
        if node is None:
            return
        try:
            await asyncio.wait_for(node.stop(), 5.0)
        except BaseException as e:  # includes a timeout: the transport is closed below regardless
            if isinstance(e, asyncio.CancelledError):
                raise
            self._log.warning("swim_engine_stop_failed", error=repr(e))
        try:
            await node.transport.close()
        except Exception:
            pass

    async def _supervise(self) -> None:
        backoff = _BACKOFF_MIN_S
        while not self._stopping:
            started = time.monotonic()
            try:
                reason = await self._watch()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                reason = f"watcher failed: {e!r}"
            if self._stopping:
                return
            self.status.restarts += 1
            self.status.last_error = reason
            self.status.running = False
            self._log.warning("swim_engine_restart", reason=reason, restarts=self.status.restarts,
                              backoff_s=backoff)
            self._emit(force=True)
            await self._teardown()
            if time.monotonic() - started > _HEALTHY_RESET_S:
                backoff = _BACKOFF_MIN_S
            while not self._stopping:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX_S)
                try:
                    await self._create()
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    self.status.restarts += 1
                    self.status.last_error = f"restart failed: {e!r}"
                    self._log.warning("swim_engine_restart_failed", error=repr(e), backoff_s=backoff)
                    self._emit(force=True)

    def _library_tasks(self, node: Node) -> list[asyncio.Task[Any]]:
        """The long-lived tasks of a started node: protocol loop, sync loop, our receiver."""
        tasks = [t for t in node.tasks if "_protocol_loop" in getattr(t.get_coro(), "__qualname__", "")]
        sync = getattr(node.sync_service, "_sync_task", None)
        if sync is not None:
            tasks.append(sync)
        receiver = getattr(node.transport, "receiver_task", None)
        if receiver is not None:
            tasks.append(receiver)
        return tasks

    @staticmethod
    def _dead_task(tasks: list[asyncio.Task[Any]]) -> Optional[str]:
        for task in tasks:
            if task.done():
                name = getattr(task.get_coro(), "__qualname__", task.get_name())
                error = None if task.cancelled() else task.exception()
                if error is None:
                    return f"library task {name} ended (cancelled or returned)"
                return f"library task {name} died: {error!r}"
        return None

    async def _watch(self) -> str:
        """Runs until the library node fails; returns why."""
        s = self.plan.settings
        pause_s = max(0.5, s.ping_timeout_s)
        last_tick = time.monotonic()
        last_cycles, cycles_since = -1, last_tick
        tasks: list[asyncio.Task[Any]] = []
        while True:
            await asyncio.sleep(_TICK_S)
            node = self.node
            if node is None:
                return "engine node missing"
            now = time.monotonic()
            if now - last_tick > pause_s:
                # We were not scheduled for a while (SIGSTOP, a stalled host): peers may have
                # suspected us. Outrank whatever they decided and tell everyone at once.
                self.status.pauses_detected += 1
                self._log.warning("swim_pause_detected", paused_s=round(now - last_tick - _TICK_S, 3))
                self._refute(node, reason="pause")
            last_tick = now
            if len(tasks) < 3:  # the sync task appears once the sync service has run
                tasks = self._library_tasks(node)
                if not any("_protocol_loop" in getattr(t.get_coro(), "__qualname__", "") for t in tasks):
                    return "library protocol task missing"
            problem = self._dead_task(tasks)
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
            self._observe(node, now)
            if self._pending_announce and time.monotonic() - self._last_announce >= _ANNOUNCE_MIN_GAP_S:
                await self._announce()

    def _refute(self, node: Node, reason: str) -> None:
        me = node.members.get_member(self.plan.self_addr)
        if me is None:
            return
        self._incarnation = max(self._incarnation + 1, me.incarnation + 1, _now_ms())
        me.state = RawState.ALIVE
        me.incarnation = self._incarnation
        me.metadata = dict(self._meta)
        me.last_state_change = time.time()
        me.last_heartbeat = time.time()
        _record_delta(node, self.plan.self_addr)
        self.status.incarnation = self._incarnation
        if reason != "pause":
            self.status.self_refutations += 1
        self._pending_announce = True

    async def _announce(self) -> None:
        """Send our full digest to every seed and known member now (not only gossip fan-out)."""
        node = self.node
        if node is None:
            return
        self._pending_announce = False
        self._last_announce = time.monotonic()
        self.status.announces += 1
        digest = node.members.serialize_digest(full=True)
        data = serialize_message({
            "type": "HEARTBEAT",
            "from": self._host_str,
            "digest": digest,
            "id": uuid.uuid4().hex[:8],
            "timestamp": time.time(),
        })
        targets = set(self.plan.seeds)
        targets.update(m.addr for m in node.members.get_all_members(exclude_self=True))
        await asyncio.gather(*(node.transport.send(data, t) for t in targets), return_exceptions=True)

    async def _leave(self, node: Node) -> None:
        me = node.members.get_member(self.plan.self_addr)
        if me is None:
            return
        self._incarnation = max(self._incarnation + 1, me.incarnation + 1, _now_ms())
        me.incarnation = self._incarnation
        me.state = RawState.DEAD
        me.metadata = {**self._meta, "left": True}
        me.last_state_change = time.time()
        _record_delta(node, self.plan.self_addr)
        for _ in range(2):  # datagrams may drop: say it twice
            await self._announce()
            await asyncio.sleep(0.05)

    # -- the view ---------------------------------------------------------------------------------

    def _observe(self, node: Node, now: float) -> None:
        plan = self.plan
        raw: dict[NodeId, RawObservation] = {}
        incarnations: dict[NodeId, int] = {}
        heard: dict[NodeId, float] = {}
        wall = time.time()
        for m in node.members.get_all_members(exclude_self=True):
            node_id = plan.addr_to_id.get(m.addr)
            if node_id is None or node_id == plan.node_id:
                self.status.unknown_addresses.add(f"{m.addr[0]}:{m.addr[1]}")
                continue
            announced_id = m.metadata.get("id") if isinstance(m.metadata, dict) else None
            if announced_id is None:
                continue  # a seed entry the node itself has not confirmed yet
            if announced_id != node_id:
                self.status.mismatched_ids.add(f"{m.addr[0]}:{m.addr[1]} says {announced_id!r}, config {node_id!r}")
                continue
            raw[node_id] = RawObservation(_RAW_NAMES.get(m.state, RAW_DEAD), bool(m.metadata.get("left")))
            incarnations[node_id] = m.incarnation
            direct = self.stats.last_heard.get(m.addr, 0.0)
            gossip = now - max(0.0, wall - m.last_heartbeat) if m.last_heartbeat else 0.0
            heard[node_id] = max(direct, gossip)
        transitions = self.view.observe(now, raw)
        self._incarnations = incarnations
        self._heard = heard
        events = [MembershipEvent(kind=t.kind, node_id=t.node_id, source="swim", after_s=t.after_s)
                  for t in transitions]
        for event in events:
            self._log.info(f"member_{event.kind.value}", node_id=event.node_id, after_s=event.after_s,
                           source="swim")
        self._emit(events=events)

    def _emit(self, events: Optional[list[MembershipEvent]] = None, force: bool = False) -> None:
        states = self.view.states()
        key = tuple(sorted((n, st.value) for n, (st, _) in states.items()))
        now = time.monotonic()
        if not events and not force and key == self._last_snapshot_key and now - self._last_publish < 1.0:
            return
        self._last_snapshot_key, self._last_publish = key, now
        snapshot = {n: self._member(n, st) for n, (st, _) in states.items()}
        self._publish(snapshot, list(events or ()), self.describe_counters())

    def _member(self, node_id: NodeId, state: MemberState) -> Member:
        host = self.plan.hosts[node_id]
        addr = self.plan.id_to_addr.get(node_id, (host.address, host.swim_port))
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
            last_seen=self._heard.get(node_id, 0.0),
            source="swim",
            meta={
                "swim_address": f"{addr[0]}:{addr[1]}",
                "incarnation": self._incarnations.get(node_id, 0),
                "gpu_vram_gb": host.gpu_vram_gb,
            },
        )

    def describe_counters(self) -> dict[str, Any]:
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
            "protocol_cycles": st.protocol_cycles,
            "unknown_addresses": sorted(st.unknown_addresses),
            "mismatched_ids": sorted(st.mismatched_ids),
            **self.stats.snapshot(),
        }


def _record_delta(node: Node, addr: Addr) -> None:
    record = getattr(node.members, "_record_delta", None)
    if record is not None:
        record(addr)


def _now_ms() -> int:
    return int(time.time() * 1000)
