"""A replicated counter: the smallest pysyncobj consumer, for tests that run real members in
one process (tests/integration/test_group_commit.py, test_raft_pacing.py)."""

from __future__ import annotations

from pysyncobj import SyncObjConsumer, replicated


class Counter(SyncObjConsumer):
    def __init__(self) -> None:
        super().__init__()
        self.value = 0

    @replicated
    def add(self) -> int:
        self.value += 1
        return self.value
