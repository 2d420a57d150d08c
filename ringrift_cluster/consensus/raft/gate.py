"""Raft: a leader serves nothing until it has reconciled and sealed in its own term.

When this node becomes leader in term T it gathers the members' states (``store/reconcile.py``),
commits one ``state.import`` (with its seal) of the newest one ahead of the replicated state, or
one ``state.seal``, and only then opens. A follower proposes straight through pysyncobj only once
its replica shows a seal of the current term; before that it sends the caller to the leader
(``NotLeader``), where the gate applies, so no write slips in ahead of the import.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog

from ...errors import ClusterError, ClusterTimeout, NoLeader, NotLeader
from ...model import Leadership
from ...state import commands
from ...store.reconcile import new_seal, seal_term
from .entry import MAX_IMPORT_BYTES, encode
from .values import BARRIER

STORE = "raft"


class ServingGate:
    """Owned by ``RaftConsensus``; ``handoff`` None opens every term at once (no reconcile)."""

    def __init__(self, raft: Any, handoff: Any, members: tuple[str, ...]) -> None:
        self._raft = raft
        self._handoff = handoff
        self._members = members
        self.open_term: int | None = None
        self.head_term: int | None = None  # term of the last raft seal this replica applied
        # The term of the first leader seen since this process started: every seal made in this
        # run has at least that term (a restart of all needs a new election), older ones less.
        self.first_term: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._log = structlog.get_logger("ringrift_cluster.raft").bind(node_id=raft.node_id)

    def on_leadership(self, view: Leadership) -> None:
        if self.first_term is None and view.leader is not None:
            self.first_term = view.term
        if not view.is_self or self.open_term == view.term:
            return
        if self._handoff is None:
            self.open_term = view.term
        elif self._task is None or self._task.done():
            self._task = asyncio.create_task(self._lead(view.term), name="raft-reconcile")

    def check(self, view: Leadership) -> None:
        """Raise unless a write (or linearizable read) may be proposed here now."""
        if view.is_self:
            if self.open_term != view.term:
                raise NoLeader("the new Raft leader is gathering the members' state before it serves")
        elif self._handoff is not None and self.head_term != view.term:
            if view.leader is None:
                raise NoLeader("no Raft leader is known")
            raise NotLeader(view.leader, f"the leader {view.leader} has not sealed term {view.term} here yet")

    async def refresh_head(self, view: Leadership) -> None:
        if self._handoff is not None and self.head_term != view.term:
            head = await self._raft.read_local(lambda m: m.lineage().head)
            self.head_term = seal_term(head, STORE)
        if view.is_self and self.open_term != view.term:
            self.on_leadership(view)  # a reconcile that ended early (leadership flickered)

    def sealed_since_start(self) -> bool:
        return None not in (self.head_term, self.first_term) and self.head_term >= self.first_term  # type: ignore[operator]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _lead(self, term: int) -> None:
        raft = self._raft

        def still_leader() -> bool:
            view = raft.leadership()
            return view.is_self and view.term == term

        # A new leader may not have applied every committed entry yet: a barrier of its own term
        # makes the lineage it compares (and expects, in the import's compare-and-set) current.
        if await self._commit(BARRIER, still_leader) is None:
            return
        try:
            own = await raft.read_local(lambda m: m.lineage())
        except ClusterError as e:  # stopped, or this replica failed to restore: it must not seal
            self._log.info("state_seal_failed", reason=str(e))
            return
        snapshot = await self._handoff.reconcile(own, self._members, still_leader)
        seal = new_seal(STORE, term, raft.node_id)
        command = commands.import_state(snapshot, seal=seal, base=own.to_dict()) if snapshot is not None \
            else commands.seal(seal)
        command = {**commands.stamp(command, time.time()), "rid": f"seal:{seal}"}
        result = await self._commit(command, still_leader)
        if result is not None and not result.get("ok"):
            self._log.error("state_import_refused", reason=result.get("message"))
            result = await self._commit({**command, "op": "state.seal", "args": {"id": seal}, "rid": f"seal2:{seal}"},
                                        still_leader)
        if result is not None and result.get("ok") and still_leader():
            self.open_term = self.head_term = term
            self._log.info("state_sealed", seal=seal, term=term, imported=snapshot is not None)

    async def _commit(self, command: Any, still_leader: Any) -> Any:
        """Commit ``command`` while we lead, retrying an unknown outcome with the same rid."""
        payload, rid = encode(command, MAX_IMPORT_BYTES) if isinstance(command, dict) else (command, None)
        while still_leader():
            try:
                return await self._raft.commit(payload, None, rid) or {}
            except ClusterTimeout:
                await asyncio.sleep(0.05)
            except ClusterError as e:
                self._log.info("state_seal_failed", reason=str(e))
                return None
        return None
