"""Pacing (``consensus/raft/pacing.py``) on real pysyncobj members in one process: commit notices
deferred for the next append still reach every follower within moments, a follower's forwarded
command is answered without waiting, and a single member commits without waiting for its next
tick."""

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
# Heartbeats far apart: a follower that learns a commit well within this was told by a notice.
SLOW_HEARTBEAT = dict(appendEntriesPeriod=2.0, raftMinTimeout=6.5, raftMaxTimeout=7.0, leaderFallbackTimeout=6.5,
                      connectionTimeout=7.0)


def _members(tmp_path: Path, n: int, **conf: Any) -> list[tuple[Any, Counter, Pacing]]:
    base = free_base_port(n)
    addresses = [f"127.0.0.1:{base + i}" for i in range(n)]
    members = []
    for i, address in enumerate(addresses):
        counter = Counter()
        syncobj = SyncObj(address, [o for o in addresses if o != address], consumers=[counter],
                          conf=SyncObjConf(journalFile=str(tmp_path / f"m{i}.journal"), appendEntriesUseBatch=False,
                                           dynamicMembershipChange=False, **conf))
        members.append((syncobj, counter, Pacing(syncobj, pso_syncobj.monotonicTime, solo=n == 1)))
    return members


def test_deferred_commit_notices_ride_on_appends_and_still_reach_every_follower(tmp_path: Path) -> None:
    """Sequential writes on the leader: most notices go with the next append. Each lone write is
    applied by every follower long before the next heartbeat, and a command forwarded through a
    follower (whose caller waits for that follower to apply it) is answered as quickly."""
    members = _members(tmp_path, 3, **SLOW_HEARTBEAT)
    try:
        wait_until(lambda: any(s._isLeader() for s, _, _ in members), 60, what="a leader")
        leader, counter, pacing = next(m for m in members if m[0]._isLeader())
        await_all([counter.add] * 200, 30)  # pipelined
        for _ in range(100):  # one at a time: every commit would have had a broadcast of its own
            await_all([counter.add], 30)
        wait_until(lambda: all(c.value == 300 for _, c, _ in members), 1.0,
                   what="every member applied 300, well before the next heartbeat",
                   describe=lambda: [c.value for _, c, _ in members])
        follower_counter = next(c for s, c, _ in members if s is not leader)
        deferred_before = pacing.notices_deferred
        for round_ in range(1, 6):
            started = time.monotonic()
            await_all([follower_counter.add], 30)
            took = time.monotonic() - started
            assert took < 1.0, f"forwarded write {round_} took {took:.2f} s: it waited for a heartbeat"
        wait_until(lambda: all(c.value == 305 for _, c, _ in members), 1.0,
                   what="every member applied 305", describe=lambda: [c.value for _, c, _ in members])
        # The follower waits for the commit notice of its command: that one is never deferred.
        assert pacing.notices_deferred == deferred_before, (deferred_before, pacing.notices_deferred)
    finally:
        for syncobj, _, _ in members:
            syncobj.destroy()
    # Most of the 100 sequential commits' notices ride on the next append (in-process writes
    # follow each other within microseconds); without pacing, none.
    assert pacing.notices_deferred - pacing.notices_alone >= 50, (pacing.notices_deferred, pacing.notices_alone)
    print(f"leader deferred {pacing.notices_deferred} commit notices, {pacing.notices_alone} went alone")


def test_a_lone_write_is_announced_within_moments(tmp_path: Path) -> None:
    """With no write after it, a commit's notice goes alone after the short delay: followers apply
    it well before the next heartbeat (2 s after the entry left) would tell them."""
    members = _members(tmp_path, 3, **SLOW_HEARTBEAT)
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
    assert pacing.notices_alone >= 1, (pacing.notices_deferred, pacing.notices_alone)


def test_a_single_member_commits_without_waiting_for_its_next_tick(tmp_path: Path) -> None:
    """pysyncobj counts commits before it appends in a tick: with a 1 s tick, 20 sequential
    writes took 20 s before; now each wakes the next tick at once."""
    [(syncobj, counter, pacing)] = _members(tmp_path, 1, autoTickPeriod=1.0)
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
