"""Quorum math, shared by the Bully election, metrics, the status document and the adapters.

A quorum is a strict majority of the configured voters (``n // 2 + 1``), so two quorums always
share a voter. Pure: no I/O, no clock.
"""

from __future__ import annotations

import enum
from typing import Iterable


def quorum_size(voter_count: int) -> int:
    """Votes needed out of ``voter_count``: a strict majority."""
    if voter_count < 1:
        raise ValueError("a cluster needs at least one voter")
    return voter_count // 2 + 1


def alive_voters(voters: Iterable[str], alive: Iterable[str]) -> int:
    alive_set = set(alive)
    return sum(1 for v in set(voters) if v in alive_set)


def has_quorum(voters: Iterable[str], alive: Iterable[str]) -> bool:
    voters = list(voters)
    return bool(voters) and alive_voters(voters, alive) >= quorum_size(len(voters))


class QuorumHealth(str, enum.Enum):
    HEALTHY = "healthy"  # more than one voter to spare
    DEGRADED = "degraded"  # one voter to spare
    MINIMUM = "minimum"  # exactly a quorum: one more loss and it is gone
    LOST = "lost"

    @property
    def level(self) -> int:
        """The numeric level dashboards chart: 3 healthy .. 0 lost."""
        return {"healthy": 3, "degraded": 2, "minimum": 1, "lost": 0}[self.value]


def quorum_health(alive_voter_count: int, voter_count: int) -> QuorumHealth:
    if voter_count < 1:
        return QuorumHealth.LOST
    need = quorum_size(voter_count)
    if alive_voter_count < need:
        return QuorumHealth.LOST
    if alive_voter_count == need:
        return QuorumHealth.MINIMUM
    if alive_voter_count == need + 1:
        return QuorumHealth.DEGRADED
    return QuorumHealth.HEALTHY


__all__ = ["QuorumHealth", "alive_voters", "has_quorum", "quorum_health", "quorum_size"]
