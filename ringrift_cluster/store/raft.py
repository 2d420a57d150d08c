"""RaftStore: the replicated state kept in a Raft log, the twin of ``JournalStore`` over Bully.

``RaftConsensus`` (``consensus/raft.py``) says who leads and commits log entries; this store
encodes the commands it is given, commits them through that log, serves reads of the replica,
ticks the replicated clock while this node leads, and carries state across mode switches
(``final_snapshot`` / ``import_snapshot``). ``runs_engine``: the store starts and stops the Raft
engine itself (hybrid mode, recovery), because nothing else runs it as the election.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from typing import Any, Callable, Mapping, TypeVar

import structlog

from ..consensus.raft import RaftConsensus
from ..consensus.raft.entry import MAX_COMMAND_BYTES, MAX_IMPORT_BYTES, encode
from ..errors import ClusterError, ClusterTimeout, CommandRejected, NoLeader, NotLeader
from ..model import Leadership

T = TypeVar("T")


class RaftStore:
    """The StateStore protocol over a ``RaftConsensus`` (``name = "raft"``)."""

    name = "raft"

    def __init__(self, raft: RaftConsensus, *, runs_engine: bool = False) -> None:
        self.raft = raft
        self._runs_engine = runs_engine
        self._settings = raft.settings
        self._log = structlog.get_logger("ringrift_cluster.raft").bind(node_id=raft.node_id)
        self._tasks: list[asyncio.Task[Any]] = []
        self._draining = False
        self._ticks = 0
        self.last_import: dict[str, Any] | None = None

    async def start(self) -> None:
        if self._runs_engine:
            await self.raft.start()
        self._tasks.append(asyncio.create_task(self._tick_loop(), name="raft-tick"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._runs_engine:
            await self.raft.stop()

    @property
    def ready(self) -> bool:
        return self.raft.ready

    def leadership(self) -> Leadership:
        return self.raft.leadership()

    def describe(self) -> dict[str, Any]:
        return self.raft.describe()

    def sealed_since_start(self) -> bool:
        return self.raft.sealed_since_start()

    # -- Commands and reads --------------------------------------------------------------------

    async def submit(self, command: Mapping[str, Any], timeout: float | None = None) -> Any:
        """Replicate ``command`` and return the state machine's result (a dict with ``ok``).

        Fills ``v`` (1), ``rid`` (random) and ``now`` (wall clock) when missing. Raises
        ``NoLeader`` (no leader known: nothing was written), ``NotLeader`` (forwarded to a
        non-leader: nothing was written), ``ClusterTimeout`` (no outcome in time, or one that
        may still commit: retry with the same ``rid``), ``CommandRejected`` (not JSON data, or
        too large), ``BackendUnavailable`` (not running). A refusal by the state machine is a
        normal result with ``ok: False``.
        """
        if self._draining:
            leader = self.raft.leadership().leader
            if leader is None or leader == self.raft.node_id:
                raise NoLeader("raft: this node is stopping")
            raise NotLeader(leader, f"this node is stopping; the leader is {leader}")
        self.raft.check_serving()
        payload, rid = encode(command, MAX_COMMAND_BYTES)
        return await self.raft.commit(payload, timeout, rid)

    async def read(self, fn: Callable[[Any], T], *, linearizable: bool = False,
                   timeout: float | None = None) -> T:
        """Run ``fn(machine)`` on this replica's state and return its value.

        ``fn`` must be quick and must not keep references into the state (copy what you need).
        Local reads may be stale on a follower (or on a leader cut off from its quorum).
        ``linearizable=True`` first commits a barrier entry through the leader, so the read sees
        every command acknowledged before it started; it raises like ``submit``.
        """
        self.raft.require_running()
        if linearizable:
            self.raft.check_serving()
            await self.raft.barrier(timeout)
        return await self.raft.read_local(fn)

    async def read_local(self, fn: Callable[[Any], T]) -> T:
        """This replica's state as applied here, whoever leads (exports and reconciles)."""
        return await self.raft.read_local(fn)

    # -- Mode switches -------------------------------------------------------------------------

    async def final_snapshot(self) -> dict[str, Any] | None:
        """Graceful stop (before ``stop()``): take no more writes here and return this replica's
        state, caught up through a commit barrier when a leader answers within a second (else
        as applied locally). None when this replica's state cannot be trusted."""
        self._draining = True
        if not self.raft.trusted:
            return None
        try:
            await self.raft.barrier(min(1.0, self._settings.commit_timeout_s))
        except ClusterError as e:
            self._log.warning("raft_final_snapshot_not_caught_up", reason=str(e))
        return await self.raft.read_local(lambda m: m.snapshot())

    def import_snapshot(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        """Offer a snapshot exported by another mode. It must go through the log, so it is
        proposed in the background once a leader is known (retried with one rid until it has an
        outcome); the machine keeps it only if it holds more changes than the replicated state."""
        self.raft.require_running()
        command = {"v": 1, "op": "state.import", "args": {"snapshot": snapshot}, "now": time.time()}
        try:
            digest = hashlib.sha256(json.dumps(snapshot, sort_keys=True).encode()).hexdigest()[:24]
        except (TypeError, ValueError) as e:
            raise CommandRejected("bad_command", f"the snapshot is not JSON data: {e}") from e
        command["rid"] = f"import:{self.raft.node_id}:{digest}"
        payload, rid = encode(command, MAX_IMPORT_BYTES)
        self._tasks.append(asyncio.create_task(self._propose_import(payload, rid), name="raft-import"))
        return {"ok": True, "pending": True, "rid": rid,
                "message": "proposed through Raft once a leader is known; kept only if newer"}

    async def _propose_import(self, payload: str, rid: str) -> None:
        while True:
            try:
                await self.raft.wait_for_leader(self._settings.commit_timeout_s)
                result = await self.raft.commit(payload, self._settings.commit_timeout_s, rid)
            except (NoLeader, NotLeader, ClusterTimeout) as e:
                self._log.info("raft_import_retrying", rid=rid, reason=str(e))
                await asyncio.sleep(self._settings.tick_interval_s)
                continue
            except ClusterError as e:
                self._log.error("raft_import_failed", rid=rid, reason=str(e))
                return
            self._log.info("raft_state_imported" if result.get("ok") else "raft_state_import_skipped",
                           rid=rid, reason=result.get("message"), changes=result.get("changes"))
            self.last_import = result
            return

    # -- Leader duties -------------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        """The leader proposes the clock, so expiries happen on the replicated clock."""
        interval = self._settings.tick_interval_s
        while True:
            await asyncio.sleep(interval)
            current = self.raft.leadership()
            if not current.is_self:
                continue
            self._ticks += 1
            command = {"v": 1, "op": "tick", "rid": f"tick:{self.raft.node_id}:{current.term}:{self._ticks}",
                       "now": time.time(), "args": {}}
            try:
                await self.submit(command, timeout=max(interval, self._settings.commit_timeout_s))
            except ClusterError as e:
                self._log.debug("raft_tick_failed", error=str(e))


__all__ = ["RaftStore"]
