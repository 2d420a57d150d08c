"""ClusterNode: the composition root. Builds the backends the config resolved, starts them in
order (API, membership, consensus), undoes a partial start, and stops them in reverse."""

from __future__ import annotations

import asyncio
import errno
import signal
import time
from typing import Any, Callable

import structlog
from aiohttp import web

from . import __version__
from .api.app import create_app
from .api.parts import Parts
from .config import ClusterConfig, ElectionBackend, MembershipBackend, StoreBackend
from .consensus.base import Election
from .consensus.bully import BullyElection
from .consensus.raft import RaftConsensus, RaftObserver
from .discovery import Discovery
from .errors import BackendUnavailable, ClusterError
from .heap import FREEZER
from .loop_watch import watch_loop
from .membership.base import Membership
from .membership.heartbeat import HeartbeatMembership
from .membership.hybrid import HybridMembership
from .membership.swim import SwimMembership
from .model import EventKind, Leadership
from .nodeinfo import NodeInfo, host_load
from .observability import NodeMetrics
from .peer_client import PeerClient
from .slow_stop import reported_if_slow
from .store import ClusterState, StateStore
from .store.duties import KeepConfiguredLimits, ReleaseFailedMembers
from .store.handoff import Handoff
from .store.journal import JournalStore
from .store.raft import RaftStore
from .store.recovery import recover_raft_state, stop_lingering
from .state import StateMachine

_LOAD_CACHE_S = 5.0


