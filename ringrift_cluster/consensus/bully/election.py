"""Legacy consensus: Bully election among voters, held by majority voter leases.

The protocol is the host's (``/election``, ``/election/lease``, ``/coordinator``) with the fixes
of ``rules.py``: strict-majority quorum, an epoch that only grows (persisted), at most one
leader per epoch, and no voter overriding an unexpired grant. The decisions live in
``rules.py``; this module does the I/O and the timing.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path
from typing import Any, Callable

import structlog

from ...config import ClusterConfig
from ...errors import NoLeader
from ...events import EventHub, Subscription
from ...membership.base import Membership
from ...model import ElectionOutcome, Leadership, LeadershipEvent, MemberState
from ...peer_client import PeerClient
from ...quorum import has_quorum, quorum_size
from ...timeouts import within
from . import rules
from .election_file import ElectionFile
from .peers import Peers
from .voter import Voter

ROLE_LEADER, ROLE_FOLLOWER, ROLE_CANDIDATE = "leader", "follower", "candidate"


class BullyElection:
    """Leader election for ``bully`` (and ``hybrid``) consensus modes."""

    name = "bully"

    def __init__(
        self,
        config: ClusterConfig,
        client: PeerClient,
        membership: Membership,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._client = client
        self._membership = membership
        self._clock = clock
        self._wall = wall
        self._settings = config.election
        self._log = structlog.get_logger("ringrift.consensus.bully")
        self._peers = Peers(config, client, membership)
        self._voter = Voter(config, ElectionFile(Path(config.data_dir) / "election.json", clock=clock, wall=wall,
                                                 log=self._log), clock=clock, wall=wall)
        self.role = ROLE_FOLLOWER
        self._leader: str | None = None
        self._leader_epoch = 0
        self._leader_until = 0.0  # monotonic: how long we trust the current leader
        self._fence_token: str | None = None
        self._lease_id: str | None = None
        self._my_lease: rules.LeaderLease | None = None
        self._next_renew = 0.0
        self._hub: EventHub[LeadershipEvent] = EventHub()
        self._wake = asyncio.Event()
        self._coordinator_seen = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._started = False
        self.elections = {outcome.value: 0 for outcome in ElectionOutcome}
        # Set when we deferred to a greater node and no coordinator came: the next attempt goes
        # straight to the lease round (the voters still decide, so this is safe).
        self._deferral_timed_out = False

    # -- Election interface --------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._started

    async def start(self) -> None:
        self._voter.load()
        self._started = True
        self._task = asyncio.create_task(self._run(), name="bully-election")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.role == ROLE_LEADER:
            # Hand the lease back so the next leader need not wait for it to run out.
            await self._step_down("stopping", revoke_timeout=self._settings.request_timeout_s)
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._started = False
        self._hub.close()

    def leadership(self) -> Leadership:
        now = self._clock()
        if not self._leader_valid(now):
            return Leadership(leader=None, term=self._leader_epoch, is_self=False)
        remaining = self._leader_until - now
        return Leadership(
            leader=self._leader,
            term=self._leader_epoch,
            is_self=self._leader == self._config.node_id,
            lease_expires=self._wall() + remaining,
            fence_token=self._fence_token,
        )

    def subscribe(self) -> Subscription[LeadershipEvent]:
        return self._hub.subscribe()

    async def wait_for_leader(self, timeout: float) -> Leadership:
        deadline = self._clock() + timeout
        events = self.subscribe()
        try:
            while True:
                view = self.leadership()
                if view.leader is not None:
                    return view
                remaining = deadline - self._clock()
                if remaining <= 0:
                    raise NoLeader(f"no leader within {timeout:.1f}s")
                try:
                    await within(events.__anext__(), min(remaining, self._settings.check_interval_s))
                except (asyncio.TimeoutError, StopAsyncIteration):
                    pass
        finally:
            events.close()

    def describe(self) -> dict[str, Any]:
        view = self.leadership()
        return {
            "backend": self.name,
            "role": self.role,
            "leader": view.leader,
            "lease_epoch": self._leader_epoch,
            "known_epoch": self._voter.known_epoch,
            "lease_id": self._lease_id if view.leader else None,
            "lease_expires": view.lease_expires,
            "fence_token": view.fence_token,
            "is_voter": self._config.is_voter,
            "may_lead": self._config.may_lead,
            "voter_grant": self._voter.grant(),
            "elections": dict(self.elections),
        }

    # -- Handlers for the HTTP routes ----------------------------------------------------------

    def handle_election(self, candidate_id: str) -> dict[str, Any]:
        """``POST /election``: a lower candidate asks whether a greater voter is alive."""
        mine = rules.rank(self._config.node_id, self._config.preferred_leader)
        theirs = rules.rank(candidate_id, self._config.preferred_leader)
        # Answer ALIVE only when we could win: a greater node cut off from the majority that still
        # answered ALIVE would make every candidate below it defer forever.
        if self._config.may_lead and mine > theirs and has_quorum(self._config.voters, self._alive_ids()):
            if self.role == ROLE_LEADER:
                self._spawn(self._announce())
            else:
                self._wake.set()  # the Bully rule: a greater node answers and runs its own election
            return {"response": "ALIVE", "node_id": self._config.node_id, "eligible": True}
        return {"response": "OK", "node_id": self._config.node_id, "eligible": self._config.may_lead}

    def handle_lease_request(self, leader_id: str, lease_id: str, duration: float, epoch: int) -> tuple[bool, dict[str, Any]]:
        """``POST /election/lease``: grant our vote-lease, or say why not."""
        return self._voter.request(leader_id, lease_id, duration, epoch)

    def handle_lease_revoke(self, leader_id: str, lease_id: str) -> dict[str, Any]:
        """``POST /election/lease_revoke``: the holder gives its lease back."""
        reply = self._voter.revoke(leader_id, lease_id)
        if reply["revoked"]:
            self._wake.set()
        return reply

    def handle_coordinator(self, leader_id: str, lease_id: str, epoch: int, ttl: float, fence_token: str) -> tuple[bool, dict[str, Any]]:
        """``POST /coordinator``: a leader announces itself (and re-announces on every renewal)."""
        now = self._clock()
        if epoch < self._leader_epoch or (epoch == self._leader_epoch and self._leader not in (None, leader_id) and self._leader_valid(now)):
            return False, {"accepted": False, "error": "stale_epoch", "lease_epoch": self._leader_epoch, "leader_id": self._leader}
        if self.role == ROLE_LEADER and leader_id != self._config.node_id:
            # A leader with a newer epoch exists: ours can only have run out.
            self._spawn(self._step_down("superseded"))
        self._voter.saw(epoch)
        self._set_leader(leader_id, epoch, now + max(0.0, ttl), fence_token, lease_id)
        self._coordinator_seen.set()
        return True, {"accepted": True, "node_id": self._config.node_id}

    # -- The loop ------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:  # the election loop must outlive any single bad round
                self._log.exception("election_round_failed")
            try:
                await within(self._wake.wait(), self._settings.check_interval_s)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()

    async def _step(self) -> None:
        now = self._clock()
        alive = self._alive_ids()
        if self.role == ROLE_LEADER:
            if not has_quorum(self._config.voters, alive):
                await self._step_down("quorum_lost")
            elif now >= self._next_renew:
                await self._renew()
            elif self._my_lease is None or not self._my_lease.valid(now):
                await self._step_down("lease_expired")
            return
        if self._leader_valid(now):
            return
        if self._leader is not None:
            self._log.info("leader_lost", leader_id=self._leader, lease_epoch=self._leader_epoch)
            self._set_leader(None, self._leader_epoch, 0.0, None, None)
        if self._config.may_lead and has_quorum(self._config.voters, alive):
            await self._elect()

    async def _elect(self) -> None:
        started = self._clock()
        self.role = ROLE_CANDIDATE
        try:
            alive = self._alive_ids()
            higher = [n for n in rules.outranking(self._config.node_id, self._config.coordinator_nodes,
                                                  self._config.preferred_leader) if n in alive]
            if higher and not self._deferral_timed_out and await self._peers.someone_higher_answers(higher):
                self._coordinator_seen.clear()
                try:
                    await within(self._coordinator_seen.wait(), self._settings.election_timeout_s)
                except asyncio.TimeoutError:
                    pass
                adopted = self._leader_valid(self._clock())
                self._deferral_timed_out = not adopted
                self._finish(ElectionOutcome.ADOPTED if adopted else ElectionOutcome.TIMEOUT, started)
                return
            self._deferral_timed_out = False
            epoch = self._voter.next_epoch()
            for attempt in range(2):
                lease_id = rules.lease_id(self._config.node_id, self._wall(), secrets.token_hex(4))
                round_started = self._clock()
                granted, seen_epoch = await self._lease_round(epoch, lease_id)
                self._voter.saw(seen_epoch, save=True)
                won = len(granted) >= quorum_size(len(self._config.voters))
                # Won below an epoch some voter has seen: those voters would refuse us and their
                # nodes reject our announcements. Or won without our own vote: while this round
                # ran, our ledger granted another candidate this same epoch, and in a ledger an
                # epoch has one leader for good, so we could never count ourselves: every renewal
                # would need a majority of the others, and losing two of four (a one-way drop)
                # ended a leader that still reached a quorum. Either way, win again above it.
                stale = seen_epoch > epoch
                without_own_vote = self._voter.ledger is not None and self._config.node_id not in granted
                if won and (stale or (without_own_vote and attempt == 0)):
                    await self._revoke(granted, lease_id, self._settings.request_timeout_s)
                    epoch = max(seen_epoch, epoch) + 1
                    won = False  # unless the next attempt wins
                    continue
                break
            if won:
                self._become_leader(epoch, lease_id, round_started)
                self._finish(ElectionOutcome.WON, started)
                await self._announce()
            else:
                await self._revoke(granted, lease_id, self._settings.request_timeout_s)
                self._finish(ElectionOutcome.LOST, started)
        finally:
            if self.role == ROLE_CANDIDATE:
                self.role = ROLE_FOLLOWER

    async def _lease_round(self, epoch: int, lease_id: str) -> tuple[list[str], int]:
        """Ask every voter for the lease; returns who granted it and the highest epoch seen."""
        duration = self._settings.lease_duration_s

        def own_vote() -> tuple[bool, dict[str, Any]]:
            return self.handle_lease_request(self._config.node_id, lease_id, duration, epoch)

        return await self._peers.lease_round(epoch, lease_id, duration, own_vote if self._voter.ledger is not None else None)

    async def _renew(self) -> None:
        assert self._lease_id is not None
        round_started = self._clock()
        granted, seen_epoch = await self._lease_round(self._leader_epoch, self._lease_id)
        now = self._clock()
        if len(granted) >= quorum_size(len(self._config.voters)):
            self._my_lease = rules.LeaderLease.after_round(
                self._leader_epoch, self._lease_id, round_started,
                self._settings.lease_duration_s, self._settings.lease_safety_margin_s)
            self._leader_until = self._my_lease.valid_until
            self._next_renew = now + self._settings.lease_renew_interval_s
            await self._announce()
            return
        self._voter.saw(seen_epoch)
        self._log.warning("lease_renewal_failed", granted=granted, lease_epoch=self._leader_epoch)
        if self._my_lease is None or not self._my_lease.valid(now):
            await self._step_down("lease_expired")
        else:
            self._next_renew = now + self._settings.check_interval_s  # try again soon

    def _become_leader(self, epoch: int, lease_id: str, round_started: float) -> None:
        self.role = ROLE_LEADER
        self._my_lease = rules.LeaderLease.after_round(
            epoch, lease_id, round_started, self._settings.lease_duration_s, self._settings.lease_safety_margin_s)
        self._next_renew = self._clock() + self._settings.lease_renew_interval_s
        token = rules.fence_token(self._config.node_id, epoch, self._wall())
        self._set_leader(self._config.node_id, epoch, self._my_lease.valid_until, token, lease_id)

    async def _step_down(self, reason: str, revoke_timeout: float | None = None) -> None:
        if self.role != ROLE_LEADER:
            return
        lease_id = self._lease_id
        self.role = ROLE_FOLLOWER
        self._my_lease = None
        self._log.info("leader_stepped_down", reason=reason, lease_epoch=self._leader_epoch)
        if self._leader == self._config.node_id:
            self._set_leader(None, self._leader_epoch, 0.0, None, None)
        if lease_id is not None:
            coro = self._revoke(list(self._config.voters), lease_id, revoke_timeout or self._settings.request_timeout_s)
            if revoke_timeout is None:
                self._spawn(coro)
            else:
                await coro

    async def _revoke(self, voters: list[str], lease_id: str, timeout: float) -> None:
        await self._peers.revoke(voters, lease_id, timeout, lambda: self.handle_lease_revoke(self._config.node_id, lease_id))

    async def _announce(self) -> None:
        """Tell every live member (and every voter) who leads; also renews their trust in us."""
        if self.role != ROLE_LEADER or self._my_lease is None:
            return
        ttl = max(0.0, self._my_lease.valid_until - self._clock())
        body = {
            "leader_id": self._config.node_id, "lease_id": self._lease_id,
            "lease_expires": self._wall() + ttl, "lease_ttl_seconds": ttl,
            "voter_node_ids": list(self._config.voters), "lease_epoch": self._leader_epoch,
            "fence_token": self._fence_token,
        }
        targets = (self._alive_ids() | set(self._config.voters)) - {self._config.node_id}
        await self._peers.tell(sorted(targets), "/coordinator", body)

    # -- Helpers -------------------------------------------------------------------------------

    def _alive_ids(self) -> set[str]:
        alive = {n for n, m in self._membership.members().items() if m.state in (MemberState.ALIVE, MemberState.SUSPECT)}
        alive.add(self._config.node_id)
        return alive

    def _leader_valid(self, now: float) -> bool:
        if self._leader is None or now >= self._leader_until:
            return False
        if self._leader == self._config.node_id:
            return self.role == ROLE_LEADER
        member = self._membership.members().get(self._leader)
        return member is None or member.state not in (MemberState.FAILED, MemberState.LEFT)

    def _set_leader(self, leader: str | None, epoch: int, until: float, token: str | None, lease_id: str | None) -> None:
        changed = (leader, epoch) != (self._leader, self._leader_epoch)
        self._leader, self._leader_epoch, self._leader_until = leader, epoch, until
        self._fence_token, self._lease_id = token, lease_id
        if changed:
            if leader is not None:
                self._log.info("leader_elected", leader_id=leader, lease_epoch=epoch, is_self=leader == self._config.node_id)
            self._hub.publish(LeadershipEvent(leadership=self.leadership(), changed=True))

    def _finish(self, outcome: ElectionOutcome, started: float) -> None:
        latency = self._clock() - started
        self.elections[outcome.value] += 1
        self._log.info("election_finished", outcome=outcome.value, latency_s=round(latency, 3))
        self._hub.publish(LeadershipEvent(leadership=self.leadership(), changed=False,
                                          election_outcome=outcome, election_latency_s=latency))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
