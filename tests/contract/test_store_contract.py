"""One contract, every state store (the journal under Bully, Raft, and the memory stub): a write
is applied once per request id, read back (locally and linearizably), and carried in the final
snapshot a graceful stop exports."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import pytest

from ringrift_cluster.config import StoreBackend
from ringrift_cluster.errors import NoLeader
from ringrift_cluster.state import commands
from ringrift_cluster.store.base import StateStore
from ringrift_cluster.testing.stubs import ManualElection, MemoryStore

WITHIN_S = 20.0


@dataclass
class Subject:
    store: StateStore
    ready: Callable[[], Awaitable[None]]  # until this node may apply (it leads)


async def node_backend(make_nodes: Any, consensus: str) -> Subject:
    node = (await make_nodes(["a"], consensus=consensus))["a"]
    assert node.store is not None
    return Subject(node.store, lambda: node.consensus.wait_for_leader(WITHIN_S))


async def memory(make_nodes: Any) -> Subject:
    election = ManualElection("a", leader="a")
    await election.start()
    store = MemoryStore(election)
    await store.start()
    return Subject(store, lambda: election.wait_for_leader(WITHIN_S))


BACKENDS: dict[str, Callable[[Any], Awaitable[Subject]]] = {
    "journal": lambda make: node_backend(make, "bully"),
    "raft": lambda make: node_backend(make, "raft"),
    "memory": memory,
}


async def submit_once_serving(store: StateStore, command: dict[str, Any]) -> Any:
    """A new leader gathers the members' state before it serves: retry until it does."""
    deadline = asyncio.get_running_loop().time() + WITHIN_S
    while True:
        try:
            return await store.submit(command)
        except NoLeader:
            assert asyncio.get_running_loop().time() < deadline, "the store never served a write"
            await asyncio.sleep(0.1)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
async def test_store_contract(make_nodes: Any, backend: str) -> None:
    subject = await BACKENDS[backend](make_nodes)
    store = subject.store
    assert isinstance(store, StateStore)
    await subject.ready()
    assert store.ready

    command = commands.add_work("w1", "selfplay", rid="contract-w1", now=time.time())
    first = await submit_once_serving(store, command)
    assert first["ok"], first
    assert await store.submit(command) == first  # the same request id is applied once
    assert await store.read(lambda m: m.work_stats()["total"]) == 1
    assert await store.read(lambda m: m.work_get("w1") is not None, linearizable=True)
    assert await store.read_local(lambda m: m.work_get("w1") is not None)
    assert store.leadership().is_self
    json.dumps(store.describe())

    snapshot = await store.final_snapshot()
    assert snapshot is not None and "w1" in snapshot["work"]["items"]


def test_every_store_backend_is_here() -> None:
    assert {b.value for b in StoreBackend if b is not StoreBackend.NONE} | {"memory"} == set(BACKENDS)
