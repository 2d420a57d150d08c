"""A graceful stop that hangs says where before it is killed: ``stop_slow`` names every task
and the coroutines it is suspended in."""

from __future__ import annotations

import asyncio
from typing import Any

from ringrift_cluster.slow_stop import reported_if_slow


class Log:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.seen.append((event, fields))


def test_a_slow_stop_names_what_each_task_waits_on() -> None:
    async def run() -> Log:
        log = Log()

        async def stuck_helper() -> None:
            await asyncio.sleep(0.3)  # stuck, as far as a 0.05 s report can tell

        async def stuck_in_stop() -> None:
            await stuck_helper()

        async with reported_if_slow(log, after_s=0.05):
            await asyncio.create_task(stuck_in_stop(), name="engine-stop")
        return log

    log = asyncio.run(run())
    assert [event for event, _ in log.seen] == ["stop_slow"], log.seen
    waiting = log.seen[0][1]["waiting"]
    assert "engine-stop" in waiting, waiting
    chain = waiting["engine-stop"]
    assert chain[0].startswith("stuck_in_stop (") and any(f.startswith("stuck_helper (") for f in chain), chain


def test_a_quick_stop_says_nothing() -> None:
    async def run() -> Log:
        log = Log()
        async with reported_if_slow(log, after_s=0.05):
            await asyncio.sleep(0)
        await asyncio.sleep(0.1)  # past the report's time: it was cancelled with the stop
        return log

    assert asyncio.run(run()).seen == []
