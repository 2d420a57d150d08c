"""A replicated counter, the smallest pysyncobj consumer, and a way to wait for its commands'
answers: for tests that run real members in one process (tests/integration/test_group_commit.py,
test_raft_pacing.py)."""

from __future__ import annotations

import threading
from typing import Any, Callable

from pysyncobj import SyncObjConsumer, replicated


class Counter(SyncObjConsumer):
    def __init__(self) -> None:
        super().__init__()
        self.value = 0

    @replicated
    def add(self) -> int:
        self.value += 1
        return self.value


def await_all(calls: list[Callable[..., Any]], timeout: float, what: str = "a command") -> None:
    """Start every call (each a replicated method taking ``callback=``), then wait for every answer."""
    done = threading.Semaphore(0)
    for call in calls:
        call(callback=lambda *_: done.release())
    for _ in calls:
        assert done.acquire(timeout=timeout), f"{what} was not answered within {timeout} s"
