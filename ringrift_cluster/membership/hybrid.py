"""Hybrid membership: several sources (SWIM and HTTP heartbeats) on ONE failure timeline.

A member is alive while any active source has it alive, and failed only when every active
source that knows it says failed (or left). A source that cannot run (its port blocked, its
engine missing) is inactive: it neither keeps members alive nor blocks a verdict, so one broken
source never turns into "everyone is dead".

Every death is recorded with the time each source noticed it: that comparison (``compare()``,
served as ``GET /swim/compare``) is how an operator judges SWIM against the heartbeats before
trusting it alone.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

import structlog

from ..errors import ClusterError
from ..events import EventHub, Subscription
from ..model import EventKind, Member, MembershipEvent, MemberState
from .base import Membership

_DOWN = (MemberState.FAILED, MemberState.LEFT)
_KIND_FOR_STATE = {
    MemberState.SUSPECT: EventKind.SUSPECT,
    MemberState.FAILED: EventKind.FAILED,
    MemberState.LEFT: EventKind.LEFT,
}


@dataclass
class _Death:
    """One member's death as the sources saw it."""

    node_id: str
    opened_at: float  # wall time the first source declared it
    noticed: dict[str, dict[str, float | None]] = field(default_factory=dict)  # source -> {at, after_s}
    combined_at: float | None = None  # wall time the hybrid view declared it
    closed_at: float | None = None  # wall time it came back (or None)

    def to_dict(self) -> dict[str, Any]:
        first = min(n["at"] for n in self.noticed.values()) if self.noticed else self.opened_at
        return {
            "node_id": self.node_id,
            "first_noticed_at": first,
            "declared_failed_at": self.combined_at,
            "came_back_at": self.closed_at,
            "sources": {
                source: {"noticed_at": n["at"], "after_first_s": round(n["at"] - first, 3), "silence_s": n["after_s"]}
                for source, n in sorted(self.noticed.items())
            },
        }


