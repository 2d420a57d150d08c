"""Plain value types shared by every backend: node ids, members, events, leadership."""

from __future__ import annotations

import enum
import re
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

NodeId = str

_NODE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_HOST_PORT_RE = re.compile(r"^(\[[0-9a-f:]+\]|[^:\s]+):\d+$", re.IGNORECASE)


def node_id_problem(value: object) -> str | None:
    """Why ``value`` is not a node id, or None when it is one.

    Node ids are the host keys of the cluster YAML: lowercase, ordered as plain strings. A string
    shaped like ``host:port`` is an address and never a node id.
    """
    if not isinstance(value, str):
        return "a string"
    if _HOST_PORT_RE.match(value) or ":" in value:
        return "a node id, not an address like host:port"
    if not _NODE_ID_RE.match(value):
        return "a lowercase node id of letters, digits, '-', '_' or '.' (at most 63 characters)"
    return None


def is_node_id(value: object) -> bool:
    return node_id_problem(value) is None


class MemberState(str, enum.Enum):
    ALIVE = "alive"
    SUSPECT = "suspect"
    FAILED = "failed"
    LEFT = "left"


class EventKind(str, enum.Enum):
    JOINED = "joined"
    SUSPECT = "suspect"
    ALIVE = "alive"  # back from suspicion or failure (refuted)
    FAILED = "failed"
    LEFT = "left"


@dataclass(frozen=True, kw_only=True)
class Member:
    """One cluster member as a membership backend sees it. Keyed by node id, never address."""

    node_id: NodeId
    state: MemberState
    host: str = ""
    api_port: int = 0
    role: str = ""
    raft_address: str = ""
    capabilities: tuple[str, ...] = ()
    has_gpu: bool = False
    gpu_name: str = ""
    last_seen: float = 0.0  # monotonic seconds when last heard from; 0 when never
    source: str = ""  # which backend reported it (heartbeat, swim, hybrid)
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_alive(self) -> bool:
        return self.state in (MemberState.ALIVE, MemberState.SUSPECT)

    def api_url(self) -> str:
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{host}:{self.api_port}"


@dataclass(frozen=True, kw_only=True)
class MembershipEvent:
    kind: EventKind
    node_id: NodeId
    source: str
    at: float = field(default_factory=time.time)  # wall clock, for logs and APIs
    after_s: float | None = None  # silence (or suspicion) that led to this transition


@dataclass(frozen=True, kw_only=True)
class Leadership:
    """Who leads, as one node sees it. ``term`` only grows; it is the fencing epoch."""

    leader: NodeId | None
    term: int
    is_self: bool
    lease_expires: float | None = None  # wall clock; None when the backend has no lease
    fence_token: str | None = None


class ElectionOutcome(str, enum.Enum):
    WON = "won"
    LOST = "lost"
    TIMEOUT = "timeout"
    ADOPTED = "adopted"


@dataclass(frozen=True, kw_only=True)
class LeadershipEvent:
    """A change of leader as seen by this node, or the end of one election attempt."""

    leadership: Leadership
    changed: bool  # the leader (or term) differs from the previous view
    election_outcome: ElectionOutcome | None = None
    election_latency_s: float | None = None
    at: float = field(default_factory=time.time)
