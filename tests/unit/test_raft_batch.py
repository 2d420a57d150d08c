"""Proposal batching (consensus/raft/batch.py): commands proposed in one loop pass share a log
entry, each caller gets its own result, and a failed entry fails each of its commands."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ringrift_cluster.consensus.raft.batch import MAX_BYTES, MAX_COMMANDS, ProposalBatcher


class FakeEngine:
    """Stands in for pysyncobj: records entries; ``answer`` plays the tick thread's callback."""

    def __init__(self) -> None:
        self.entries: list[tuple[Any, Any]] = []
        self.fail_with: Exception | None = None

    def send(self, entry: Any, callback: Any) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.entries.append((entry, callback))

    def answer(self, index: int, error: int = 0) -> None:
        entry, callback = self.entries[index]
        if error:
            callback(None, error)
        elif isinstance(entry, list):
            callback([{"ok": True, "echo": one} for one in entry], 0)
        else:
            callback({"ok": True, "echo": entry}, 0)


def _batcher(loop: asyncio.AbstractEventLoop, engine: FakeEngine, **kw: Any) -> ProposalBatcher:
    def deliver(fut: asyncio.Future, value: Any) -> None:
        if not fut.done():
            fut.set_result(value)

    def fail(fut: asyncio.Future, e: BaseException) -> None:
        if not fut.done():
            fut.set_exception(e)

    return ProposalBatcher(loop, engine.send, deliver, fail, **kw)


async def _propose(b: ProposalBatcher, payloads: list[str]) -> list[asyncio.Future]:
    loop = asyncio.get_running_loop()
    futs = [loop.create_future() for _ in payloads]
    for p, f in zip(payloads, futs):
        b.add(p, f)
    await asyncio.sleep(0)  # one pass of the loop: the batch goes
    return futs


async def test_one_pass_is_one_entry_and_each_gets_its_own_result() -> None:
    engine = FakeEngine()
    b = _batcher(asyncio.get_running_loop(), engine)
    futs = await _propose(b, ["a", "b", "c"])
    assert [e for e, _ in engine.entries] == [["a", "b", "c"]]
    engine.answer(0)
    assert [f.result() for f in futs] == [({"ok": True, "echo": x}, 0) for x in "abc"]
    assert (b.entries, b.commands) == (1, 3)


async def test_a_lone_command_goes_as_itself() -> None:
    engine = FakeEngine()
    b = _batcher(asyncio.get_running_loop(), engine)
    (fut,) = await _propose(b, ["solo"])
    assert [e for e, _ in engine.entries] == ["solo"]  # a string, as before batching
    engine.answer(0)
    assert fut.result() == ({"ok": True, "echo": "solo"}, 0)


async def test_a_failed_entry_fails_each_command_with_its_code() -> None:
    engine = FakeEngine()
    b = _batcher(asyncio.get_running_loop(), engine)
    futs = await _propose(b, ["a", "b"])
    engine.answer(0, error=4)  # NOT_LEADER
    assert [f.result() for f in futs] == [(None, 4), (None, 4)]


async def test_batches_are_bounded_in_commands_and_bytes() -> None:
    engine = FakeEngine()
    b = _batcher(asyncio.get_running_loop(), engine)
    await _propose(b, [f"c{i}" for i in range(MAX_COMMANDS + 1)])
    assert [len(e) if isinstance(e, list) else 1 for e, _ in engine.entries] == [MAX_COMMANDS, 1]
    engine.entries.clear()
    big = "x" * (MAX_BYTES // 2 + 1)
    await _propose(b, [big, big, big])
    assert [e if isinstance(e, str) else len(e) for e, _ in engine.entries] == [big, big, big]


async def test_order_is_kept_across_entries() -> None:
    engine = FakeEngine()
    b = _batcher(asyncio.get_running_loop(), engine)
    await _propose(b, ["a", "b"])
    await _propose(b, ["c"])
    assert [e for e, _ in engine.entries] == [["a", "b"], "c"]


async def test_without_batching_each_command_is_sent_at_once() -> None:
    engine = FakeEngine()
    b = _batcher(asyncio.get_running_loop(), engine, max_commands=1)
    loop = asyncio.get_running_loop()
    b.add("a", loop.create_future())
    b.add("b", loop.create_future())
    assert [e for e, _ in engine.entries] == ["a", "b"]  # no waiting for the loop


async def test_an_engine_that_refuses_fails_every_command_of_the_entry() -> None:
    engine = FakeEngine()
    engine.fail_with = RuntimeError("engine gone")
    b = _batcher(asyncio.get_running_loop(), engine)
    futs = await _propose(b, ["a", "b"])
    for f in futs:
        with pytest.raises(RuntimeError, match="engine gone"):
            f.result()
