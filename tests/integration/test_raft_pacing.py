"""Pacing (``consensus/raft/pacing.py``) on real pysyncobj members in one process: commit notices
left to the next append still reach every follower, and a single member commits without waiting
for its next tick."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from pysyncobj import SyncObj, SyncObjConf
from pysyncobj import syncobj as pso_syncobj

from ringrift_cluster.consensus.raft.pacing import Pacing
from ringrift_cluster.testing import wait_until
from ringrift_cluster.testing.local_cluster import free_base_port

from pso_counter import Counter, await_all

pytestmark = pytest.mark.integration


def _members(tmp_path: Path, n: int, entry_waiting: Any, **conf: Any) -> list[tuple[Any, Counter, Pacing]]:
    base = free_base_port(n)
    addresses = [f"127.0.0.1:{base + i}" for i in range(n)]
    members = []
    for i, address in enumerate(addresses):
        counter = Counter()
        syncobj = SyncObj(address, [o for o in addresses if o != address], consumers=[counter],
                          conf=SyncObjConf(journalFile=str(tmp_path / f"m{i}.journal"), appendEntriesUseBatch=False,
                                           dynamicMembershipChange=False, **conf))
        members.append((syncobj, counter, Pacing(syncobj, entry_waiting, pso_syncobj.monotonicTime, solo=n == 1)))
    return members


def test_skipped_commit_notices_still_reach_every_follower(tmp_path: Path) -> None:
    """A leader that always has 'an entry waiting' skips every commit-only broadcast; followers
    still learn each commit (from the next append or the heartbeat), and a command forwarded
    through a follower, whose caller waits for that follower to apply it, is answered."""
    members = _members(tmp_path, 3, lambda: True, appendEntriesPeriod=0.5, raftMinTimeout=2.0, raftMaxTimeout=2.5,
                       connectionTimeout=2.5)
    try:
        wait_until(lambda: any(s._isLeader() for s, _, _ in members), 30, what="a leader")
        leader, counter, pacing = next(m for m in members if m[0]._isLeader())
        await_all([counter.add] * 200, 30)  # pipelined
        for _ in range(100):  # one at a time: every commit would have had a broadcast of its own
            await_all([counter.add], 30)
        follower_counter = next(c for s, c, _ in members if s is not leader)
        for _ in range(5):  # each waits for the heartbeat (0.5 s) to tell its follower the commit
            await_all([follower_counter.add], 30)
        wait_until(lambda: all(c.value == 305 for _, c, _ in members), 30,
                   what="every member applied 305", describe=lambda: [c.value for _, c, _ in members])
    finally:
        for syncobj, _, _ in members:
            syncobj.destroy()
    # Most of the 100 sequential commits' notices (89-98 here; some go when a send would carry
    # an entry to a follower, or when the heartbeat falls due); without pacing, none.
    assert pacing.notices_skipped >= 50, f"{pacing.notices_skipped} commit notices left to the next append"
    print(f"leader skipped {pacing.notices_skipped} commit notices for 305 entries")


def test_an_idle_leader_still_sends_commit_notices(tmp_path: Path) -> None:
    """With nothing waiting to leave, a commit is announced at once: followers apply it well
    before the next heartbeat (here 2 s after the entry left) would tell them."""
    members = _members(tmp_path, 3, lambda: False, appendEntriesPeriod=2.0, raftMinTimeout=6.5,
                       raftMaxTimeout=7.0, leaderFallbackTimeout=6.5, connectionTimeout=7.0)
    try:
        wait_until(lambda: any(s._isLeader() for s, _, _ in members), 60, what="a leader")
        leader, counter, pacing = next(m for m in members if m[0]._isLeader())
        for round_ in range(1, 4):
            await_all([counter.add], 30)
            wait_until(lambda: all(c.value == round_ for _, c, _ in members), 1.0,
                       what=f"every member applied write {round_} well before the next heartbeat",
                       describe=lambda: [c.value for _, c, _ in members])
    finally:
        for syncobj, _, _ in members:
            syncobj.destroy()
    assert pacing.notices_skipped == 0


def test_a_single_member_commits_without_waiting_for_its_next_tick(tmp_path: Path) -> None:
    """pysyncobj counts commits before it appends in a tick: with a 1 s tick, 20 sequential
    writes took 20 s before; now each wakes the next tick at once."""
    [(syncobj, counter, pacing)] = _members(tmp_path, 1, lambda: False, autoTickPeriod=1.0)
    try:
        wait_until(syncobj._isLeader, 30, what="the single member to lead")
        started = time.monotonic()
        for _ in range(20):
            await_all([counter.add], 30)
        took = time.monotonic() - started
    finally:
        syncobj.destroy()
    assert counter.value == 20
    assert pacing.solo_wakes >= 20, pacing.solo_wakes
    assert took < 10, f"20 sequential writes took {took:.1f} s: each waited for a tick"
