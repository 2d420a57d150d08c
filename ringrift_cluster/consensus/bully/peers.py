"""What the Bully election asks of the other nodes, over HTTP: is a greater node alive, a lease
round among the voters, giving a lease back, and announcing the leader. No decisions here: the
election (``election.py``) and the rules (``rules.py``) make them."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Optional

from ...config import ClusterConfig
from ...membership.base import Membership
from ...peer_client import PeerClient, PeerUnreachable
from ...quorum import quorum_size

OwnVote = Callable[[], "tuple[bool, dict[str, Any]]"]


class Peers:
    def __init__(self, config: ClusterConfig, client: PeerClient, membership: Membership) -> None:
        self._config = config
        self._client = client
        self._membership = membership

    async def post(self, node_id: str, path: str, body: dict[str, Any], timeout: float | None = None) -> tuple[int, Any]:
        host = self._config.hosts.get(node_id)
        member = self._membership.members().get(node_id)
        if host is not None:
            url = host.api_url
        elif member is not None:
            url = member.api_url()
        else:
            raise PeerUnreachable(f"no address known for {node_id}")
        return await self._client.post(url, path, body, timeout or self._config.election.request_timeout_s)

    async def someone_higher_answers(self, higher: list[str]) -> bool:
        replies = await asyncio.gather(
            *(self.post(n, "/election", {"candidate_id": self._config.node_id}) for n in higher),
            return_exceptions=True,
        )
        return any(isinstance(r, tuple) and r[0] == 200 and isinstance(r[1], dict)
                   and r[1].get("response") == "ALIVE" for r in replies)

    async def lease_round(self, epoch: int, lease_id: str, duration: float,
                          own_vote: Optional[OwnVote]) -> tuple[list[str], int]:
        """Ask every voter for the lease; returns who granted it and the highest epoch seen.
        ``own_vote`` (None: this node is no voter) asks this node's own ledger."""
        me = self._config.node_id
        body = {"leader_id": me, "lease_id": lease_id, "lease_duration": duration, "lease_epoch": epoch}

        async def ask(voter: str) -> tuple[bool, int]:
            status, reply = await self.post(voter, "/election/lease", body)
            if not isinstance(reply, dict):
                return False, 0
            seen = reply.get("lease_epoch", 0)
            return status == 200 and reply.get("granted") is True, seen if isinstance(seen, int) else 0

        others = [v for v in self._config.voters if v != me]
        results = await asyncio.gather(*(ask(v) for v in others), return_exceptions=True)
        granted, seen_epoch = [], 0
        for voter, result in zip(others, results):
            if isinstance(result, tuple):
                ok, seen = result
                seen_epoch = max(seen_epoch, seen)
                if ok:
                    granted.append(voter)
        # Our own vote last, and only when it completes a majority: a candidate that cannot win
        # must not burn epochs in its own ledger (that is how partitioned nodes inflated them).
        if own_vote is not None and len(granted) + 1 >= quorum_size(len(self._config.voters)):
            ok, reply = own_vote()
            seen_epoch = max(seen_epoch, int(reply.get("lease_epoch", 0)))
            if ok:
                granted.append(me)
        return granted, seen_epoch

    async def revoke(self, voters: list[str], lease_id: str, timeout: float, revoke_own: Callable[[], Any]) -> None:
        body = {"leader_id": self._config.node_id, "lease_id": lease_id}

        async def one(voter: str) -> None:
            if voter == self._config.node_id:
                revoke_own()
            else:
                await self.post(voter, "/election/lease_revoke", body, timeout)

        await asyncio.gather(*(one(v) for v in voters), return_exceptions=True)

    async def tell(self, targets: list[str], path: str, body: dict[str, Any]) -> None:
        """``body`` to every target at once; who did not answer is not retried."""
        await asyncio.gather(*(self.post(n, path, body) for n in targets), return_exceptions=True)


__all__ = ["Peers"]
