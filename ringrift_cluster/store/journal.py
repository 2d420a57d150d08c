"""The legacy state store: the Bully leader holds the state machine and journals every command
to disk before applying and acknowledging it. Followers hold no state; callers forward to the
leader. This is the host's model (no replication), made durable: a leader that restarts comes
back with every write it acknowledged. A different node taking over starts from its own disk,
which is why ``hybrid`` mode (Raft holds the state, Bully picks the leader) exists.

A node that wins the lease first reconciles (``reconcile.py``): it gathers the voters' states,
imports the newest if it is ahead of its own, journals its seal, and only then takes writes.
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
from ..consensus.base import Election
from ..errors import BackendUnavailable, NoLeader, NotLeader
from ..model import Leadership
from ..peer_client import PeerClient, PeerUnreachable
from ..state import SnapshotError, StateMachine, commands
from ..state.lineage import Lineage
from ..durable import fsync_dir, write_json_durably
from .reconcile import new_seal, seal_term

T = TypeVar("T")


class JournalStore:
    """State held by the legacy leader: snapshot + append-only journal in ``data_dir/state``."""

    name = "journal"

    def __init__(self, config: ClusterConfig, election: Election, client: PeerClient, handoff: Any = None) -> None:
        self._config = config
        self._handoff = handoff  # reconciles at each won lease; None: serves at once (tests)
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
        self._open_term: int | None = None  # the lease epoch whose reconcile is done
        self._first_term: int | None = None  # the lease epoch of the first leader seen in this run
        self._lead_task: asyncio.Task[None] | None = None
        self._follow_task: asyncio.Task[None] | None = None

    # -- StateStore ----------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._started

    def leadership(self) -> Leadership:
        return self._election.leadership()

    async def start(self) -> None:
        await asyncio.to_thread(self._recover)
        self._journal = open(self._journal_path, "a", encoding="utf-8")
        await asyncio.to_thread(fsync_dir, self._dir)  # a journal just created stays in its directory
        self._started = True
        self._tick_task = asyncio.create_task(self._tick_loop(), name="journal-tick")
        self._follow_task = asyncio.create_task(self._follow_leadership(), name="journal-leadership")

    async def stop(self) -> None:
        for task in (self._tick_task, self._follow_task, self._lead_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
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
        if self._open_term != view.term:
            raise NoLeader("the new leader is gathering the voters' state before it takes writes")
        return await self._append_apply(command)

    async def _append_apply(self, command: Mapping[str, Any]) -> Any:
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
        if self._open_term != view.term:
            raise NoLeader("the new leader is gathering the voters' state before it serves")
        return fn(self.machine)

    async def read_local(self, fn: Callable[[Any], T]) -> T:
        """This node's own journaled state, leader or not (for exports and reconciles)."""
        return fn(self.machine)

    def sealed_since_start(self) -> bool:
        term = seal_term(self.machine.lineage().head, self.name)
        return term is not None and self._first_term is not None and term >= self._first_term

    async def final_snapshot(self) -> dict[str, Any] | None:
        """Stop taking writes; return this node's journaled state (every node exports what it
        holds: the lineage decides later which is newest) and, if it leads, hand it to the other
        voters so the next leader starts from it."""
        leading = self._open_term is not None and self._election.leadership().is_self
        async with self._lock:
            if self._journal is not None:
                self._journal.close()
                self._journal = None
        snapshot = self.machine.snapshot()
        if not leading:
            return snapshot
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
        view = self._election.leadership()
        return {
            "backend": self.name,
            "holds_state": view.is_self,
            "serving": view.is_self and self._open_term == view.term,
            "lineage": self.machine.lineage().to_dict(),
            "journal_entries": self._entries,
            "applied": self.applied,
            "tail_discarded": self.tail_discarded,
            "clock": self.machine.clock,
        }

    def import_snapshot(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        """A departing leader's state: taken (and compacted to disk) if its lineage is ahead."""
        command = commands.stamp(commands.import_state(snapshot), time.time())
        result = self.machine.apply(json.loads(json.dumps(command)))
        if result.get("ok"):
            self._compact()
        return result

    # -- Leading -------------------------------------------------------------------------------

    def _watch_leadership(self) -> None:
        """Called every tick: a lease won for a new epoch starts its reconcile."""
        view = self._election.leadership()
        if self._first_term is None and view.leader is not None:
            self._first_term = view.term
        if not view.is_self or self._open_term == view.term:
            return
        if self._lead_task is not None and not self._lead_task.done():
            return  # the tick loop looks again once this one has ended
        self._lead_task = asyncio.create_task(self._lead(view.term), name="journal-reconcile")

    async def _lead(self, term: int) -> None:
        def still_leader() -> bool:
            view = self._election.leadership()
            return view.is_self and view.term == term

        if self._handoff is not None:
            snapshot = await self._handoff.reconcile(self.machine.lineage(), tuple(self._config.voters), still_leader)
            if not still_leader():
                return
            seal = new_seal(self.name, term, self._config.node_id)
            command = commands.import_state(snapshot, seal=seal, base=self.machine.lineage().to_dict()) \
                if snapshot is not None else commands.seal(seal)
            result = await self._append_apply(commands.stamp(command, time.time()))
            if not result.get("ok"):
                self._log.error("state_import_refused", reason=result.get("message"))
                await self._append_apply(commands.stamp(commands.seal(seal), time.time()))
            elif snapshot is not None:
                await asyncio.to_thread(self._compact)  # the journal holds the import as one line
            self._log.info("state_sealed", seal=seal, lineage=str(self.machine.lineage()))
        if still_leader():
            self._open_term = term

    # -- Disk ----------------------------------------------------------------------------------

    def _recover(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        self._entries, self.tail_discarded = load_journal(self._dir, self.machine, repair=True)
        if self.tail_discarded:
            self._log.warning("journal_tail_discarded", bytes=self.tail_discarded)
        self._log.info("state_recovered", entries=self._entries, clock=self.machine.clock,
                       lineage=str(self.machine.lineage()))

    def _append(self, line: str) -> None:
        self._journal.write(line + "\n")
        self._journal.flush()
        os.fsync(self._journal.fileno())

    def _compact(self) -> None:
        write_json_durably(self._snapshot_path, self.machine.snapshot())
        if self._journal is not None:
            self._journal.close()
        with open(self._journal_path, "w"):
            pass
        if self._journal is not None:
            self._journal = open(self._journal_path, "a", encoding="utf-8")
        self._entries = 0

    async def _follow_leadership(self) -> None:
        self._watch_leadership()
        async for _ in self._election.subscribe():
            self._watch_leadership()

    async def _tick_loop(self) -> None:
        """The leader advances the clock so expiries show without traffic."""
        while True:
            await asyncio.sleep(self._config.state.tick_interval_s)
            self._watch_leadership()
            if self._open_term is not None and self._election.leadership().is_self:
                # Not journaled: a replay expires the same leases at its next command, because
                # every command expires on the clock it carries.
                async with self._lock:
                    self.machine.apply(commands.stamp(commands.tick(), time.time()))


def load_journal(directory: Path, machine: StateMachine, *, repair: bool) -> tuple[int, int]:
    """Snapshot, then every journaled command after it, into ``machine``: (entries, bytes of a
    torn last line, dropped; truncated from the file when ``repair``). A snapshot that does not
    load is refused: the node must not start from less than it acknowledged."""
    snapshot_path, journal_path = directory / "snapshot.json", directory / "journal.jsonl"
    try:
        machine.restore(json.loads(snapshot_path.read_bytes()))
    except FileNotFoundError:
        pass
    except (OSError, ValueError, SnapshotError) as e:
        raise BackendUnavailable(f"state file {snapshot_path} is unreadable or invalid ({e}); "
                                 "refusing to start from less than it held: restore it or move it away") from e
    if not journal_path.exists():
        return 0, 0
    entries = good_bytes = 0
    with open(journal_path, "rb") as f:
        for raw in f:
            try:
                command = json.loads(raw)
            except ValueError:
                break
            if not raw.endswith(b"\n"):
                break
            machine.apply(command)
            entries += 1
            good_bytes += len(raw)
    torn = journal_path.stat().st_size - good_bytes
    if torn and repair:
        with open(journal_path, "r+b") as f:
            f.truncate(good_bytes)
    return entries, torn


def read_journal_state(data_dir: Path) -> dict[str, Any] | None:
    """The state a Bully run left in ``data_dir`` (read only), or None when there is none or it
    is refused (logged, naming the file)."""
    directory = Path(data_dir) / "state"
    if not directory.exists():
        return None
    machine = StateMachine()
    try:
        load_journal(directory, machine, repair=False)
    except BackendUnavailable as e:
        structlog.get_logger("ringrift.store.journal").error("state_file_refused", path=str(directory), reason=str(e))
        return None
    lineage: Lineage = machine.lineage()
    return machine.snapshot() if lineage.changes or lineage.seals else None
