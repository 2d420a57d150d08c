"""Raft over pysyncobj: who leads (by node id), the log entries it commits, status.

Only the nodes in ``config.raft_members`` run Raft (one SyncObj each, on their ``raft_port``);
other nodes are HTTP clients of a voter and must not construct this class. The replicated
state kept in the log is ``store/raft.py::RaftStore``'s: this class has no ``submit``.

Everything that crosses between pysyncobj's tick thread and asyncio lives in
``bridge.py``; this module is asyncio-only: the pysyncobj configuration, the address <->
node id edge, the single failure-code table, leadership events, commits and the status summary.

Usage::

    raft = RaftConsensus(config, StateMachine())
    await raft.start()                      # binds the Raft port; returns before a leader exists
    await raft.wait_for_leader(5.0)         # -> Leadership(leader="node-a", term=3, is_self=...)
    store = RaftStore(raft)                 # submit, read, ticks, mode switches
    await raft.stop()
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, TypeVar

import structlog

from ... import mutations
from ...config import ClusterConfig, RaftSettings
from ...errors import BackendUnavailable, ClusterTimeout
from ...events import Subscription
from ...model import ElectionOutcome, Leadership, LeadershipEvent, NodeId
from ...timeouts import within
from ..tracker import LeadershipTracker
from . import bridge
from .conf import RaftFiles, hint_settings, ids_by_address, pysyncobj_conf
from .snapshots import default_restore, first_dump
from .values import FailReason, RaftRole
from .entry import failure_error
from .gate import ServingGate

T = TypeVar("T")

WATCH_INTERVAL_S = 0.1  # loop-side leadership poll, besides the tick thread's push (a backstop)
BIND_TIMEOUT_S = 10.0


class RaftConsensus:
    """The Election protocol over pysyncobj (``name = "raft"``).

    ``machine`` must be fresh (empty): at start the full dump and the journal under
    ``config.data_dir / "raft"`` are replayed into it. One instance runs once (start, stop).
    ``restore(machine, snapshot) -> machine`` defaults to ``machine.restore(snapshot)`` or
    ``type(machine).from_snapshot(snapshot)``.
    """

    name = "raft"

    def __init__(self, config: ClusterConfig, machine: Any, *, logger: Any = None,
                 restore: Callable[[Any, Any], Any] | None = None, handoff: Any = None) -> None:
        if not bridge.PYSYNCOBJ_AVAILABLE:
            raise BackendUnavailable("raft: pysyncobj is not installed (pip install 'pysyncobj==0.3.17')")
        if config.node_id not in config.raft_members:
            raise BackendUnavailable(
                f"raft: node {config.node_id!r} is not in raft_members {list(config.raft_members)}; "
                "only raft members run Raft, other nodes use the HTTP API of a member"
            )
        settings = config.raft
        if settings.password and not bridge.HAS_CRYPTO:
            raise BackendUnavailable("raft: raft.password is set but the 'cryptography' package is missing")
        for method in ("apply", "snapshot"):
            if not callable(getattr(machine, method, None)):
                raise TypeError(f"the state machine needs {method}(); got {type(machine).__name__}")

        self.node_id: NodeId = config.node_id
        self._config = config
        self._settings = settings
        self._machine = machine
        log = logger if logger is not None else structlog.get_logger("ringrift_cluster.raft")
        if not hasattr(log, "bind"):  # a stdlib logger
            log = structlog.wrap_logger(log)
        self._log = log.bind(node_id=config.node_id)

        # The edge between pysyncobj addresses and node ids: built once, from the config.
        self._id_by_address: dict[str, NodeId] = ids_by_address(config)
        self._address_by_id = {n: a for a, n in self._id_by_address.items()}
        self.self_address = self._address_by_id[self.node_id]
        if len(config.raft_members) == 2:
            self._log.warning("raft_two_members", hint="2 voters tolerate no failure; use 3 or 5")

        self._files = RaftFiles.of(config)
        self.raft_dir, self.journal_file, self.dump_file = self._files.dir, self._files.journal, self._files.dump
        self._engine = bridge.RaftEngine(
            self_address=self.self_address,
            other_addresses=tuple(a for a in sorted(self._id_by_address) if a != self.self_address),
            conf=self.pysyncobj_conf(),
            machine=machine,
            restore=restore or default_restore,
            on_change=self._refresh,
            durability=settings.durability,
            hints=self.hint_settings(),
            batch=settings.batch_proposals,
        )

        self._tracker = LeadershipTracker()
        self._tasks: list[asyncio.Task[Any]] = []
        self._started = False
        self._stopping = False
        self._lost_at: float | None = None
        self._leader_changes = 0
        self._committed = 0
        self._failed = 0
        self._last_leader_commit: tuple[int, float] = (-1, 0.0)  # (term, monotonic)
        self._dump_ok = False
        self._warned_addresses: set[str] = set()
        self._restore_logged = False
        self._gate = ServingGate(self, handoff, tuple(config.raft_members))

    # ----------------------------------------------------------------------------- config

    def pysyncobj_conf(self) -> dict[str, Any]:
        """The SyncObjConf keyword arguments this node runs with."""
        return pysyncobj_conf(self._settings, self._files)

    def hint_settings(self) -> dict[str, float]:
        return hint_settings(self._settings)

    # ----------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        if self._started:
            return
        if self._engine.used:
            # The journal is replayed into the machine at start: it must be the fresh one this
            # object was built with, so a stopped instance is not restarted.
            raise BackendUnavailable("raft: a stopped RaftConsensus cannot restart; build a new one with a fresh machine")
        self._files.lock()
        self._lost_at = time.monotonic()
        try:
            await self._engine.start(BIND_TIMEOUT_S)
        except bridge.EngineError as e:
            self._files.unlock()
            raise BackendUnavailable(f"raft: {e}") from e
        if not self.journal_file.exists():
            await self._engine.stop()
            self._files.unlock()
            raise BackendUnavailable(f"raft: journal file {self.journal_file} was not created")
        self._started = True
        self._tasks = [
            asyncio.create_task(self._watch_loop(), name="raft-watch"),
            asyncio.create_task(self._first_dump(), name="raft-dump-check"),
        ]
        self._log.info("raft_started", address=self.self_address, members=list(self._config.raft_members),
                       data_dir=str(self.raft_dir))

    async def stop(self) -> None:
        if not self._started:
            return
        self._stopping = True
        await self._gate.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self._engine.stop()
        self._files.unlock()
        self._started = False
        self._set_leadership(Leadership(leader=None, term=self._tracker.current.term, is_self=False))
        self._stopping = False
        self._tracker.close()
        self._log.info("raft_stopped")

    @property
    def role(self) -> str:
        return "leader" if self._tracker.current.is_self else "follower"

    @property
    def ready(self) -> bool:
        return self._started and self._engine.status().tick_thread_alive

    # ----------------------------------------------------------------------------- leadership

    def leadership(self) -> Leadership:
        return self._tracker.current

    def subscribe(self) -> Subscription[LeadershipEvent]:
        return self._tracker.subscribe()

    async def wait_for_leader(self, timeout: float) -> Leadership:
        return await self._tracker.wait_for_leader(
            timeout, lambda view: f"no Raft leader within {timeout:.2f} s (term {view.term})",
            refresh=self._refresh, poll_s=WATCH_INTERVAL_S * 4)

    def leader_confirmed(self) -> bool:
        """Leader duties may run: we lead, see a quorum, and committed as leader recently."""
        current = self._tracker.current
        term, at = self._last_leader_commit
        window = max(2 * self._settings.tick_interval_s, self._settings.leader_fallback_timeout_s)
        return current.is_self and term == current.term and time.monotonic() - at <= window

    def _derive(self, status: bridge.EngineStatus) -> Leadership:
        if not status.published or not status.tick_thread_alive or self._stopping:
            return Leadership(leader=None, term=status.term, is_self=False)
        leader = self._id_by_address.get(status.leader) if status.leader else None
        if status.leader and leader is None and status.leader not in self._warned_addresses:
            self._warned_addresses.add(status.leader)
            self._log.warning("raft_unknown_leader_address", address=status.leader)
        if leader == self.node_id and not (status.role is RaftRole.LEADER and status.has_quorum):
            leader = None  # a stale self-view, or a leader that lost its quorum: in doubt
        if leader not in (None, self.node_id) and status.connected.get(status.leader) is False:
            # pysyncobj keeps a follower's last leader while it cannot reach anyone (it only
            # campaigns when connected to someone): a leader we cannot reach is not one we know.
            leader = None
        return Leadership(leader=leader, term=status.term, is_self=leader == self.node_id)

    def _refresh(self) -> None:
        """Loop side: recompute leadership from the engine's latest status (push and poll)."""
        if self._started or self._stopping:
            self._set_leadership(self._derive(self._engine.status()))

    def _set_leadership(self, new: Leadership) -> None:
        old = self._tracker.current
        if (new.leader, new.term, new.is_self) == (old.leader, old.term, old.is_self):
            return
        now = time.monotonic()
        outcome: ElectionOutcome | None = None
        latency: float | None = None
        if new.leader is None:
            if old.leader is not None:
                self._lost_at = now
        elif new.leader != old.leader:
            self._leader_changes += 1
            outcome = ElectionOutcome.WON if new.is_self else ElectionOutcome.ADOPTED
            if self._lost_at is not None:
                latency = now - self._lost_at
            self._lost_at = None
        self._tracker.publish(new, outcome=outcome, latency_s=latency)
        if new.leader != old.leader:
            self._log.info("raft_leader_changed", leader=new.leader, previous=old.leader, term=new.term,
                           is_self=new.is_self, after_s=None if latency is None else round(latency, 3))
        self._gate.on_leadership(new)

    async def _watch_loop(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            self._refresh()
            if self.trusted:
                await self._gate.refresh_head(self._tracker.current)
            failed = self._engine.restore_failed
            if failed is not None and not self._restore_logged:
                self._restore_logged = True
                self._log.critical("raft_snapshot_restore_failed", error=failed,
                                   hint="this replica refuses submits and reads until restarted")

    # ----------------------------------------------------------------------------- the log

    @property
    def settings(self) -> RaftSettings:
        return self._settings

    @property
    def trusted(self) -> bool:
        """Running, with a replica that loaded every snapshot it was given."""
        return self._started and self._engine.restore_failed is None

    def check_serving(self) -> None:
        """Raise unless a write (or a linearizable read) may be proposed here now."""
        self._gate.check(self._tracker.current)

    def require_running(self) -> None:
        if not self._started:
            raise BackendUnavailable("raft: not started")
        failed = self._engine.restore_failed
        if failed is not None:
            # This replica could not load a snapshot: its state is not the cluster's. Nothing it
            # applies or reads can be trusted until it is restarted (with a fixed machine).
            raise BackendUnavailable(f"raft: this replica failed to restore a snapshot ({failed})")

    async def commit(self, payload: str, timeout: float | None, rid: str | None) -> Any:
        """Commit one encoded entry (``raft_entry.encode``) and return what the machine's apply
        returned. Raises ``NoLeader`` / ``NotLeader`` (nothing written) or ``ClusterTimeout``
        (it may still commit: retry with the same ``rid``)."""
        self.require_running()
        timeout = self._settings.commit_timeout_s if timeout is None else timeout
        try:
            fut = self._engine.propose(payload)
        except bridge.EngineError as e:
            raise BackendUnavailable(f"raft: {e}") from e
        if mutations.active("raft-ack-before-commit"):
            return {"ok": True}
        try:
            result, code = await within(fut, timeout)
        except asyncio.TimeoutError:
            self._failed += 1
            error = ClusterTimeout(f"no Raft outcome within {timeout:.2f} s; it may still commit, "
                                   "retry with the same rid")
            error.rid = rid  # type: ignore[attr-defined]
            error.may_commit = True  # type: ignore[attr-defined]
            raise error from None
        except bridge.EngineError as e:
            self._failed += 1
            raise ClusterTimeout(f"raft: {e}") from e
        if code != FailReason.SUCCESS:
            self._failed += 1
            self._refresh()
            raise failure_error(code, leader=self._tracker.current.leader, rid=rid)
        self._committed += 1
        current = self._tracker.current
        if current.is_self:
            self._last_leader_commit = (current.term, time.monotonic())
        return result

    async def barrier(self, timeout: float | None) -> None:
        """Commit an empty entry: what this replica applies next includes every earlier commit."""
        await self.commit(bridge.BARRIER, timeout, None)

    async def read_local(self, fn: Callable[[Any], T]) -> T:
        """This replica's state as applied here, whoever leads (exports and reconciles)."""
        self.require_running()
        return await self._engine.read_local(fn)

    def sealed_since_start(self) -> bool:
        return self._gate.sealed_since_start()

    async def _first_dump(self) -> None:
        await first_dump(self._engine, self.dump_file, self._log)
        self._dump_ok = True

    # ----------------------------------------------------------------------------- status

    def describe(self) -> dict[str, Any]:
        """What GET /raft/status needs (legacy contract section 4), plus engine details."""
        status = self._engine.status()
        current = self._tracker.current
        members = {self.node_id: bool(self._started)}
        for address, connected in status.connected.items():
            node_id = self._id_by_address.get(address)
            if node_id is not None:
                members[node_id] = bool(connected)
        for node_id in self._config.raft_members:
            members.setdefault(node_id, False)
        running = self._started and status.tick_thread_alive and self._engine.restore_failed is None
        if not running or current.leader is None:
            health = "unavailable"
        elif all(members.values()):
            health = "healthy"
        else:
            health = "partial"
        return {
            "backend": self.name,
            "holds_state": running,  # every member holds a replica
            "node_id": self.node_id,
            "raft_enabled": bool(self._config.raft_enabled),
            "pysyncobj_available": bridge.PYSYNCOBJ_AVAILABLE,
            "pysyncobj_version": bridge.PYSYNCOBJ_VERSION,
            "raft_initialized": running,
            "is_ready": bool(status.ready),
            "config": {
                "bind_port": self._settings.bind_port,
                "bind_host": self._settings.bind_host,
                "members": list(self._config.raft_members),
                "encrypted": bool(self._settings.password),
            },
            "cluster_health": health,
            "leader": current.leader,
            "term": status.term,
            "is_leader": current.is_self,
            "leader_confirmed": self.leader_confirmed(),
            "serving": self._gate.open_term == current.term if current.is_self else self._gate.head_term == current.term,
            "state": status.role.name.lower(),
            "has_quorum": bool(status.has_quorum),
            "commit_index": status.commit_index,
            "applied_index": status.applied_index,
            "log_size": status.log_size,
            "members": dict(sorted(members.items())),
            "leader_changes": self._leader_changes,
            "proposals_committed": self._committed,
            "proposals_failed": self._failed,
            "apply_failures": self._engine.apply_failures,
            "restore_error": self._engine.restore_failed,
            "engine_stalls": self._engine.stalls(),
            "journal_file": str(self.journal_file),
            "dump_file": str(self.dump_file),
            "dump_file_written": self._dump_ok,
            "durability": self._settings.durability,
            "journal_syncs": self._engine.journal_syncs,
            "leader_hints": self._engine.hint_counts(),
            "batching": self._engine.batch_counts(),
            "tick_hook_errors": self._engine.hook_errors,
        }


__all__ = ["RaftConsensus", "default_restore"]
