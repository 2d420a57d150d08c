"""A node's part in carrying the state across restarts and mode switches.

At start the node collects the states it holds outside its running store (its candidates):
the export its last graceful stop wrote, the journal a Bully run left (when it now runs Raft),
and, when its last run was Raft and did not stop cleanly (so wrote no export), the Raft state
itself, recovered by running the engine with the other members for a moment. It answers
``/state/candidate`` with the newest of those and of its store, and at a graceful stop writes the
store's state as the next export. The state leader reconciles through it (``reconcile.py``).

What each mode promises: ``raft`` and ``hybrid`` keep every acknowledged write on a majority of
the Raft members; ``bully`` keeps it on the leader's disk only (a crash of the leader leaves the
next leader without it until the old one returns and a leader change or switch gathers it).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Awaitable, Callable

import structlog

from ..config import ClusterConfig
from ..errors import ClusterError
from ..peer_client import PeerClient
from ..state.lineage import Lineage, newest, of_snapshot
from .export import read_export, read_last_run, write_export, write_last_run
from .reconcile import Gatherer, Report, reconcile

DURABILITY = {
    "journal": "the leader's disk only: a crash of the leader loses its writes until it returns",
    "raft": "a majority of the Raft members: a minority may crash without losing a write",
}


class Handoff:
    """The node's candidates, its answers to the state leader, and its export at a stop."""

    def __init__(self, config: ClusterConfig, client: PeerClient, store_name: str,
                 peer_url: Callable[[str], str | None]) -> None:
        self._config = config
        self.store_name = store_name
        self.store: Any = None  # the running StateStore, set by the node
        self._gatherer = Gatherer(client, peer_url, config.election.request_timeout_s)
        self._local: list[dict[str, Any]] = []  # snapshots held outside the store
        self.switched_from: str | None = None
        self._loaded = asyncio.Event()  # until set, this node cannot tell what it holds
        self._log = structlog.get_logger("ringrift.store.handoff").bind(node_id=config.node_id)

    # -- start and stop ------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self._loaded.is_set()

    async def load(self, recover_raft: Callable[[], Awaitable[dict[str, Any] | None]] | None = None) -> None:
        """Collect the local candidates; call before the store serves."""
        data_dir = Path(self._config.data_dir)
        last = await asyncio.to_thread(read_last_run, data_dir)
        if last is not None and last.store != self.store_name:
            self.switched_from = last.store
        export = await asyncio.to_thread(read_export, data_dir, self._config.state.cluster_name)
        if export is not None:
            self._local.append(export.snapshot)
        if self.store_name != "journal":
            from .journal import read_journal_state  # the store this node may have run before
            journal = await asyncio.to_thread(read_journal_state, data_dir)
            if journal is not None:
                self._local.append(journal)
        if last is not None and last.store == "raft" and not last.clean and self.store_name != "raft" \
                and recover_raft is not None:
            recovered = await recover_raft()
            if recovered is not None:
                self._local.append(recovered)
        await asyncio.to_thread(write_last_run, data_dir, self.store_name, False)
        self._loaded.set()
        if self._local or self.switched_from:
            self._log.info("state_candidates", switched_from=self.switched_from,
                           candidates=[str(of_snapshot(s)) for s in self._local])

    async def export(self, snapshot: dict[str, Any] | None) -> None:
        """At a graceful stop: the store's state becomes the export (none held: the old one stays)."""
        data_dir = Path(self._config.data_dir)
        if snapshot is not None:
            path = await asyncio.to_thread(write_export, data_dir, self.store_name, snapshot,
                                           self._config.state.cluster_name)
            self._log.info("state_exported", path=str(path), lineage=str(of_snapshot(snapshot)),
                           changes=snapshot["counters"]["change"])
        await asyncio.to_thread(write_last_run, data_dir, self.store_name, True)

    # -- answers to the state leader -----------------------------------------------------------

    async def _store_state(self, with_snapshot: bool) -> tuple[Lineage | None, dict[str, Any] | None]:
        if self.store is None:
            return None, None
        try:
            if with_snapshot:  # frozen on the engine's side, serialized off it
                frozen = await self.store.read_local(lambda m: m.freeze())
                snapshot = await asyncio.to_thread(frozen.snapshot)
                return of_snapshot(snapshot), snapshot
            return await self.store.read_local(lambda m: m.lineage()), None
        except ClusterError:
            return None, None

    async def report(self) -> Report:
        store_lineage, _ = await self._store_state(False)
        lineages = [of_snapshot(s) for s in self._local] + ([store_lineage] if store_lineage else [])
        switched = self.switched_from is not None and not (self.store is not None and self.store.sealed_since_start())
        return Report(self._config.node_id, newest(lineages), switched)

    async def snapshot_for(self, lineage: Lineage) -> dict[str, Any] | None:
        """The state behind ``lineage`` (a report of ours), if this node still holds it."""
        for snapshot in self._local:
            if of_snapshot(snapshot) == lineage:
                return snapshot
        store_lineage, snapshot = await self._store_state(True)
        return snapshot if store_lineage == lineage else None

    # -- the leader's side ---------------------------------------------------------------------

    async def reconcile(self, own_lineage: Lineage, members: tuple[str, ...],
                        still_leader: Callable[[], bool]) -> dict[str, Any] | None:
        """The snapshot the new leader must import before it serves (None: its own is newest)."""
        await self._loaded.wait()
        own = await self.report()

        async def mine() -> dict[str, Any] | None:
            return await self.snapshot_for(own.lineage) if own.lineage is not None else None

        snapshot, reports = await reconcile(self._gatherer, own, own_lineage, members,
                                            self._config.state.reconcile_wait_s, still_leader, mine)
        self._log.info("state_reconciled", ours=str(own_lineage), reports={r.node_id: str(r.lineage) for r in reports},
                       imports=None if snapshot is None else str(of_snapshot(snapshot)))
        return snapshot