class HybridMembership:
    """Combines membership sources; the node sees one view and one event stream."""

    name = "hybrid"

    def __init__(self, sources: Sequence[Membership], *, wall: Callable[[], float] = time.time,
                 history: int = 200) -> None:
        if not sources:
            raise ValueError("hybrid membership needs at least one source")
        self._sources = list(sources)
        self._wall = wall
        self._active: dict[str, bool] = {s.name: False for s in sources}
        self._errors: dict[str, str] = {}
        self._combined: dict[str, MemberState] = {}
        self._deaths: dict[str, _Death] = {}
        self._history: deque[_Death] = deque(maxlen=history)
        self.disagreements = 0  # deaths that a source never confirmed before the member came back
        self._hub: EventHub[MembershipEvent] = EventHub()
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self._log = structlog.get_logger("ringrift.membership.hybrid")

    # -- Membership interface ------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._started

    @property
    def sources(self) -> tuple[Membership, ...]:
        return tuple(self._sources)

    async def start(self) -> None:
        for source in self._sources:
            # Subscribe before starting, so no event of the source is missed.
            events = source.subscribe()
            try:
                await source.start()
            except ClusterError as e:
                events.close()
                self._errors[source.name] = str(e)
                self._log.warning("membership_source_inactive", source=source.name, reason=str(e))
                continue
            self._active[source.name] = True
            self._tasks.append(asyncio.create_task(self._follow(source, events), name=f"hybrid-{source.name}"))
        if not any(self._active.values()):
            raise ClusterError(f"no membership source could start: {self._errors}")
        self._started = True

    async def stop(self, graceful: bool = True) -> None:
        for source in self._sources:
            if self._active.get(source.name):
                try:
                    await source.stop(graceful=graceful)
                except Exception:  # keep stopping the others
                    self._log.exception("membership_source_stop_failed", source=source.name)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self._started = False
        self._hub.close()

    def members(self) -> Mapping[str, Member]:
        views = self._views()
        out: dict[str, Member] = {}
        for node_id in set().union(*(v.keys() for v in views.values())) if views else ():
            state = self._combine(node_id, views)
            if state is None:
                continue
            # Metadata from the source that agrees with the verdict and heard the member last.
            agreeing = [v[node_id] for v in views.values() if node_id in v]
            best = max(agreeing, key=lambda m: (m.state is state, m.last_seen))
            out[node_id] = replace(best, state=state, source=self.name,
                                   meta={**best.meta, "sources": {s: v[node_id].state.value for s, v in views.items() if node_id in v}})
        return MappingProxyType(out)

    def subscribe(self) -> Subscription[MembershipEvent]:
        return self._hub.subscribe()

    def describe(self) -> dict[str, Any]:
        counts = {state.value: 0 for state in MemberState}
        for member in self.members().values():
            counts[member.state.value] += 1
        return {
            "backend": self.name,
            "started": self._started,
            "counts": counts,
            "sources": {
                s.name: {"active": self._active[s.name], "error": self._errors.get(s.name), **s.describe()}
                for s in self._sources
            },
        }

    # -- The comparison ------------------------------------------------------------------------

    def compare(self) -> dict[str, Any]:
        """Per-death detection times by source, and how often the sources disagreed."""
        deaths = [d.to_dict() for d in self._history] + [d.to_dict() for d in self._deaths.values()]
        per_source: dict[str, dict[str, Any]] = {}
        for death in deaths:
            for source, seen in death["sources"].items():
                entry = per_source.setdefault(source, {"detections": 0, "first": 0, "lag_s": []})
                entry["detections"] += 1
                entry["first"] += seen["after_first_s"] == 0
                entry["lag_s"].append(seen["after_first_s"])
        for entry in per_source.values():
            lags = sorted(entry.pop("lag_s"))
            entry["median_lag_behind_first_s"] = lags[len(lags) // 2] if lags else None
            entry["max_lag_behind_first_s"] = lags[-1] if lags else None
        return {
            "sources": {s.name: {"active": self._active[s.name]} for s in self._sources},
            "deaths": deaths,
            "per_source": per_source,
            "disagreements": self.disagreements,
        }

    # -- Internals -----------------------------------------------------------------------------

    def _views(self) -> dict[str, Mapping[str, Member]]:
        return {s.name: s.members() for s in self._sources if self._active.get(s.name)}

    @staticmethod
    def _combine(node_id: str, views: Mapping[str, Mapping[str, Member]]) -> MemberState | None:
        states = [v[node_id].state for v in views.values() if node_id in v]
        if not states:
            return None
        if MemberState.ALIVE in states:
            return MemberState.ALIVE
        if MemberState.SUSPECT in states:
            return MemberState.SUSPECT
        # Every source that knows it has it down: left if any saw it leave, else failed.
        return MemberState.LEFT if MemberState.LEFT in states else MemberState.FAILED

    async def _follow(self, source: Membership, events: Subscription[MembershipEvent]) -> None:
        async for event in events:
            self._on_source_event(source.name, event)

    def _on_source_event(self, source: str, event: MembershipEvent) -> None:
        node_id = event.node_id
        now = self._wall()
        if event.kind is EventKind.FAILED:
            death = self._deaths.setdefault(node_id, _Death(node_id, now))
            death.noticed.setdefault(source, {"at": now, "after_s": event.after_s})
        state = self._combine(node_id, self._views())
        previous = self._combined.get(node_id)
        if state is MemberState.ALIVE and event.kind in (EventKind.ALIVE, EventKind.JOINED):
            # A source hears it again: the death, if one was open, is over.
            self._close_death(node_id, now)
        if state is None or state is previous:
            return
        self._combined[node_id] = state
        if state is MemberState.ALIVE:
            kind = EventKind.JOINED if previous in (None, MemberState.LEFT) else EventKind.ALIVE
            self._close_death(node_id, now)
        else:
            kind = _KIND_FOR_STATE[state]
            if state is MemberState.FAILED and node_id in self._deaths:
                self._deaths[node_id].combined_at = now
        self._hub.publish(MembershipEvent(kind=kind, node_id=node_id, source=self.name, after_s=event.after_s))

    def _close_death(self, node_id: str, now: float) -> None:
        death = self._deaths.pop(node_id, None)
        if death is None:
            return
        death.closed_at = now
        if set(death.noticed) != {name for name, active in self._active.items() if active}:
            self.disagreements += 1  # some source never saw this death
        self._history.append(death)
