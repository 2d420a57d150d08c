"""What the state leader does on its own: requeue the work and free the locks of members that
membership confirms failed (not merely suspect), once per failure."""

from __future__ import annotations

import asyncio

import structlog

from ..errors import ClusterError
from ..membership.base import Membership
from ..model import EventKind, MemberState
from ..state import commands
from .facade import ClusterState


class ReleaseFailedMembers:
    """Proposes ``node.release`` for each failed member, from the leader only.

    Driven by membership events, plus a periodic sweep so that a node that becomes leader after
    the failure event still releases what it missed. Releasing twice is harmless (nothing left
    to release), so the bookkeeping only avoids needless proposals."""

    def __init__(self, node_id: str, state: ClusterState, membership: Membership, sweep_s: float) -> None:
        self._node_id = node_id
        self._state = state
        self._membership = membership
        self._sweep_s = sweep_s
        self._released: set[str] = set()
        self._log = structlog.get_logger("ringrift.store.duties")

    async def run(self) -> None:
        events = self._membership.subscribe()
        next_event = asyncio.ensure_future(events.__anext__())
        try:
            while True:
                done, _ = await asyncio.wait({next_event}, timeout=self._sweep_s)
                if next_event in done:
                    try:
                        event = next_event.result()
                    except StopAsyncIteration:
                        return
                    if event.kind in (EventKind.ALIVE, EventKind.JOINED):
                        self._released.discard(event.node_id)
                    next_event = asyncio.ensure_future(events.__anext__())
                await self._release_failed()
        finally:
            next_event.cancel()
            events.close()

    async def _release_failed(self) -> None:
        if self._state.leader() != self._node_id:
            return
        for node_id in list(self._membership.members()):
            # Re-read the verdict right before each proposal: a member may be back already.
            member = self._membership.members().get(node_id)
            if self._state.leader() != self._node_id:
                return
            if member is not None and member.state is MemberState.FAILED and node_id not in self._released:
                try:
                    result = await self._state.execute(commands.release_node(node_id))
                except ClusterError as e:
                    self._log.warning("release_failed_member_deferred", node_id=node_id, reason=str(e))
                    return
                self._released.add(node_id)
                self._log.info("failed_member_released", node_id=node_id, requeued=result.get("requeued"),
                               locks_released=result.get("locks_released"))
