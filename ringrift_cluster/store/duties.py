"""What the state leader does on its own: requeue the work and free the locks of members that
membership confirms failed (not merely suspect), once per failure; keep the replicated state's
retention bounds the configured ones."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from ..errors import ClusterError
from ..membership.base import Membership
from ..model import EventKind, MemberState
from ..state import Limits, commands
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


class KeepConfiguredLimits:
    """Proposes ``state.limits`` from the leader whenever the replicated state's retention bounds
    differ from this node's ``state.*`` settings.

    Every replica must compact alike, so no node applies its settings locally: they enter the
    state through the log (or the legacy journal) like any write, and snapshots carry them.
    Checked every ``every_s`` while this node leads, because a leader change or a state import
    can bring other bounds."""

    def __init__(self, node_id: str, state: ClusterState, store: Any, wanted: Limits, every_s: float) -> None:
        self._node_id = node_id
        self._state = state
        self._store = store
        self._wanted = wanted
        self._every_s = every_s
        self._log = structlog.get_logger("ringrift.store.duties")

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._every_s)
            try:
                await self.check()
            except ClusterError as e:  # no leader yet, a timeout: the next round tries again
                self._log.debug("state_limits_deferred", reason=str(e))
            except Exception:  # a bug must not end the duty for the life of the node
                self._log.exception("state_limits_check_failed")

    async def check(self) -> bool:
        """Propose the configured bounds if this node leads and the state holds others; True
        when a proposal was applied."""
        if self._state.leader() != self._node_id:
            return False
        current = await self._store.read_local(lambda m: m.limits)
        if current == self._wanted:
            return False
        result = await self._state.execute(commands.set_limits(self._wanted.to_dict()))
        if not result.get("ok"):
            self._log.error("state_limits_refused", reason=result.get("message"))
            return False
        self._log.info("state_limits_set", old=current.to_dict(), new=self._wanted.to_dict())
        return True