class ClusterNode:
    """One cluster member: membership + consensus + the HTTP API, composed from the config."""

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self.metrics = NodeMetrics()
        self.client = PeerClient(config.node_id, config.auth_token)
        self._log = structlog.get_logger("ringrift.node").bind(node_id=config.node_id)
        self.version = __version__
        self.raft: RaftConsensus | None = None
        self.membership: Membership = self._build_membership()
        self.handoff = Handoff(config, self.client, config.state_backend, self._peer_url)
        self.consensus: Election = _ELECTION[config.plan.election](self)
        self.store: StateStore | None = _STORE[config.plan.store](self)
        self.handoff.store = self.store
        self.swim: SwimMembership | None = _one(self._sources, SwimMembership)
        self.heartbeat: HeartbeatMembership | None = _one(self._sources, HeartbeatMembership)
        self.bully: BullyElection | None = _one([self.consensus], BullyElection)
        self.state = ClusterState(config, self.store, self.client, self.membership.members,
                                  leadership=self.store.leadership if self.store else self.consensus.leadership,
                                  observe=self.metrics.observe_command)
        self.discovery = Discovery(config, self.membership, self.metrics.registry)
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._started_at = time.monotonic()
        self._load: tuple[float, dict[str, float]] = (0.0, {})
        self._undo: list[Callable[[], Any]] = []

    # -- Composition: the plan's backends, built by the tables below --------------------------

    def _build_membership(self) -> Membership:
        """One backend, or several on one failure timeline (hybrid)."""
        self._sources = [_MEMBERSHIP[backend](self) for backend in self.config.plan.membership]
        return self._sources[0] if len(self._sources) == 1 else HybridMembership(self._sources)

    def _raft(self) -> RaftConsensus:
        """The one Raft engine, shared when it both leads and holds the state."""
        if self.raft is None:
            self.raft = RaftConsensus(self.config, StateMachine(), handoff=self.handoff)
        return self.raft

    @property
    def parts(self) -> Parts:
        """The roles the API is written against."""
        return Parts(node=self, config=self.config, membership=self.membership, election=self.consensus,
                     state=self.state, store=self.store, handoff=self.handoff, metrics=self.metrics,
                     discovery=self.discovery, swim=self.swim, raft=self.raft, bully=self.bully,
                     heartbeat=self.heartbeat)

    def _peer_url(self, node_id: str) -> str | None:
        host = self.config.hosts.get(node_id)
        return host.api_url if host is not None else None

    # -- Lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start everything; on any failure, stop what had started and raise."""
        try:
            self.config.data_dir.mkdir(parents=True, exist_ok=True)
            await self.client.start()
            self._undo.append(self.client.close)
            await self._start_api()
            # What this node holds from its last run or mode. Collected beside the engines'
            # start (a recovery may take seconds; the election must not wait for it): whatever
            # needs it (a reconcile, /state/candidate) waits until it is done.
            loading = asyncio.create_task(self.handoff.load(lambda: recover_raft_state(self.config))) \
                if self.store is not None else None
            self._undo.append(lambda: _cancel(loading))
            await self.membership.start()
            self._undo.append(lambda: self.membership.stop(graceful=False))
            await self.discovery.start()
            self._undo.append(self.discovery.stop)
            await self.consensus.start()
            self._undo.append(self.consensus.stop)
            if self.store is not None:
                await self.store.start()
                self._undo.append(self.store.stop)
            if loading is not None:
                await loading
            duties = ReleaseFailedMembers(self.config.node_id, self.state, self.membership,
                                          sweep_s=self.config.state.tick_interval_s * 4)
            self._tasks = [
                asyncio.create_task(self._follow_membership(), name="metrics-membership"),
                asyncio.create_task(self._follow_leadership(), name="metrics-leadership"),
                asyncio.create_task(duties.run(), name="release-failed-members"),
                *self._limits_duty(),
                asyncio.create_task(self._sample_state(), name="metrics-state"),
                asyncio.create_task(watch_loop(self.metrics.observe_loop), name="loop-watch"),
            ]
        except BaseException:
            await self._unwind()
            raise
        self._started_at = time.monotonic()
        FREEZER.baseline()
        self.refresh_metrics()
        self._log.info("node_started", api=f"http://{self.config.api.bind_host}:{self.config.api.port}",
                       membership=self.membership.name, consensus=self.consensus.name,
                       membership_mode=self.config.membership_mode.value,
                       consensus_mode=self.config.consensus_mode.value, preset=self.config.preset)

    async def stop(self, graceful: bool = True) -> None:
        """Stop in reverse order. Graceful: hand back the leader lease and announce leaving."""
        self._undo.clear()
        async with reported_if_slow(self._log):
            if self.store is not None:
                snapshot = await self.store.final_snapshot() if graceful else None
                await self.store.stop()
                if graceful:
                    await self.handoff.export(snapshot)
            await self.consensus.stop()
            await stop_lingering()
            await self.discovery.stop()
            await self.membership.stop(graceful=graceful)
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._runner is not None:
                await self._runner.cleanup()
                self._runner = None
            await self.client.close()
            self._log.info("node_stopped", graceful=graceful)

    async def _start_api(self) -> None:
        api = self.config.api
        self._runner = web.AppRunner(create_app(self.parts), access_log=None, handle_signals=False)
        await self._runner.setup()
        self._undo.append(self._runner.cleanup)
        site = web.TCPSite(self._runner, api.bind_host, api.port, reuse_address=True)
        try:
            await site.start()
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise BackendUnavailable(
                    f"API port {api.port} on {api.bind_host} is in use: is node {self.config.node_id} "
                    "(or another service) already running there?") from e
            raise BackendUnavailable(f"cannot bind the API on {api.bind_host}:{api.port}: {e.strerror or e}") from e

    async def _unwind(self) -> None:
        for undo in reversed(self._undo):
            try:
                await undo()
            except Exception:  # keep undoing: the original error is what matters
                self._log.exception("start_undo_failed")
        self._undo.clear()

    # -- Views ---------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.membership.ready and self.consensus.ready

    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self._started_at

    @property
    def role(self) -> str:
        if self.consensus.leadership().is_self:
            return "leader"
        # A backend's own role may still say leader for the instant its lease has run out.
        role = self.consensus.role
        return "follower" if role == "leader" else role

    def leadership(self) -> Leadership:
        return self.consensus.leadership()

    def node_info(self) -> NodeInfo:
        """Our NodeInfo as sent in heartbeats."""
        me = self.config.me
        view = self.consensus.leadership()
        now = time.monotonic()
        if now - self._load[0] > _LOAD_CACHE_S:
            self._load = (now, host_load())
        return NodeInfo(
            node_id=self.config.node_id, host=me.address, port=self.config.api.port, role=self.role,
            leader_id=view.leader, leader_term=view.term, last_heartbeat=time.time(),
            capabilities=list(me.capabilities), has_gpu=bool(me.gpu), gpu_name=me.gpu,
            version=__version__, tailscale_ip=me.tailscale_ip or None,
            effective_timeout=self.config.heartbeat.peer_timeout_s * self.config.jitter_factor,
            voter_node_ids=list(self.config.voters), **self._load[1],
        )

    def _limits_duty(self) -> list[asyncio.Task[None]]:
        """Nodes that hold the state keep its retention bounds the configured ones (as leader)."""
        if self.store is None:
            return []
        duty = KeepConfiguredLimits(self.config.node_id, self.state, self.store, self.config.state.limits(),
                                    every_s=self.config.state.tick_interval_s * 4)
        return [asyncio.create_task(duty.run(), name="state-limits")]

    # -- Metrics, fed from events ----------------------------------------------------------------

    def refresh_metrics(self) -> None:
        self.metrics.update_membership(self.membership.members(), self.config.node_id, self.config.voters)
        self.metrics.update_leadership(self.consensus.leadership())
        if self.swim is not None:
            self.metrics.update_swim(self.swim.describe())

    async def _sample_state(self) -> None:
        """Queue depth and held locks, from this node's own copy of the state (if it has one)."""
        while True:
            if self.store is not None:
                try:
                    stats, locks, records = await self.store.read(
                        lambda m: (m.work_stats(), len(m.locks_list()), m.size()))
                except ClusterError:
                    pass  # this node holds no copy right now
                else:
                    self.metrics.update_state(stats, locks, records)
            await asyncio.sleep(self.config.state.tick_interval_s * 4)

    async def _follow_membership(self) -> None:
        async for event in self.membership.subscribe():
            self.metrics.membership_events.labels(kind=event.kind.value, source=event.source).inc()
            if event.kind is EventKind.FAILED and event.after_s is not None:
                self.metrics.detection.labels(source=event.source).observe(event.after_s)
            self.refresh_metrics()

    async def _follow_leadership(self) -> None:
        async for event in self.consensus.subscribe():
            if event.changed:
                self.metrics.leader_changes.inc()
            if event.election_outcome is not None and event.election_latency_s is not None:
                self.metrics.election_latency.labels(outcome=event.election_outcome.value).observe(event.election_latency_s)
            self.refresh_metrics()


