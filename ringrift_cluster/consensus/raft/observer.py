"""Leadership for a node outside ``raft_members``: it runs no Raft, and learns who leads from
the members' ``GET /raft/status`` (a GPU worker must never vote: it once won an election and
refused every claim). Its writes go to the members through the ClusterState facade."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from ...config import ClusterConfig
from ...events import Subscription
from ...membership.base import Membership
from ...model import Leadership, LeadershipEvent
from ...peer_client import PeerClient, PeerUnreachable
from ..tracker import LeadershipTracker


class RaftObserver:
    """The Election view of a Raft client node (no vote, no log)."""

    name = "raft-observer"
    role = "follower"

    def __init__(self, config: ClusterConfig, client: PeerClient, membership: Membership) -> None:
        self._config = config
        self._client = client
        self._membership = membership
        self._tracker = LeadershipTracker()
        self._source: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._log = structlog.get_logger("ringrift.consensus.raft_observer")

    @property
    def ready(self) -> bool:
        return self._task is not None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._poll_loop(), name="raft-observer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self._tracker.close()

    def leadership(self) -> Leadership:
        return self._tracker.current

    def subscribe(self) -> Subscription[LeadershipEvent]:
        return self._tracker.subscribe()

    async def wait_for_leader(self, timeout: float) -> Leadership:
        return await self._tracker.wait_for_leader(timeout, lambda _: f"no Raft leader seen within {timeout:.1f}s")

    def describe(self) -> dict[str, Any]:
        view = self._tracker.current
        return {"backend": self.name, "leader": view.leader, "term": view.term,
                "learned_from": self._source, "raft_members": list(self._config.raft_members)}

    async def _poll_loop(self) -> None:
        while True:
            view, source = await self._ask_members()
            current = self._tracker.current
            if view is not None and (view.leader, view.term) != (current.leader, current.term):
                self._source = source
                self._log.info("leader_elected", leader_id=view.leader, term=view.term, learned_from=source)
                self._tracker.publish(view)
            await asyncio.sleep(self._config.state.tick_interval_s)

    async def _ask_members(self) -> tuple[Leadership | None, str | None]:
        """The newest term any reachable member reports (members we believe dead are skipped)."""
        members = self._membership.members()
        candidates = [n for n in self._config.raft_members
                      if n != self._config.node_id and (n not in members or members[n].is_alive)]
        timeout = self._config.election.request_timeout_s
        replies = await asyncio.gather(*(self._client.get(self._config.hosts[n].api_url, "/raft/status", timeout)
                                         for n in candidates), return_exceptions=True)
        best: tuple[Leadership | None, str | None] = (None, None)
        for node_id, reply in zip(candidates, replies):
            if isinstance(reply, PeerUnreachable) or isinstance(reply, BaseException):
                continue
            status, body = reply
            if status != 200 or not isinstance(body, dict) or not isinstance(body.get("term"), int):
                continue
            leader = body.get("leader") if body.get("leader") in self._config.raft_members else None
            if best[0] is None or body["term"] > best[0].term or (body["term"] == best[0].term and leader and not best[0].leader):
                best = (Leadership(leader=leader, term=body["term"], is_self=False), node_id)
        return best
