"""In-memory stand-ins for the three roles, for a host's own tests and the contract suite
(``tests/contract``): ``StaticMembership`` (members you set), ``ManualElection`` (a leader you
name) and ``MemoryStore`` (the state machine in memory, served by the elected node). They keep
the roles' contracts, with no sockets, threads or files. And ``ManualClock``, a clock moved by
hand, for any part that takes its clock as a callable."""

from __future__ import annotations

import json
import time
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping, TypeVar

from ..consensus.base import Election
from ..consensus.raft.entry import MAX_COMMAND_BYTES, encode
from ..consensus.tracker import LeadershipTracker
from ..errors import NoLeader, NotLeader
from ..events import EventHub, Subscription
from ..model import (
    ElectionOutcome, EventKind, Leadership, LeadershipEvent, Member, MembershipEvent, MemberState, NodeId,
)
from ..state import StateMachine, commands

T = TypeVar("T")

_EVENT_OF_STATE = {MemberState.ALIVE: EventKind.ALIVE, MemberState.SUSPECT: EventKind.SUSPECT,
                   MemberState.FAILED: EventKind.FAILED, MemberState.LEFT: EventKind.LEFT}


class ManualClock:
    """A clock that says ``now`` until a test moves it (``clock.now += 5``)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class StaticMembership:
    """The members you set (``set``), by node id; each change is published once."""

    name = "static"

    def __init__(self, members: Iterable[Member] = ()) -> None:
        self._members: dict[NodeId, Member] = {m.node_id: m for m in members}
        self._hub: EventHub[MembershipEvent] = EventHub()
        self._started = False

    @property
    def ready(self) -> bool:
        return self._started

    async def start(self) -> None:
        self._started = True

    async def stop(self, graceful: bool = True) -> None:
        self._started = False
        self._hub.close()

    def members(self) -> Mapping[NodeId, Member]:
        return MappingProxyType(dict(self._members))

    def subscribe(self) -> Subscription[MembershipEvent]:
        return self._hub.subscribe()

    def set(self, member: Member) -> None:
        """Add or change a member, publishing the transition (joined, alive, suspect, failed, left)."""
        old = self._members.get(member.node_id)
        self._members[member.node_id] = member
        if old is None:
            kind = EventKind.JOINED
        elif old.state is not member.state:
            kind = _EVENT_OF_STATE[member.state]
        else:
            return
        self._hub.publish(MembershipEvent(kind=kind, node_id=member.node_id, source=self.name))

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "members": {n: m.state.value for n, m in sorted(self._members.items())}}


class ManualElection:
    """The leader you name (``elect``); each change starts a new term."""

    name = "manual"

    def __init__(self, node_id: NodeId, *, leader: NodeId | None = None) -> None:
        self.node_id = node_id
        self._initial = leader
        self._tracker = LeadershipTracker()
        self._started = False

    @property
    def ready(self) -> bool:
        return self._started

    @property
    def role(self) -> str:
        return "leader" if self._tracker.current.is_self else "follower"

    async def start(self) -> None:
        self._started = True
        if self._initial is not None:
            self.elect(self._initial)

    async def stop(self) -> None:
        self._started = False
        # Stopped, it names no leader, and tells no one (its subscribers are closed).
        self._tracker.current = Leadership(leader=None, term=self._tracker.current.term, is_self=False)
        self._tracker.close()

    def elect(self, leader: NodeId | None) -> Leadership:
        view = Leadership(leader=leader, term=self._tracker.current.term + 1, is_self=leader == self.node_id)
        outcome = None if leader is None else ElectionOutcome.WON if leader == self.node_id else ElectionOutcome.ADOPTED
        self._tracker.publish(view, outcome=outcome)
        return view

    def leadership(self) -> Leadership:
        return self._tracker.current

    def subscribe(self) -> Subscription[LeadershipEvent]:
        return self._tracker.subscribe()

    async def wait_for_leader(self, timeout: float) -> Leadership:
        return await self._tracker.wait_for_leader(timeout, lambda _: f"no leader named within {timeout:.2f} s")

    def describe(self) -> dict[str, Any]:
        view = self._tracker.current
        return {"backend": self.name, "leader": view.leader, "term": view.term, "is_leader": view.is_self}


class MemoryStore:
    """The state machine in memory, served by the node the election names (like the journal,
    without the disk): followers answer ``NotLeader`` and callers forward."""

    name = "memory"

    def __init__(self, election: Election, machine: StateMachine | None = None) -> None:
        self._election = election
        self.machine = machine if machine is not None else StateMachine()
        self._started = False

    @property
    def ready(self) -> bool:
        return self._started

    async def start(self) -> None:
        self._started = True

    async def stop(self) -> None:
        self._started = False

    def leadership(self) -> Leadership:
        return self._election.leadership()

    def _check_leader(self) -> None:
        view = self._election.leadership()
        if view.leader is None:
            raise NoLeader("no leader is named")
        if not view.is_self:
            raise NotLeader(view.leader)

    async def submit(self, command: Mapping[str, Any], timeout: float | None = None) -> Any:
        self._check_leader()
        payload, _ = encode(command, MAX_COMMAND_BYTES)  # what Raft would log: JSON, rid and now set
        return self.machine.apply(json.loads(payload))

    async def read(self, fn: Callable[[Any], T], *, linearizable: bool = False, timeout: float | None = None) -> T:
        self._check_leader()
        return fn(self.machine)

    async def read_local(self, fn: Callable[[Any], T]) -> T:
        return fn(self.machine)

    def sealed_since_start(self) -> bool:
        return True  # nothing to reconcile: the state never left this process

    async def final_snapshot(self) -> dict[str, Any] | None:
        return self.machine.snapshot()

    def import_snapshot(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        command = commands.stamp(commands.import_state(snapshot), time.time())
        return self.machine.apply(json.loads(json.dumps(command)))

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "holds_state": True, "applied": self.machine.describe()}


__all__ = ["ManualElection", "MemoryStore", "StaticMembership"]
