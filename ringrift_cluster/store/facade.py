"""ClusterState: the one way callers (the HTTP API, the adapters, Python users) reach the
replicated state, in every mode. It stamps time, submits locally or forwards to the node that
can apply, and retries with the same request id when an outcome is unknown."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Mapping

from ..config import ClusterConfig
from ..errors import ClusterTimeout, CommandRejected, NoLeader, NotLeader
from ..model import Leadership, Member
from ..peer_client import PeerClient, PeerUnreachable
from ..state import commands
from .base import StateStore
from .forwarding import QUERIES, Forwarder

# A failed attempt is retried after the first pause, doubling up to the last. A failover's attempt
# fails the moment this node's Raft sees the leader change, and the new leader serves a few
# milliseconds later: a fixed 50 ms pause was a third of a 160 ms failover.
_RETRY_PAUSES_S = (0.005, 0.01, 0.02, 0.05)


class ClusterState:
    """Typed access to the work queue, jobs, model registry and training locks."""

    def __init__(self, config: ClusterConfig, store: StateStore | None, client: PeerClient,
                 members: Callable[[], Mapping[str, Member]],
                 leadership: Callable[[], Leadership] | None = None,
                 observe: Callable[[str, str, float], None] | None = None) -> None:
        self._config = config
        self.store = store  # None on a node that holds no state (a Raft non-member): it forwards
        self._members = members
        self._forwarder = Forwarder(config, client, members)
        # Who applies commands: the store's leader, or (without a store) what the node observes.
        self._leadership = leadership or (store.leadership if store is not None else None)
        self._observe = observe  # (op, outcome, latency_s): how metrics learn of each command

    # -- Generic -------------------------------------------------------------------------------

    async def execute(self, command: Mapping[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        """Apply one command somewhere in the cluster; returns the machine's result (which may be
        a refusal). Raises NoLeader or ClusterTimeout when it cannot get an answer in time."""
        cmd = dict(command) if "now" in command else commands.stamp(command, time.time())
        started = time.monotonic()
        deadline = started + (timeout or self._config.state.submit_timeout_s)
        # Once one attempt may have been applied (a timeout, a leader change, a forward that got
        # no answer), the outcome stays unknown whatever later attempts say: "no leader" on the
        # last retry must not be reported as "not applied".
        maybe_applied = False
        pauses = iter(_RETRY_PAUSES_S)
        pause = next(pauses)
        while True:
            remaining = deadline - time.monotonic()
            try:
                result = await self._execute_once(cmd, max(0.05, remaining))
            except (NoLeader, ClusterTimeout, PeerUnreachable) as e:
                maybe_applied = maybe_applied or not isinstance(e, NoLeader)
                if time.monotonic() + pause >= deadline:
                    self._record(cmd, "timeout" if maybe_applied else "no_leader", started)
                    if maybe_applied:
                        raise ClusterTimeout(f"outcome unknown (retry with the same request_id): {e}") from e
                    raise
            else:
                self._record(cmd, "ok" if result.get("ok") else "refused", started)
                return result
            await asyncio.sleep(pause)
            pause = next(pauses, pause)

    def _record(self, cmd: Mapping[str, Any], outcome: str, started: float) -> None:
        if self._observe is not None:
            self._observe(str(cmd.get("op")), outcome, time.monotonic() - started)

    async def _execute_once(self, cmd: dict[str, Any], timeout: float) -> dict[str, Any]:
        if self.store is not None:
            try:
                return await self.store.submit(cmd, timeout=timeout)
            except NotLeader as e:
                target = e.leader
        else:
            target = self._state_holder()
        if target is None or target == self._config.node_id:
            raise NoLeader("no node can apply commands right now")
        return await self._forwarder.submit(target, cmd, timeout)

    async def query(self, query: str, *, consistent: bool = False, timeout: float | None = None, **kwargs: Any) -> Any:
        """Call the machine's read helper ``query``; ``consistent`` makes it linearizable."""
        if query not in QUERIES:
            raise ValueError(f"unknown query {query!r}")
        name = query
        timeout = timeout or self._config.state.submit_timeout_s
        if self.store is not None:
            try:
                return await self.store.read(lambda m: getattr(m, name)(**kwargs), linearizable=consistent, timeout=timeout)
            except NotLeader as e:
                target = e.leader
        else:
            target = self._state_holder()
        if target is None or target == self._config.node_id:
            raise NoLeader("no node holds the state right now")
        return await self._forwarder.read(target, name, kwargs, consistent, timeout)

    def leader(self) -> str | None:
        """The node that applies commands, when known."""
        return self._leadership().leader if self._leadership is not None else None

    def _state_holder(self) -> str | None:
        """For a node without a store: the leader, else any live Raft member (it forwards)."""
        leader = self.leader()
        if leader is not None:
            return leader
        members = self._members()
        for node_id in self._config.raft_members:
            member = members.get(node_id)
            if member is not None and member.is_alive:
                return node_id
        return None

    @property
    def forwarded(self) -> int:
        """Calls this node passed on to the node that applies them."""
        return self._forwarder.forwarded

    # -- Typed operations (raise CommandRejected on a refusal) ---------------------------------

    async def _ok(self, command: Mapping[str, Any]) -> dict[str, Any]:
        result = await self.execute(command)
        if not result.get("ok"):
            raise CommandRejected(result.get("error", "rejected"), result.get("message", ""))
        return result

    async def add_work(self, work_id: str, work_type: str, **kw: Any) -> dict[str, Any]:
        return await self._ok(commands.add_work(work_id, work_type, **kw))

    async def claim_work(self, node_id: str, **kw: Any) -> dict[str, Any]:
        return await self._ok(commands.claim_work(node_id, **kw))

    async def start_work(self, work_id: str, claim_token: int) -> dict[str, Any]:
        return await self._ok(commands.start_work(work_id, claim_token))

    async def renew_work(self, work_id: str, claim_token: int, **kw: Any) -> dict[str, Any]:
        return await self._ok(commands.renew_work(work_id, claim_token, **kw))

    async def complete_work(self, work_id: str, claim_token: int, result: Any = None) -> dict[str, Any]:
        return await self._ok(commands.complete_work(work_id, claim_token, result))

    async def fail_work(self, work_id: str, claim_token: int, **kw: Any) -> dict[str, Any]:
        return await self._ok(commands.fail_work(work_id, claim_token, **kw))

    async def assign_job(self, job_id: str, node_id: str, job_type: str, **kw: Any) -> dict[str, Any]:
        return await self._ok(commands.assign_job(job_id, node_id, job_type, **kw))

    async def register_model(self, name: str, version: str, uri: str, checksum: str, **kw: Any) -> dict[str, Any]:
        return await self._ok(commands.register_model(name, version, uri, checksum, **kw))

    async def promote_model(self, name: str, version: str, stage: str, **kw: Any) -> dict[str, Any]:
        return await self._ok(commands.promote_model(name, version, stage, **kw))

    async def acquire_lock(self, name: str, holder: str, **kw: Any) -> dict[str, Any]:
        """Returns the lock with its ``fence_token``: pass the token to what the lock protects."""
        return await self._ok(commands.acquire_lock(name, holder, **kw))

    async def renew_lock(self, name: str, holder: str, fence_token: int, **kw: Any) -> dict[str, Any]:
        return await self._ok(commands.renew_lock(name, holder, fence_token, **kw))

    async def release_lock(self, name: str, holder: str, fence_token: int) -> dict[str, Any]:
        return await self._ok(commands.release_lock(name, holder, fence_token))

    async def release_node(self, node_id: str) -> dict[str, Any]:
        """Free the locks and requeue the claims of a node confirmed dead."""
        return await self._ok(commands.release_node(node_id))
