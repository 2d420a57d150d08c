"""The plan: which backends a node composes, resolved once from the modes when the config loads.

Nothing downstream reads the mode strings: ``node.py`` maps each enum to a class in one table.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class MembershipMode(str, enum.Enum):
    HTTP = "http"
    SWIM = "swim"
    HYBRID = "hybrid"


class ConsensusMode(str, enum.Enum):
    BULLY = "bully"
    RAFT = "raft"
    HYBRID = "hybrid"


class MembershipBackend(str, enum.Enum):
    HEARTBEAT = "heartbeat"
    SWIM = "swim"


class ElectionBackend(str, enum.Enum):
    """Who leads."""

    BULLY = "bully"
    RAFT = "raft"
    RAFT_OBSERVER = "raft_observer"  # outside raft_members: follows the members' Raft leader


class StoreBackend(str, enum.Enum):
    """Where this node's copy of the replicated state lives."""

    JOURNAL = "journal"  # held by the Bully leader, journaled to its disk
    RAFT = "raft"
    NONE = "none"  # outside raft_members: no copy, every state call is forwarded


@dataclass(frozen=True)
class Plan:
    membership: tuple[MembershipBackend, ...]  # several: one failure timeline (hybrid)
    election: ElectionBackend
    store: StoreBackend

    @property
    def leader_backend(self) -> str:
        """Who leads the cluster: "bully" | "raft" (an observer follows Raft)."""
        return "bully" if self.election is ElectionBackend.BULLY else "raft"

    @property
    def state_backend(self) -> str:
        """Where the cluster's state lives: "journal" | "raft" (no copy here is only under Raft)."""
        return "journal" if self.store is StoreBackend.JOURNAL else "raft"


_MEMBERSHIP = {
    MembershipMode.HTTP: (MembershipBackend.HEARTBEAT,),
    MembershipMode.SWIM: (MembershipBackend.SWIM,),
    MembershipMode.HYBRID: (MembershipBackend.SWIM, MembershipBackend.HEARTBEAT),
}


def resolve_plan(membership: MembershipMode, consensus: ConsensusMode, *, raft_member: bool) -> Plan:
    """bully: the Bully leader leads and journals the state; raft: Raft does both (nodes outside
    raft_members observe and forward); hybrid: the Bully leader leads, Raft holds the state."""
    raft_store = StoreBackend.RAFT if raft_member else StoreBackend.NONE
    if consensus is ConsensusMode.BULLY:
        election, store = ElectionBackend.BULLY, StoreBackend.JOURNAL
    elif consensus is ConsensusMode.RAFT:
        election = ElectionBackend.RAFT if raft_member else ElectionBackend.RAFT_OBSERVER
        store = raft_store
    else:
        election, store = ElectionBackend.BULLY, raft_store
    return Plan(membership=_MEMBERSHIP[membership], election=election, store=store)


__all__ = ["ConsensusMode", "ElectionBackend", "MembershipBackend", "MembershipMode", "Plan", "StoreBackend",
           "resolve_plan"]
