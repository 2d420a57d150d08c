"""One contract, every election backend (bully, raft, the raft observer, and the manual stub):
a leader is found by node id, every view agrees on it, and the role has no ``submit`` (where the
state is durable is the store's role)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import pytest

from ringrift_cluster.config import ElectionBackend
from ringrift_cluster.consensus.base import Election
from ringrift_cluster.model import LeadershipEvent
from ringrift_cluster.testing.stubs import ManualElection

WITHIN_S = 20.0


@dataclass
class Subject:
    election: Election
    start: Callable[[], Awaitable[None]]
    leader: str  # who must lead
    is_self: bool  # whether that is this node


async def node_backend(make_nodes: Any, consensus: str, *, observer: bool = False) -> Subject:
    if observer:  # "b" is outside raft_members: it follows "a"'s Raft leader over HTTP
        nodes = await make_nodes(["a", "b"], consensus=consensus, raft_members=["a"], start=False)
        await nodes["a"].start()
        node = nodes["b"]
    else:
        node = (await make_nodes(["a"], consensus=consensus, start=False))["a"]
    return Subject(node.consensus, node.start, "a", not observer)


async def manual(make_nodes: Any) -> Subject:
    election = ManualElection("a", leader="a")
    return Subject(election, election.start, "a", True)


BACKENDS: dict[str, Callable[[Any], Awaitable[Subject]]] = {
    "bully": lambda make: node_backend(make, "bully"),
    "raft": lambda make: node_backend(make, "raft"),
    "raft_observer": lambda make: node_backend(make, "raft", observer=True),
    "manual": manual,
}


@pytest.mark.parametrize("backend", sorted(BACKENDS))
async def test_election_contract(make_nodes: Any, backend: str) -> None:
    subject = await BACKENDS[backend](make_nodes)
    election = subject.election
    assert isinstance(election, Election) and not hasattr(election, "submit")
    events = election.subscribe()  # before start: no event of the first election is missed
    try:
        await subject.start()
        assert election.ready
        view = await election.wait_for_leader(WITHIN_S)
        assert (view.leader, view.is_self) == (subject.leader, subject.is_self)
        now = election.leadership()
        assert (now.leader, now.is_self) == (view.leader, view.is_self) and now.term >= view.term
        assert election.role in ("leader", "follower", "candidate")
        assert (election.role == "leader") == subject.is_self
        json.dumps(election.describe())

        async def first_naming_the_leader() -> LeadershipEvent:
            async for event in events:
                if event.leadership.leader == subject.leader:
                    return event
            raise AssertionError("the events ended before naming the leader")

        event = await asyncio.wait_for(first_naming_the_leader(), WITHIN_S)
        assert event.leadership.is_self == subject.is_self
    finally:
        events.close()


def test_every_election_backend_is_here() -> None:
    assert {b.value for b in ElectionBackend} | {"manual"} == set(BACKENDS)