# The only place that maps the plan to classes.
_MEMBERSHIP: dict[MembershipBackend, Callable[[ClusterNode], Membership]] = {
    MembershipBackend.SWIM: lambda node: SwimMembership(node.config),
    MembershipBackend.HEARTBEAT: lambda node: HeartbeatMembership(node.config, node.client, node.node_info),
}
_ELECTION: dict[ElectionBackend, Callable[[ClusterNode], Election]] = {
    ElectionBackend.BULLY: lambda node: BullyElection(node.config, node.client, node.membership),
    ElectionBackend.RAFT: lambda node: node._raft(),
    ElectionBackend.RAFT_OBSERVER: lambda node: RaftObserver(node.config, node.client, node.membership),
}
_STORE: dict[StoreBackend, Callable[[ClusterNode], StateStore | None]] = {
    StoreBackend.JOURNAL: lambda node: JournalStore(node.config, node.consensus, node.client, node.handoff),
    # Raft mode starts the engine as the election; hybrid mode only through the store.
    StoreBackend.RAFT: lambda node: RaftStore(node._raft(), runs_engine=node.config.plan.election is not ElectionBackend.RAFT),
    StoreBackend.NONE: lambda node: None,
}


def _one(parts: list[Any], kind: type) -> Any:
    return next((p for p in parts if isinstance(p, kind)), None)


async def _cancel(task: "asyncio.Task[Any] | None") -> None:
    if task is not None and not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def run_until_signalled(node: ClusterNode) -> None:
    """Start ``node``, run until SIGINT or SIGTERM, then stop it gracefully."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await node.start()
    try:
        await stop.wait()
    finally:
        await node.stop(graceful=True)
