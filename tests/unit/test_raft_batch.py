"""Proposal batching (consensus/raft/batch.py): commands proposed in one loop pass share a log
entry, each caller gets its own result, and a failed entry fails each of its commands."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ringrift_cluster.consensus.raft.batch import MAX_BYTES, MAX_COMMANDS, ProposalBatcher, batch_counts


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
    b = _batcher(asyncio.get_running_loop(), engine, max_in_flight=None)
    await _propose(b, [f"c{i}" for i in range(MAX_COMMANDS + 1)])
    assert [len(e) if isinstance(e, list) else 1 for e, _ in engine.entries] == [MAX_COMMANDS, 1]
    engine.entries.clear()
    big = "x" * (MAX_BYTES // 2 + 1)
    await _propose(b, [big, big, big])
    assert [e if isinstance(e, str) else len(e) for e, _ in engine.entries] == [big, big, big]


async def test_order_is_kept_across_entries() -> None:
    engine = FakeEngine()
    b = _batcher(asyncio.get_running_loop(), engine, max_in_flight=None)
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


async def _settle_callbacks() -> None:
    for _ in range(3):  # a future's done callbacks run on the loop's next passes
        await asyncio.sleep(0)


async def test_proposals_wait_for_the_entry_in_flight_and_then_go_together() -> None:
    engine = FakeEngine()
    b = _batcher(asyncio.get_running_loop(), engine, hold_s=60)
    first = await _propose(b, ["a"])
    later = await _propose(b, ["b", "c"])
    later += await _propose(b, ["d"])
    assert [e for e, _ in engine.entries] == ["a"]  # b, c and d wait while a commits
    engine.answer(0)
    await _settle_callbacks()
    assert [e for e, _ in engine.entries] == ["a", ["b", "c", "d"]]
    assert first[0].result()[0]["echo"] == "a" and not any(f.done() for f in later)
    engine.answer(1)
    assert [f.result()[0]["echo"] for f in later] == ["b", "c", "d"]
    assert batch_counts(b) == {"commands": 4, "entries": 2, "held": 1}


async def test_a_failed_entry_in_flight_releases_the_next_batch_too() -> None:
    engine = FakeEngine()
    b = _batcher(asyncio.get_running_loop(), engine, hold_s=60)
    await _propose(b, ["a"])
    await _propose(b, ["b"])
    engine.answer(0, error=4)
    await _settle_callbacks()
    assert [e for e, _ in engine.entries] == ["a", "b"]


async def test_a_held_batch_goes_after_hold_s_if_the_entry_never_settles() -> None:
    engine = FakeEngine()
    b = _batcher(asyncio.get_running_loop(), engine, hold_s=0.05)
    await _propose(b, ["a"])  # never answered
    loop = asyncio.get_running_loop()
    started = loop.time()
    await _propose(b, ["b"])
    assert [e for e, _ in engine.entries] == ["a"]
    while len(engine.entries) < 2 and loop.time() - started < 5:
        await asyncio.sleep(0.01)
    assert [e for e, _ in engine.entries] == ["a", "b"], engine.entries
    assert loop.time() - started >= 0.05


async def test_a_full_batch_goes_even_while_an_entry_is_in_flight() -> None:
    engine = FakeEngine()
    b = _batcher(asyncio.get_running_loop(), engine, hold_s=60)
    await _propose(b, ["a"])
    await _propose(b, [f"c{i}" for i in range(MAX_COMMANDS + 1)])
    assert [len(e) if isinstance(e, list) else e for e, _ in engine.entries] == ["a", MAX_COMMANDS]
