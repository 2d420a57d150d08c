"""The event-loop stall metric: a blocked loop is measured as a stall of about that length."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import generate_latest

from ringrift_cluster.loop_watch import watch_loop
from ringrift_cluster.observability import NodeMetrics


def test_a_blocked_loop_is_measured_as_a_stall_and_exported() -> None:
    metrics = NodeMetrics()
    seen: list[float] = []

    def observe(stall: float, tasks: int) -> None:
        seen.append(stall)
        metrics.observe_loop(stall, tasks)

    async def main() -> None:
        task = asyncio.create_task(watch_loop(observe, interval_s=0.01))
        try:
            deadline = time.monotonic() + 5
            while len(seen) < 3 and time.monotonic() < deadline:  # running before the stall
                await asyncio.sleep(0.01)
            time.sleep(0.3)  # the stall: a blocking call on the loop
            while max(seen, default=0) < 0.25 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        finally:
            task.cancel()

    asyncio.run(main())
    assert 0.25 <= max(seen) < 2.0, seen
    assert sum(s >= 0.25 for s in seen) == 1, seen  # one stall, not smeared over wake-ups
    text = generate_latest(metrics.registry).decode()
    stall_max = next(line for line in text.splitlines() if line.startswith("ringrift_event_loop_stall_max_seconds "))
    assert float(stall_max.split()[1]) == max(seen), stall_max
    assert 'ringrift_event_loop_stall_seconds_bucket{le="0.1"}' in text
    tasks = next(line for line in text.splitlines() if line.startswith("ringrift_event_loop_tasks "))
    assert float(tasks.split()[1]) >= 2, tasks  # the main task and the watch


def test_a_stall_inside_the_reporters_sleep_is_measured_too() -> None:
    """The reporter sleeps a whole interval; a blocking call that ends before it is due to wake
    delays nothing it can see, yet every other timer waited: the iteration probe counts it."""
    seen: list[float] = []

    async def main() -> None:
        task = asyncio.create_task(watch_loop(lambda stall, tasks: seen.append(stall), interval_s=1.0))
        try:
            await asyncio.sleep(0.2)  # the reporter is asleep until about 1.0 s
            time.sleep(0.3)  # ends at about 0.5 s, well before it wakes
            deadline = time.monotonic() + 5
            while not seen and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        selector = asyncio.get_running_loop()._selector  # type: ignore[attr-defined]
        assert "select" not in vars(selector), "the probe outlived its watcher"

    asyncio.run(main())
    assert seen and 0.28 <= seen[0] < 1.0, seen
