"""One contract, every membership backend (heartbeat, swim, hybrid, and the static stub): a peer
that starts is seen alive by its node id, and one that stops gracefully is seen as left."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import pytest

from ringrift_cluster.config import MembershipBackend
from ringrift_cluster.membership.base import Membership
from ringrift_cluster.model import EventKind, Member, MemberState, node_id_problem
from ringrift_cluster.testing.stubs import StaticMembership
from ringrift_cluster.testing import wait

WITHIN_S = 20.0


@dataclass
class Subject:
    membership: Membership
    peer_leaves: Callable[[], Awaitable[None]]  # the peer "b" stops gracefully


async def heartbeat_like(make_nodes: Any, mode: str) -> Subject:
    nodes = await make_nodes(["a", "b"], membership=mode)
    return Subject(nodes["a"].membership, lambda: nodes["b"].stop(graceful=True))


async def static(make_nodes: Any) -> Subject:
    membership = StaticMembership()
    await membership.start()
    membership.set(Member(node_id="b", state=MemberState.ALIVE, host="127.0.0.1", api_port=1))

    async def leaves() -> None:
        membership.set(Member(node_id="b", state=MemberState.LEFT, host="127.0.0.1", api_port=1))

    return Subject(membership, leaves)


BACKENDS: dict[str, Callable[[Any], Awaitable[Subject]]] = {
    "heartbeat": lambda make: heartbeat_like(make, "http"),
    "swim": lambda make: heartbeat_like(make, "swim"),
    "hybrid": lambda make: heartbeat_like(make, "hybrid"),
    "static": static,
}


async def until(condition: Callable[[], bool], what: str) -> None:
    await wait.until(condition, WITHIN_S, interval=0.05, what=what)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
async def test_membership_contract(make_nodes: Any, backend: str) -> None:
    subject = await BACKENDS[backend](make_nodes)
    membership = subject.membership
    assert isinstance(membership, Membership) and membership.ready

    def alive() -> bool:
        member = membership.members().get("b")
        return member is not None and member.is_alive

    await until(alive, "the peer b is seen alive")
    for node_id, member in membership.members().items():
        assert node_id_problem(node_id) is None and member.node_id == node_id  # node ids, never addresses
    assert "a" not in membership.members()  # self is not a member of its own view
    json.dumps(membership.describe())

    events = membership.subscribe()
    seen: list[Any] = []

    async def collect() -> None:
        async for event in events:
            seen.append(event)

    collector = asyncio.create_task(collect())
    try:
        await subject.peer_leaves()
        await until(lambda: membership.members()["b"].state is MemberState.LEFT, "the peer b is seen as left")
        await until(lambda: any(e.node_id == "b" and e.kind is EventKind.LEFT for e in seen), "a left event for b")
    finally:
        collector.cancel()
        events.close()


def test_every_membership_backend_is_here() -> None:
    assert {b.value for b in MembershipBackend} | {"hybrid", "static"} == set(BACKENDS)
