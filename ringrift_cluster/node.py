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
from .config import ClusterConfig
from .consensus.bully import BullyElection
from .consensus.lease_rules import alive_voters, quorum_health, quorum_size
from .errors import BackendUnavailable
from .membership.base import Membership
from .membership.heartbeat import HeartbeatMembership
from .model import Leadership, MemberState
from .nodeinfo import NodeInfo, host_load
from .observability import NodeMetrics
from .peer_client import PeerClient
from .store import ClusterState, StateStore
from .store.duties import ReleaseFailedMembers
from .store.export import read_export, write_export
from .store.journal import JournalStore

_LOAD_CACHE_S = 5.0


class ClusterNode:
    """One cluster member: membership + consensus + the HTTP API, composed from the config."""

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self.metrics = NodeMetrics()
        self.client = PeerClient(config.node_id, config.auth_token)
        self._log = structlog.get_logger("ringrift.node").bind(node_id=config.node_id)
        self.heartbeat: HeartbeatMembership | None = None
        self.bully: BullyElection | None = None
        self.membership: Membership = self._build_membership()
        self.consensus = self._build_consensus()
        self.store: StateStore | None = self._build_store()
        self.state = ClusterState(config, self.store, self.client, self.membership.members)
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._started_at = time.monotonic()
        self._load: tuple[float, dict[str, float]] = (0.0, {})
        self._undo: list[Callable[[], Any]] = []

    # -- Composition (the only place that maps resolved backends to classes) -------------------

    def _build_membership(self) -> Membership:
        backends = self.config.membership_backends
        if backends != ("heartbeat",):
            raise BackendUnavailable(
                f"membership backends {backends} are not available in this build; "
                "use RINGRIFT_MEMBERSHIP_MODE=http")
        self.heartbeat = HeartbeatMembership(self.config, self.client, self.node_info)
        return self.heartbeat

    def _build_consensus(self) -> BullyElection:
        if self.config.leader_backend != "bully" or self.config.state_backend != "journal":
            raise BackendUnavailable(
                f"consensus mode {self.config.consensus_mode.value} is not available in this build; "
                "use RINGRIFT_CONSENSUS_MODE=bully")
        self.bully = BullyElection(self.config, self.client, self.membership)
        return self.bully

    def _build_store(self) -> StateStore | None:
        assert self.bully is not None
        return JournalStore(self.config, self.bully, self.client)

    # -- Lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start everything; on any failure, stop what had started and raise."""
        try:
            self.config.data_dir.mkdir(parents=True, exist_ok=True)
            await self.client.start()
            self._undo.append(self.client.close)
            await self._start_api()
            await self.membership.start()
            self._undo.append(lambda: self.membership.stop(graceful=False))
            await self.consensus.start()
            self._undo.append(self.consensus.stop)
            if self.store is not None:
                await self.store.start()
                self._undo.append(self.store.stop)
                self._import_other_mode()
            duties = ReleaseFailedMembers(self.config.node_id, self.state, self.membership,
                                          sweep_s=self.config.state.tick_interval_s * 4)
            self._tasks = [
                asyncio.create_task(self._follow_membership(), name="metrics-membership"),
                asyncio.create_task(self._follow_leadership(), name="metrics-leadership"),
                asyncio.create_task(duties.run(), name="release-failed-members"),
            ]
        except BaseException:
            await self._unwind()
            raise
        self._started_at = time.monotonic()
        self.refresh_metrics()
        self._log.info("node_started", api=f"http://{self.config.api.bind_host}:{self.config.api.port}",
                       membership=self.membership.name, consensus=self.consensus.name,
                       membership_mode=self.config.membership_mode.value,
                       consensus_mode=self.config.consensus_mode.value, preset=self.config.preset)

    async def stop(self, graceful: bool = True) -> None:
        """Stop in reverse order. Graceful: hand back the leader lease and announce leaving."""
        self._undo.clear()
        if self.store is not None:
            snapshot = await self.store.final_snapshot() if graceful else None
            await self.store.stop()
            if snapshot is not None:
                path = await asyncio.to_thread(write_export, self.config.data_dir, self.store.name, snapshot)
                self._log.info("state_exported", path=str(path), changes=snapshot["counters"]["change"])
        await self.consensus.stop()
        await self.membership.stop(graceful=graceful)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.client.close()
        self._log.info("node_stopped", graceful=graceful)

    def _import_other_mode(self) -> None:
        """After a mode switch, start from the state the other mode left (if it is newer)."""
        export = read_export(self.config.data_dir)
        if export is None or self.store is None or export.source == self.store.name:
            return
        result = self.store.import_snapshot(export.snapshot)
        self._log.info("state_imported" if result.get("ok") else "state_import_skipped",
                       source=export.source, changes=export.changes, reason=result.get("message"))

    async def _start_api(self) -> None:
        api = self.config.api
        self._runner = web.AppRunner(create_app(self), access_log=None, handle_signals=False)
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
        view = self.consensus.leadership()
        if view.is_self:
            return "leader"
        return getattr(self.consensus, "role", "follower")

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

    def status(self) -> dict[str, Any]:
        """The ``GET /status`` document."""
        members = self.membership.members()
        view = self.consensus.leadership()
        alive = {n for n, m in members.items() if m.is_alive} | {self.config.node_id}
        voters = self.config.voters
        alive_count = alive_voters(voters, alive)
        now = time.monotonic()
        counts = {state: sum(1 for m in members.values() if m.state is state) for state in MemberState}
        return {
            "node_id": self.config.node_id,
            "role": self.role,
            "leader_id": view.leader,
            "leader_term": view.term,
            "lease_expires": view.lease_expires,
            "fence_token": view.fence_token,
            "voters": list(voters),
            "quorum": {
                "required": quorum_size(len(voters)),
                "alive_voters": alive_count,
                "total_voters": len(voters),
                "health": quorum_health(alive_count, len(voters)).value,
            },
            "peers": {
                node_id: {
                    "state": m.state.value,
                    "is_alive": m.is_alive,
                    "seconds_since_heartbeat": round(now - m.last_seen, 3) if m.last_seen else None,
                    "host": m.host,
                    "port": m.api_port,
                    "role": m.role,
                }
                for node_id, m in sorted(members.items())
            },
            "membership": self.membership.describe(),
            "consensus": self.consensus.describe(),
            "swim_raft": {
                "membership_mode": self.config.membership_mode.value,
                "consensus_mode": self.config.consensus_mode.value,
                "swim": {
                    "enabled": self.config.swim_enabled,
                    "available": _importable("swim"),
                    "started": False,
                    "alive_count": 0,
                    "suspected_count": 0,
                    "failed_count": 0,
                },
                "raft": {
                    "enabled": self.config.raft_enabled,
                    "available": _importable("pysyncobj"),
                    "initialized": False,
                    "is_leader": False,
                    "leader_address": None,
                    "work_queue": {"pending": 0, "claimed": 0, "completed": 0},
                },
            },
            "peer_counts": {state.value: count for state, count in counts.items()},
            "version": __version__,
            "uptime_seconds": round(self.uptime_s, 3),
            "timestamp": time.time(),
        }

    # -- Metrics, fed from events ----------------------------------------------------------------

    def refresh_metrics(self) -> None:
        self.metrics.update_membership(self.membership.members(), self.config.node_id, self.config.voters)
        self.metrics.update_leadership(self.consensus.leadership())

    async def _follow_membership(self) -> None:
        async for event in self.membership.subscribe():
            self.metrics.membership_events.labels(kind=event.kind.value, source=event.source).inc()
            self.refresh_metrics()

    async def _follow_leadership(self) -> None:
        async for event in self.consensus.subscribe():
            if event.changed:
                self.metrics.leader_changes.inc()
            if event.election_outcome is not None and event.election_latency_s is not None:
                self.metrics.election_latency.labels(outcome=event.election_outcome.value).observe(event.election_latency_s)
            self.refresh_metrics()


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


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
