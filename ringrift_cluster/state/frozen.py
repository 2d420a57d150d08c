"""A machine's state frozen at one instant (``StateMachine.freeze``): immutable, readable on any
thread, so snapshots and exports are built off the engine's thread."""

from __future__ import annotations

from typing import Any, Callable

from ._common import clone
from .jobs import Jobs
from .locks import Locks
from .models import Models
from .work_queue import WorkQueue


class FrozenState:
    """A machine's state at one instant (see ``StateMachine.freeze``); immutable, any thread."""

    __slots__ = ("_parts",)

    def __init__(self, parts: dict[str, Any]) -> None:
        self._parts = parts

    @property
    def changes(self) -> int:
        return self._parts["counters"]["change"]

    def snapshot(self, copy: bool = True) -> dict[str, Any]:
        """``StateMachine.snapshot()`` as of the freeze. ``copy=False`` shares the records
        instead of copying them: only for a consumer that never mutates (a pickler)."""
        return self._build(clone if copy else _same)

    def layout(self) -> dict[str, Any]:
        """The snapshot's shape in O(1) per map: its large maps are left as ``Frozen`` views
        (each yields ``items()``), for a writer that streams them instead of building dicts."""
        return self._build(None)

    def _build(self, keep: Callable[[Any], Any] | None) -> dict[str, Any]:
        p = self._parts
        return {
            "format": p["format"],
            "limits": dict(p["limits"]),
            "clock": p["clock"],
            "counters": dict(p["counters"]),
            "seals": [list(seal) for seal in p["seals"]],
            "dedup": p["dedup"] if keep is None else {rid: keep(e) for rid, e in p["dedup"].items()},
            "work": WorkQueue.thaw(p["work"], keep),
            "jobs": Jobs.thaw(p["jobs"], keep),
            "models": Models.thaw(p["models"], keep),
            "locks": Locks.thaw(p["locks"], keep),
        }


def _same(value: Any) -> Any:
    return value


__all__ = ["FrozenState"]
