"""The values that cross the Raft bridge (``bridge.py``): pysyncobj's failure codes and
roles as enums, the barrier entry, the engine's status snapshot (and how it is read off a SyncObj)
and its error. Plain values: pysyncobj never imported, no threads, so the rest of the backend can use them without the engine."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Mapping


class FailReason(enum.IntEnum):
    """pysyncobj's FAIL_REASON codes (0.3.17), as a real enum."""

    SUCCESS = 0
    QUEUE_FULL = 1
    MISSING_LEADER = 2
    DISCARDED = 3
    NOT_LEADER = 4
    LEADER_CHANGED = 5
    REQUEST_DENIED = 6
    UNKNOWN_OUTCOME = 7


class RaftRole(enum.IntEnum):
    """pysyncobj's _RAFT_STATE."""

    FOLLOWER = 0
    CANDIDATE = 1
    LEADER = 2


# An entry that is not JSON: the consumer answers it without touching the state machine. It is
# the commit barrier behind linearizable reads.
BARRIER = "\x00barrier"
BARRIER_RESULT: Mapping[str, Any] = {"ok": True, "barrier": True}


@dataclass(frozen=True)
class EngineStatus:
    """What the tick thread last saw. Immutable; replaced as a whole (one reference swap)."""

    published: bool = False  # False until the tick thread published once
    role: RaftRole = RaftRole.FOLLOWER
    leader: str | None = None  # pysyncobj address; raft.py maps it to a node id
    term: int = 0
    has_quorum: bool = False
    commit_index: int = 0
    applied_index: int = 0
    ready: bool = False  # pysyncobj's isReady(): caught up once
    connected: Mapping[str, bool] = field(default_factory=dict)  # other members by address
    log_size: int = 0
    tick_thread_alive: bool = False
    at: float = 0.0  # time.monotonic() of publication

    def leadership_key(self) -> tuple[Any, ...]:
        return (self.role, self.leader, self.term, self.has_quorum)


def read_status(so: Any, role: RaftRole, now: float) -> EngineStatus:
    """A started SyncObj's fields as one ``EngineStatus`` (on the tick thread, from the bridge;
    ``role`` is the last one pysyncobj reported, LEADER whenever it leads)."""
    leader = so._getLeader()
    return EngineStatus(
        published=True,
        role=RaftRole.LEADER if so._isLeader() else role,
        leader=None if leader is None else str(leader.address),
        term=int(so.raftCurrentTerm),
        has_quorum=bool(so.hasQuorum),
        commit_index=int(so.raftCommitIndex),
        applied_index=int(so.raftLastApplied),
        ready=bool(so.isReady()),
        connected={n.address: so.isNodeConnected(n) for n in so.otherNodes},
        log_size=int(so._getRaftLogSize()),
        tick_thread_alive=True,
        at=now,
    )


class EngineError(Exception):
    """Raised by RaftEngine; raft.py translates it (never leaves the consensus package)."""


__all__ = ["BARRIER", "BARRIER_RESULT", "EngineError", "EngineStatus", "FailReason", "RaftRole", "read_status"]
