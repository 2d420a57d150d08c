"""The membership interface every backend implements."""

from __future__ import annotations

from typing import Any, Mapping, Protocol, runtime_checkable

from ..events import Subscription
from ..model import Member, MembershipEvent, NodeId


@runtime_checkable
class Membership(Protocol):
    """Who is alive. Members are keyed by node id; an address never appears as an id."""

    name: str  # "heartbeat", "swim", "hybrid"

    async def start(self) -> None:
        """Start probing; returns once the backend runs (it may not have found peers yet)."""

    async def stop(self, graceful: bool = True) -> None:
        """Stop; when graceful, tell peers we are leaving so they report ``left``."""

    def members(self) -> Mapping[NodeId, Member]:
        """An immutable snapshot of the other members, by node id (self excluded)."""

    def subscribe(self) -> Subscription[MembershipEvent]:
        """Events (joined, suspect, alive, failed, left), once per transition."""

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary for the status API."""

    @property
    def ready(self) -> bool:
        """True once the backend runs."""


@runtime_checkable
class Comparison(Protocol):
    """A membership built from several sources that can say where they disagreed (hybrid)."""

    def compare(self) -> dict[str, Any]:
        """When each source noticed each death, and their disagreements."""
