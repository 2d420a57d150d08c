"""Hybrid membership's one failure timeline, over fake sources (our own code under test)."""

from __future__ import annotations

import asyncio
from types import MappingProxyType

import pytest

from ringrift_cluster.errors import BackendUnavailable, ClusterError
from ringrift_cluster.events import EventHub
from ringrift_cluster.membership.base import Membership
from ringrift_cluster.membership.hybrid import HybridMembership
from ringrift_cluster.model import EventKind, Member, MembershipEvent, MemberState


class FakeSource:
    def __init__(self, name: str, fail_start: bool = False) -> None:
        self.name = name
        self.fail_start = fail_start
        self._members: dict[str, Member] = {}
        self._hub: EventHub[MembershipEvent] = EventHub()
        self.ready = False
        self.stopped_gracefully: bool | None = None

    async def start(self) -> None:
        if self.fail_start:
            raise BackendUnavailable(f"{self.name} port blocked")
        self.ready = True

    async def stop(self, graceful: bool = True) -> None:
        self.stopped_gracefully = graceful

    def members(self):
        return MappingProxyType(dict(self._members))

    def subscribe(self):
        return self._hub.subscribe()

    def describe(self):
        return {"backend": self.name}

    def set(self, node_id: str, state: MemberState, kind: EventKind, last_seen: float = 1.0) -> None:
        self._members[node_id] = Member(node_id=node_id, state=state, host="10.0.0.9", api_port=8770,
                                        source=self.name, last_seen=last_seen, role=self.name)
        self._hub.publish(MembershipEvent(kind=kind, node_id=node_id, source=self.name, after_s=1.5))


async def settle() -> None:
    """Yield to the event loop so the hybrid's follower tasks run (a yield, not a wait)."""
    for _ in range(5):
        await asyncio.sleep(0)


def drain(sub) -> list[tuple[str, str]]:
    out = []
    while not sub.queue.empty():
        e = sub.queue.get_nowait()
        out.append((e.kind.value, e.node_id))
    return out


@pytest.fixture
async def hybrid():
    swim, http = FakeSource("swim"), FakeSource("heartbeat")
    clock = [100.0]
    h = HybridMembership([swim, http], wall=lambda: clock[0])
    assert isinstance(h, Membership)
    await h.start()
    yield h, swim, http, clock
    await h.stop()


async def test_alive_if_either_source_failed_only_when_both(hybrid) -> None:
    h, swim, http, clock = hybrid
    events = h.subscribe()
    swim.set("n1", MemberState.ALIVE, EventKind.JOINED)
    http.set("n1", MemberState.ALIVE, EventKind.JOINED)
    await settle()
    assert h.members()["n1"].state is MemberState.ALIVE and h.members()["n1"].source == "hybrid"
    clock[0] = 103.0
    swim.set("n1", MemberState.FAILED, EventKind.FAILED)
    await settle()
    assert h.members()["n1"].state is MemberState.ALIVE  # heartbeats still hear it
    http.set("n1", MemberState.SUSPECT, EventKind.SUSPECT)
    await settle()
    assert h.members()["n1"].state is MemberState.SUSPECT
    clock[0] = 160.0
    http.set("n1", MemberState.FAILED, EventKind.FAILED)
    await settle()
    assert h.members()["n1"].state is MemberState.FAILED
    assert h.members()["n1"].meta["sources"] == {"swim": "failed", "heartbeat": "failed"}
    assert drain(events) == [("joined", "n1"), ("suspect", "n1"), ("failed", "n1")]

    death = h.compare()["deaths"][0]
    assert death["node_id"] == "n1" and death["declared_failed_at"] == 160.0
    assert death["sources"]["swim"]["after_first_s"] == 0 and death["sources"]["heartbeat"]["after_first_s"] == 57.0
    per = h.compare()["per_source"]
    assert per["swim"]["first"] == 1 and per["heartbeat"]["median_lag_behind_first_s"] == 57.0

    clock[0] = 170.0
    swim.set("n1", MemberState.ALIVE, EventKind.ALIVE)
    await settle()
    assert h.members()["n1"].state is MemberState.ALIVE
    assert drain(events) == [("alive", "n1")]
    assert h.compare()["deaths"][0]["came_back_at"] == 170.0 and h.disagreements == 0


async def test_a_death_only_one_source_saw_is_a_disagreement(hybrid) -> None:
    h, swim, http, clock = hybrid
    swim.set("n2", MemberState.ALIVE, EventKind.JOINED)
    http.set("n2", MemberState.ALIVE, EventKind.JOINED)
    swim.set("n2", MemberState.FAILED, EventKind.FAILED)
    await settle()
    swim.set("n2", MemberState.ALIVE, EventKind.ALIVE)
    await settle()
    assert h.disagreements == 1
    assert h.compare()["deaths"][0]["declared_failed_at"] is None


async def test_left_wins_over_failed_when_all_are_down(hybrid) -> None:
    h, swim, http, _ = hybrid
    events = h.subscribe()
    swim.set("n3", MemberState.ALIVE, EventKind.JOINED)
    await settle()
    http.set("n3", MemberState.LEFT, EventKind.LEFT)
    swim.set("n3", MemberState.FAILED, EventKind.FAILED)
    await settle()
    assert h.members()["n3"].state is MemberState.LEFT
    assert drain(events) == [("joined", "n3"), ("left", "n3")]


async def test_a_source_that_cannot_start_is_inactive_not_fatal() -> None:
    swim, http = FakeSource("swim", fail_start=True), FakeSource("heartbeat")
    h = HybridMembership([swim, http])
    await h.start()
    http.set("n1", MemberState.ALIVE, EventKind.JOINED)
    await settle()
    assert h.members()["n1"].state is MemberState.ALIVE
    described = h.describe()["sources"]
    assert described["swim"]["active"] is False and "port blocked" in described["swim"]["error"]
    assert described["heartbeat"]["active"] is True
    await h.stop(graceful=True)
    assert http.stopped_gracefully is True and swim.stopped_gracefully is None


async def test_no_source_at_all_is_an_error() -> None:
    h = HybridMembership([FakeSource("swim", fail_start=True), FakeSource("heartbeat", fail_start=True)])
    with pytest.raises(ClusterError, match="no membership source"):
        await h.start()
