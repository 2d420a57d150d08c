"""The state-store interface: the legacy journal and Raft both serve it."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Protocol, TypeVar, runtime_checkable

from ..model import Leadership

T = TypeVar("T")


@runtime_checkable
class StateStore(Protocol):
    """Applies state-machine commands durably and serves reads of the machine."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def leadership(self) -> Leadership:
        """Who may apply commands now (writes go there)."""

    async def submit(self, command: Mapping[str, Any], timeout: float | None = None) -> Any:
        """Make ``command`` durable, apply it, return the machine's result.

        Raises NoLeader, NotLeader(leader) (the caller forwards), or ClusterTimeout (the
        command may have been applied: retry with the same rid)."""

    async def read(self, fn: Callable[[Any], T], *, linearizable: bool = False,
                   timeout: float | None = None) -> T:
        """Run ``fn(machine)``; with ``linearizable`` it sees every write acknowledged before."""

    async def read_local(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn`` on this node's own copy, whoever leads (exports, reconciles)."""

    def sealed_since_start(self) -> bool:
        """Whether a leader sealed this store's state since this process started (so the
        switch this node came from has been reconciled; see ``reconcile.py``)."""

    async def final_snapshot(self) -> dict[str, Any] | None:
        """At a graceful stop, before ``stop()``: stop taking writes and return the state this
        node holds (None when it holds none), which becomes its export."""

    def import_snapshot(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        """A departing leader's state; taken only if its lineage is ahead (``lineage.py``)."""

    def describe(self) -> dict[str, Any]: ...

    @property
    def ready(self) -> bool: ...
