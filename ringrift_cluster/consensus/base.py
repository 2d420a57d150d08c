"""The election interface every consensus backend implements: who leads."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ..events import Subscription
from ..model import Leadership, LeadershipEvent


@runtime_checkable
class Election(Protocol):
    """Who leads (by node id, with a term that only grows). Where the replicated state lives is
    the ``StateStore``'s role (``store/``)."""

    name: str  # "bully", "raft"
    role: str  # this node's part in the election: "leader", "follower" or "candidate"

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def leadership(self) -> Leadership:
        """This node's current view of the leader."""

    def subscribe(self) -> Subscription[LeadershipEvent]:
        """Leader changes and election outcomes."""

    async def wait_for_leader(self, timeout: float) -> Leadership:
        """Return once a leader is known; raises ``NoLeader`` after ``timeout`` seconds."""

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary for the status API."""

    @property
    def ready(self) -> bool:
        """True once the backend runs."""
