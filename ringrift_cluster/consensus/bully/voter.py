"""A Bully voter's half: its ledger of lease grants (``rules.VoterLedger``), the highest epoch it
has seen, and both kept across restarts (``election_file.py``), so that it never grants an epoch
twice and its candidacies start above every epoch it saw."""

from __future__ import annotations

from typing import Any, Callable

from ...config import ClusterConfig
from . import rules
from .election_file import ElectionFile


class Voter:
    """``ledger`` is None on a node that is no voter (it still tracks the epochs it sees)."""

    def __init__(self, config: ClusterConfig, file: ElectionFile, *, clock: Callable[[], float],
                 wall: Callable[[], float]) -> None:
        self._config = config
        self._file = file
        self._clock = clock
        self._wall = wall
        self.ledger = rules.VoterLedger() if config.is_voter else None
        self.known_epoch = 0

    def load(self) -> None:
        known = self._file.load(self.ledger)
        if known is not None:
            self.known_epoch = known
        # The election's leader epoch stays 0: the epoch we knew need not be any leader's (lost
        # candidacies), and a leader elected meanwhile must be accepted. Candidacies still start
        # above it.

    def save(self) -> None:
        self._file.save(self.known_epoch, self.ledger)

    def saw(self, epoch: int, *, save: bool = False) -> None:
        self.known_epoch = max(self.known_epoch, epoch)
        if save:
            self.save()

    def next_epoch(self) -> int:
        """A candidacy's epoch: above every epoch seen and every epoch this ledger granted."""
        return max(self.known_epoch, self.ledger.highest_epoch if self.ledger else 0) + 1

    def request(self, leader_id: str, lease_id: str, duration: float, epoch: int) -> tuple[bool, dict[str, Any]]:
        """``POST /election/lease``: grant our vote-lease, or say why not."""
        me = self._config.node_id
        if self.ledger is None:
            return False, {"granted": False, "error": "not_a_voter", "voter_id": me}
        if leader_id not in self._config.coordinator_nodes:
            return False, {"granted": False, "error": "not_allowed_to_lead", "voter_id": me}
        decision = self.ledger.request(leader_id, lease_id, epoch, duration, self._clock())
        self.saw(decision.epoch, save=True)
        body: dict[str, Any] = {"granted": decision.granted, "voter_id": me, "lease_epoch": decision.epoch}
        if decision.granted:
            body.update(lease_expires=self._wall() + duration, lease_ttl_seconds=duration)
        else:
            body["error"] = decision.reason
            if decision.grant is not None:
                body["current_leader"] = decision.grant.leader_id
        return decision.granted, body

    def revoke(self, leader_id: str, lease_id: str) -> dict[str, Any]:
        """``POST /election/lease_revoke``: the holder gives its lease back."""
        revoked = self.ledger is not None and self.ledger.revoke(leader_id, lease_id, self._clock())
        if revoked:
            self.save()
        return {"revoked": revoked, "voter_id": self._config.node_id}

    def grant(self) -> dict[str, Any] | None:
        """The unexpired grant this voter holds, for ``describe()``."""
        grant = self.ledger.current(self._clock()) if self.ledger else None
        return None if grant is None else {
            "leader_id": grant.leader_id, "lease_id": grant.lease_id, "epoch": grant.epoch,
            "expires_in_s": round(grant.expires - self._clock(), 3),
        }


__all__ = ["Voter"]
