"""What the API is written against: the node's roles, one typed aiohttp ``AppKey`` each.

The node hands ``create_app`` a ``Parts`` (its roles, built from the plan); every route reads
the role it needs (``request.app[MEMBERSHIP]``, ``request.app[STORE]``, ...), never the node.
So the API depends on the roles' interfaces and the node depends on the API, not both ways.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from ..config import ClusterConfig
from ..consensus.base import Election
from ..membership.base import Membership
from ..observability import NodeMetrics
from ..store.base import StateStore
from ..store.facade import ClusterState

if TYPE_CHECKING:  # the legacy peer handlers and the engine views: concrete backends
    from ..consensus.bully import BullyElection
    from ..consensus.raft import RaftConsensus
    from ..discovery import Discovery
    from ..membership.heartbeat import HeartbeatMembership
    from ..membership.swim import SwimMembership
    from ..store.handoff import Handoff


class NodeView(Protocol):
    """What only the node as a whole answers: its role, whether every part runs, its age."""

    version: str

    @property
    def role(self) -> str: ...

    @property
    def ready(self) -> bool: ...

    @property
    def uptime_s(self) -> float: ...

    def refresh_metrics(self) -> None:
        """Bring the gauges up to date before an exposition."""


@dataclass(frozen=True, kw_only=True)
class Parts:
    """The node's roles, as the API sees them."""

    node: NodeView
    config: ClusterConfig
    membership: Membership
    election: Election  # who leads
    state: ClusterState  # the replicated state, reached from any node
    store: StateStore | None  # this node's own copy (None: it forwards everything)
    handoff: "Handoff"  # what this node holds across runs and modes (/state/candidate)
    metrics: NodeMetrics
    discovery: "Discovery"
    swim: "SwimMembership | None"  # the SWIM view, in every membership mode it runs
    raft: "RaftConsensus | None"  # this node's Raft replica, on a Raft member
    bully: "BullyElection | None"  # the legacy election's peer handlers
    heartbeat: "HeartbeatMembership | None"  # the legacy membership's peer handler


NODE: web.AppKey[NodeView] = web.AppKey("node", object)  # type: ignore[arg-type]
CONFIG: web.AppKey[ClusterConfig] = web.AppKey("config", ClusterConfig)
MEMBERSHIP: web.AppKey[Membership] = web.AppKey("membership", object)  # type: ignore[arg-type]
ELECTION: web.AppKey[Election] = web.AppKey("election", object)  # type: ignore[arg-type]
STATE: web.AppKey[ClusterState] = web.AppKey("state", ClusterState)
STORE: web.AppKey["StateStore | None"] = web.AppKey("store", object)  # type: ignore[arg-type]
HANDOFF: web.AppKey["Handoff"] = web.AppKey("handoff", object)  # type: ignore[arg-type]
METRICS: web.AppKey[NodeMetrics] = web.AppKey("metrics", NodeMetrics)
DISCOVERY: web.AppKey["Discovery"] = web.AppKey("discovery", object)  # type: ignore[arg-type]
SWIM: web.AppKey["SwimMembership | None"] = web.AppKey("swim", object)  # type: ignore[arg-type]
RAFT: web.AppKey["RaftConsensus | None"] = web.AppKey("raft", object)  # type: ignore[arg-type]
BULLY: web.AppKey["BullyElection | None"] = web.AppKey("bully", object)  # type: ignore[arg-type]
HEARTBEAT: web.AppKey["HeartbeatMembership | None"] = web.AppKey("heartbeat", object)  # type: ignore[arg-type]

_KEYS: dict[str, web.AppKey[Any]] = {
    "node": NODE, "config": CONFIG, "membership": MEMBERSHIP, "election": ELECTION, "state": STATE, "store": STORE,
    "handoff": HANDOFF, "metrics": METRICS, "discovery": DISCOVERY, "swim": SWIM, "raft": RAFT, "bully": BULLY,
    "heartbeat": HEARTBEAT,
}


def install(app: web.Application, parts: Parts) -> None:
    """One key per role."""
    for f in fields(parts):
        app[_KEYS[f.name]] = getattr(parts, f.name)


__all__ = [
    "BULLY", "CONFIG", "DISCOVERY", "ELECTION", "HANDOFF", "HEARTBEAT", "MEMBERSHIP", "METRICS", "NODE", "NodeView",
    "Parts", "RAFT", "STATE", "STORE", "SWIM", "install",
]
