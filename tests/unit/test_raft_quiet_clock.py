"""The leader's clock ticks on a real one-member pysyncobj: an idle leader commits nothing, and a
lease that ends is expired by a tick all the same (store/raft.py's tick loop)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from test_raft_backend import _config  # rootdir-relative, as pytest imports

from ringrift_cluster.consensus.raft import RaftConsensus
from ringrift_cluster.state import StateMachine, commands
from ringrift_cluster.store.raft import RaftStore


async def _until(read, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        seen = await read()
        if seen:
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; last seen {seen!r}")
        await asyncio.sleep(0.02)


async def test_an_idle_leader_commits_nothing_and_a_due_lease_is_still_expired(tmp_path: Path) -> None:
    config = _config(tmp_path, raft={"tick_interval_s": 0.05, "quiet_clock_s": 30.0})
    store = RaftStore(RaftConsensus(config, StateMachine()), runs_engine=True)
    await store.start()
    try:
        await store.raft.wait_for_leader(5.0)
        # A fresh machine's clock is 0, long quiet: the first tick goes at once.
        await _until(lambda: store.read_local(lambda m: m.core.clock > 0), 5.0, "the first tick")

        async def serving() -> bool:  # the new leader's seal committed: writes are taken
            try:
                store.raft.check_serving()
            except Exception:
                return False
            return True

        await _until(serving, 5.0, "the new leader serving")

        async def committed() -> int:
            return store.describe()["commit_index"]

        async def settled() -> int | None:  # the published status trails the engine by a poll
            first = await committed()
            await asyncio.sleep(0.3)
            return first if await committed() == first else None

        before = await _until(settled, 5.0, "the commit index settled")
        # Idle for 20 tick intervals: the commit index stays where it was.
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            assert await committed() == before, "an idle leader committed an entry"
            await asyncio.sleep(0.05)
        assert store.raft.leader_confirmed()

        taken = await store.submit(commands.acquire_lock("L", "n1", ttl_s=0.3))
        assert taken["ok"], taken
        # Nothing else is proposed: only a tick can expire the lock.
        await _until(lambda: store.read_local(lambda m: "L" not in m.locks.locks), 5.0, "the lock expired")
        assert await committed() - before <= 4, (before, await committed())
    finally:
        await store.stop()
