"""The legacy state store: the Bully leader holds the state machine and journals every command
to disk before applying and acknowledging it. Followers hold no state; callers forward to the
leader. This is the host's model (no replication), made durable: a leader that restarts comes
back with every write it acknowledged. A different node taking over starts from its own disk,
which is why ``hybrid`` mode (Raft holds the state, Bully picks the leader) exists.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

import structlog

from ..config import ClusterConfig
from ..consensus.base import Consensus
from ..errors import NoLeader, NotLeader
from ..model import Leadership
from ..peer_client import PeerClient, PeerUnreachable
from ..state import StateMachine, commands

T = TypeVar("T")


class JournalStore:
    """State held by the legacy leader: snapshot + append-only journal in ``data_dir/state``."""

    name = "journal"

    def __init__(self, config: ClusterConfig, election: Consensus, client: PeerClient) -> None:
        self._config = config
        self._election = election
        self._client = client
        self._dir = Path(config.data_dir) / "state"
        self._journal_path = self._dir / "journal.jsonl"
        self._snapshot_path = self._dir / "snapshot.json"
        self._log = structlog.get_logger("ringrift.store.journal")
        self.machine = StateMachine()
        self._lock = asyncio.Lock()
        self._journal: Any = None
        self._entries = 0
        self._started = False
        self._tick_task: asyncio.Task[None] | None = None
        self.applied = 0
        self.tail_discarded = 0

    # -- StateStore ----------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._started

    def leadership(self) -> Leadership:
        return self._election.leadership()

    async def start(self) -> None:
        await asyncio.to_thread(self._recover)
        self._journal = open(self._journal_path, "a", encoding="utf-8")
        self._started = True
        self._tick_task = asyncio.create_task(self._tick_loop(), name="journal-tick")

    async def stop(self) -> None:
        if self._tick_task is not None:
            self._tick_task.cancel()
            await asyncio.gather(self._tick_task, return_exceptions=True)
        async with self._lock:
            if self._journal is not None:
                self._journal.close()
                self._journal = None
        self._started = False

    async def submit(self, command: Mapping[str, Any], timeout: float | None = None) -> Any:
        view = self._election.leadership()
        if view.leader is None:
            raise NoLeader("no leader: the legacy state is served by the elected leader")
        if not view.is_self:
            raise NotLeader(view.leader)
        # The serialized form is what is journaled and what is applied, so a replay applies
        # exactly what was acknowledged.
        line = json.dumps(command, separators=(",", ":"), allow_nan=False)
        async with self._lock:
            if self._journal is None:
                raise NoLeader("the state store is stopped")
            await asyncio.to_thread(self._append, line)
            result = self.machine.apply(json.loads(line))
            self.applied += 1
            self._entries += 1
            if self._entries >= self._config.state.journal_compact_entries:
                await asyncio.to_thread(self._compact)
        return result

    async def read(self, fn: Callable[[Any], T], *, linearizable: bool = False, timeout: float | None = None) -> T:
        # Only the leader holds the state, so every read goes there (and is linearizable there:
        # commands are applied before they are acknowledged).
        view = self._election.leadership()
        if not view.is_self:
            if view.leader is None:
                raise NoLeader("no leader: the legacy state is served by the elected leader")
            raise NotLeader(view.leader)
        return fn(self.machine)

    async def final_snapshot(self) -> dict[str, Any] | None:
        """Stop taking writes; if this node holds the state, hand it to the other voters (so the
        next leader starts from it after a graceful stop) and return it."""
        async with self._lock:
            if self._journal is not None:
                self._journal.close()
                self._journal = None
        if not self._election.leadership().is_self:
            return None
        snapshot = self.machine.snapshot()
        others = [v for v in self._config.voters if v != self._config.node_id]
        timeout = self._config.election.request_timeout_s

        async def give(voter: str) -> bool:
            try:
                status, _ = await self._client.post(self._config.hosts[voter].api_url, "/state/handover",
                                                    {"snapshot": snapshot}, timeout)
            except PeerUnreachable:
                return False
            return status == 200

        handed = await asyncio.gather(*(give(v) for v in others))
        self._log.info("state_handed_over", voters=[v for v, ok in zip(others, handed) if ok],
                       changes=snapshot["counters"]["change"])
        return snapshot

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "holds_state": self._election.leadership().is_self,
            "journal_entries": self._entries,
            "applied": self.applied,
            "tail_discarded": self.tail_discarded,
            "clock": self.machine.clock,
        }

    def import_snapshot(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        """Offer a snapshot from another mode (at start, before serving): taken if newer."""
        command = commands.stamp(commands.import_state(snapshot), time.time())
        result = self.machine.apply(json.loads(json.dumps(command)))
        if result.get("ok"):
            self._compact()
        return result

    # -- Disk ----------------------------------------------------------------------------------

    def _recover(self) -> None:
        """Snapshot, then every journaled command after it; a torn last line is dropped."""
        self._dir.mkdir(parents=True, exist_ok=True)
        try:
            self.machine.restore(json.loads(self._snapshot_path.read_text()))
        except FileNotFoundError:
            pass
        if not self._journal_path.exists():
            return
        good_bytes = 0
        with open(self._journal_path, "rb") as f:
            for raw in f:
                try:
                    command = json.loads(raw)
                except ValueError:
                    break
                if not raw.endswith(b"\n"):
                    break
                self.machine.apply(command)
                self._entries += 1
                good_bytes += len(raw)
        size = self._journal_path.stat().st_size
        if good_bytes < size:
            self.tail_discarded = size - good_bytes
            self._log.warning("journal_tail_discarded", bytes=self.tail_discarded)
            with open(self._journal_path, "r+b") as f:
                f.truncate(good_bytes)
        self._log.info("state_recovered", entries=self._entries, clock=self.machine.clock)

    def _append(self, line: str) -> None:
        self._journal.write(line + "\n")
        self._journal.flush()
        os.fsync(self._journal.fileno())

    def _compact(self) -> None:
        tmp = self._snapshot_path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump(self.machine.snapshot(), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._snapshot_path)
        if self._journal is not None:
            self._journal.close()
        with open(self._journal_path, "w"):
            pass
        if self._journal is not None:
            self._journal = open(self._journal_path, "a", encoding="utf-8")
        self._entries = 0

    async def _tick_loop(self) -> None:
        """The leader advances the clock so expiries show without traffic."""
        while True:
            await asyncio.sleep(self._config.state.tick_interval_s)
            if self._election.leadership().is_self:
                # Not journaled: a replay expires the same leases at its next command, because
                # every command expires on the clock it carries.
                async with self._lock:
                    self.machine.apply(commands.stamp(commands.tick(), time.time()))
