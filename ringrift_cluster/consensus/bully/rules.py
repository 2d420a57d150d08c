"""The pure rules of the legacy Bully election with voter leases.

No I/O and no clock: every function takes ``now`` (monotonic seconds) so the rules are tested on
a fake clock. Three facts make split-brain impossible here, where the host had it:

- a quorum is a strict majority of the voters (``quorum.py``), so two quorums always share a voter;
- a voter grants a given epoch to at most one leader, and never to anyone while another leader's
  grant is unexpired (a higher epoch does not override an unexpired grant: that would let two
  leaders hold valid majorities at once);
- a leader trusts its lease for less time than the voters grant it (``margin``), so it stops
  acting as leader before any voter could grant the lease to someone else.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable

from ... import mutations


def rank(node_id: str, preferred: str | None) -> tuple[bool, str]:
    """Bully order: the preferred leader first, then the greatest id in plain string order."""
    return (node_id == preferred, node_id)


def outranking(node_id: str, coordinators: Iterable[str], preferred: str | None) -> list[str]:
    """The coordinators that rank above ``node_id`` (they win the election over it)."""
    mine = rank(node_id, preferred)
    return sorted((c for c in coordinators if rank(c, preferred) > mine), key=lambda c: rank(c, preferred), reverse=True)


@dataclass(frozen=True)
class Grant:
    leader_id: str
    lease_id: str
    epoch: int
    expires: float  # monotonic seconds on the voter


@dataclass(frozen=True)
class Decision:
    granted: bool
    reason: str  # "granted" | "renewed" | "lease_already_granted" | "stale_epoch"
    grant: Grant | None  # the grant in force after the decision
    epoch: int  # the highest epoch this voter has granted


class VoterLedger:
    """A voter's memory of the lease it granted. Persist ``highest_epoch`` and ``grant``."""

    def __init__(self, highest_epoch: int = 0, grant: Grant | None = None) -> None:
        self.highest_epoch = highest_epoch
        self.grant = grant

    def current(self, now: float) -> Grant | None:
        """The unexpired grant, if any."""
        return self.grant if self.grant is not None and now < self.grant.expires else None

    def request(self, leader_id: str, lease_id: str, epoch: int, duration: float, now: float) -> Decision:
        held = self.current(now)
        if held is not None and held.leader_id != leader_id and not mutations.active("bully-double-grant"):
            return Decision(False, "lease_already_granted", held, self.highest_epoch)
        if epoch < self.highest_epoch:
            return Decision(False, "stale_epoch", held, self.highest_epoch)
        if epoch == self.highest_epoch and self.grant is not None and self.grant.leader_id != leader_id:
            # This epoch already belongs to another leader (whose lease has run out): one leader
            # per epoch, so the newcomer must come back with a higher one.
            return Decision(False, "stale_epoch", held, self.highest_epoch)
        renewed = held is not None and held.epoch == epoch and held.lease_id == lease_id
        self.highest_epoch = epoch
        self.grant = Grant(leader_id, lease_id, epoch, now + duration)
        return Decision(True, "renewed" if renewed else "granted", self.grant, epoch)

    def revoke(self, leader_id: str, lease_id: str, now: float) -> bool:
        """The holder gives its lease back (step-down, lost election): others may take it now."""
        held = self.current(now)
        if held is None or held.leader_id != leader_id or held.lease_id != lease_id:
            return False
        self.grant = replace(held, expires=now)
        return True


@dataclass(frozen=True)
class LeaderLease:
    """What a leader may rely on after a lease round started at ``round_started``."""

    epoch: int
    lease_id: str
    valid_until: float  # monotonic; the leader stops leading at this instant

    @classmethod
    def after_round(cls, epoch: int, lease_id: str, round_started: float, duration: float, margin: float) -> "LeaderLease":
        # Voters started their grants when they received the request, which is after
        # ``round_started``; the margin covers clock-rate differences on top of that.
        return cls(epoch, lease_id, round_started + duration - margin)

    def valid(self, now: float) -> bool:
        return now < self.valid_until


def lease_id(node_id: str, unix_ts: float, hex8: str) -> str:
    """The host's lease id format: ``{node_id}_{unix_ts}_{8 hex}``."""
    return f"{node_id}_{int(unix_ts)}_{hex8}"


def fence_token(node_id: str, epoch: int, unix_ts: float) -> str:
    """The host's fence token format: ``{node_id}:{epoch}:{ts}``."""
    return f"{node_id}:{epoch}:{int(unix_ts)}"
