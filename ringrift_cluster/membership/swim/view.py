"""The stable view published by the SWIM backend, derived from swim-p2p's raw member states.

Pure and clock-injected (no library, no I/O): fed a raw observation per node id every tick, it
decides which transitions subscribers see.

* raw ALIVE                        -> ``alive`` (``joined`` the first time, or after ``left``)
* raw SUSPECT for at least ``suspect_report_after_s`` -> ``suspect``; a shorter suspicion that
  ends ALIVE is a *raw flap*, counted and never published
* raw DEAD for at least ``failed_confirm_s`` -> ``failed``; with the leave marker -> ``left``
* ``failed`` and ``left`` end only with raw ALIVE (the library's occasional probe of a dead member
  turns it SUSPECT and back to DEAD: not a transition)

A member first seen already DEAD or LEFT enters the snapshot silently; subscribers always see a
``joined`` first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

from ... import mutations
from ...model import EventKind, MemberState, NodeId

RAW_ALIVE = "alive"
RAW_SUSPECT = "suspect"
RAW_DEAD = "dead"


@dataclass(frozen=True)
class RawObservation:
    state: str  # RAW_ALIVE | RAW_SUSPECT | RAW_DEAD
    left: bool = False


@dataclass
class _Track:
    published: Optional[MemberState] = None
    announced: bool = False  # subscribers have seen a ``joined``
    raw: str = ""
    raw_since: float = 0.0
    down_since: Optional[float] = None  # when raw last left ALIVE
    dead_while_down: bool = False  # raw DEAD at some point since raw left ALIVE
    state_since: float = 0.0  # when the published state began


@dataclass(frozen=True)
class Transition:
    kind: EventKind
    node_id: NodeId
    after_s: Optional[float]


class SwimView:
    def __init__(self, suspect_report_after_s: float, failed_confirm_s: float = 0.0) -> None:
        if mutations.active("swim-undamped"):
            suspect_report_after_s = failed_confirm_s = 0.0
        self.suspect_report_after_s = suspect_report_after_s
        self.failed_confirm_s = failed_confirm_s
        self._tracks: dict[NodeId, _Track] = {}
        self.raw_transitions = 0
        self.raw_flaps = 0
        self.raw_dead_flaps = 0
        self.refutations = 0
        self.failures_detected = 0
        self.leaves_detected = 0

    def states(self) -> dict[NodeId, tuple[MemberState, float]]:
        """Published state and since when, for every member in the snapshot."""
        return {n: (t.published, t.state_since) for n, t in self._tracks.items() if t.published is not None}

    def settled(self, node_id: NodeId) -> bool:
        """False while a damping timer runs for this member (raw SUSPECT not yet reported, raw
        DEAD not yet confirmed): only then can the same raw state, fed again later, change what
        is published. The engine looks again at unsettled members every tick, at others only
        when they change."""
        t = self._tracks.get(node_id)
        if t is None:
            return False
        if t.raw == RAW_SUSPECT:
            return t.published is not MemberState.ALIVE
        if t.raw == RAW_DEAD:
            return t.published in (MemberState.FAILED, MemberState.LEFT)
        return True

    def observe(self, now: float, raw: Mapping[NodeId, RawObservation]) -> list[Transition]:
        """Feed the raw states of this tick (members missing from ``raw`` keep their state)."""
        out: list[Transition] = []
        for node_id in sorted(raw):
            transition = self._observe_one(now, node_id, raw[node_id])
            if transition is not None:
                out.append(transition)
        return out

    def _observe_one(self, now: float, node_id: NodeId, obs: RawObservation) -> Optional[Transition]:
        t = self._tracks.setdefault(node_id, _Track())
        if obs.state != t.raw:
            if t.raw:
                self.raw_transitions += 1
            if t.raw in (RAW_SUSPECT, RAW_DEAD) and obs.state == RAW_ALIVE and t.published is MemberState.ALIVE:
                self.raw_flaps += 1  # refuted before anyone was told
                if t.dead_while_down:
                    self.raw_dead_flaps += 1  # ... even a raw DEAD (held back by failed_confirm_s)
            if obs.state == RAW_ALIVE:
                t.down_since, t.dead_while_down = None, False
            elif t.down_since is None:
                t.down_since = now
            if obs.state == RAW_DEAD:
                t.dead_while_down = True
            t.raw, t.raw_since = obs.state, now

        target = self._target(now, t, obs)
        if target is None or target is t.published:
            return None
        previous, previous_since = t.published, t.state_since
        t.published, t.state_since = target, now
        down_for = None if t.down_since is None else round(now - t.down_since, 3)

        if target is MemberState.ALIVE:
            if not t.announced or previous is MemberState.LEFT:
                t.announced = True
                return Transition(EventKind.JOINED, node_id, None)
            self.refutations += 1
            return Transition(EventKind.ALIVE, node_id, round(now - previous_since, 3))
        if not t.announced:
            return None  # first seen already gone: in the snapshot, no event
        if target is MemberState.SUSPECT:
            return Transition(EventKind.SUSPECT, node_id, down_for)
        if target is MemberState.FAILED:
            self.failures_detected += 1
            return Transition(EventKind.FAILED, node_id, down_for)
        self.leaves_detected += 1
        return Transition(EventKind.LEFT, node_id, None)

    def _target(self, now: float, t: _Track, obs: RawObservation) -> Optional[MemberState]:
        published = t.published
        if obs.state == RAW_ALIVE:
            return MemberState.ALIVE
        if published in (MemberState.FAILED, MemberState.LEFT):
            if obs.state == RAW_DEAD and obs.left and published is MemberState.FAILED:
                return MemberState.LEFT
            return published
        if obs.state == RAW_SUSPECT:
            if published is None:
                return None  # never seen alive: still pending
            if now - t.raw_since >= self.suspect_report_after_s:
                return MemberState.SUSPECT
            return published
        # raw DEAD
        if obs.left:
            return MemberState.LEFT
        if published is not None and now - t.raw_since < self.failed_confirm_s:
            return published
        return MemberState.FAILED
