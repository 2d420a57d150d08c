"""Pacing's decisions (consensus/raft/pacing.py) against a stand-in for pysyncobj's internals;
tests/integration/test_raft_pacing.py runs it on real members."""

from __future__ import annotations

from typing import Any

from ringrift_cluster.consensus.raft.pacing import Pacing

LEADER, FOLLOWER = 2, 0


class FakeSyncObj:
    """The attributes Pacing reads, under pysyncobj's mangled names."""

    def __init__(self) -> None:
        self.sent = 0
        self.notified = 0
        self.callbacks: list[Any] = []
        self._SyncObj__raftState = LEADER
        self._SyncObj__newAppendEntriesTime = 100.0
        self._SyncObj__raftLog = [(b"", 1, 1), (b"x", 2, 1)]
        self._SyncObj__raftNextIndex = {"b": 3, "c": 3}
        self._SyncObj__connectedNodes = {"b", "c"}
        self._SyncObj__raftCommitIndex = 2
        self._SyncObj__properies: set[str] = set()
        fake = self

        class Notifier:
            def notify(self) -> None:
                fake.notified += 1

        self._SyncObj__pipeNotifier = Notifier()
        self._SyncObj__sendAppendEntries = self._send

    def _send(self) -> None:
        self.sent += 1

    def addOnTickCallback(self, callback: Any) -> None:  # noqa: N802 (pysyncobj's name)
        self.callbacks.append(callback)


def _pacing(waiting: bool = True, now: float = 50.0, solo: bool = False) -> tuple[FakeSyncObj, Pacing]:
    so = FakeSyncObj()
    return so, Pacing(so, lambda: waiting, lambda: now, solo=solo)


def test_a_commit_only_broadcast_is_left_to_the_waiting_entry() -> None:
    so, pacing = _pacing()
    so._SyncObj__sendAppendEntries()
    assert (so.sent, pacing.notices_skipped) == (0, 1)
    assert "_SyncObj__sendAppendEntries" in so._SyncObj__properies  # kept out of the dumps


def test_it_goes_when_anything_says_so() -> None:
    cases = {
        "nothing waits to leave": dict(waiting=False),
        "the heartbeat is due": dict(now=101.0),
    }
    for why, kwargs in cases.items():
        so, pacing = _pacing(**kwargs)  # type: ignore[arg-type]
        so._SyncObj__sendAppendEntries()
        assert (so.sent, pacing.notices_skipped) == (1, 0), why
    so, _ = _pacing()
    so._SyncObj__raftNextIndex["c"] = 2  # c lacks entry 2: the send carries it
    so._SyncObj__sendAppendEntries()
    assert so.sent == 1
    so, _ = _pacing()
    so._SyncObj__connectedNodes.add("d")  # no next index known for d: send
    so._SyncObj__sendAppendEntries()
    assert so.sent == 1
    so, _ = _pacing()
    so._SyncObj__raftState = FOLLOWER
    so._SyncObj__sendAppendEntries()
    assert so.sent == 1


def test_a_failing_check_sends_rather_than_skips() -> None:
    so, pacing = _pacing()
    pacing._entry_waiting = lambda: 1 / 0  # type: ignore[assignment]
    so._SyncObj__sendAppendEntries()
    assert (so.sent, pacing.notices_skipped) == (1, 0)


def test_a_solo_leader_wakes_its_next_tick_once_per_uncommitted_append() -> None:
    so, pacing = _pacing(solo=True)
    [tick] = so.callbacks
    tick()
    assert so.notified == 0  # all committed
    so._SyncObj__raftLog.append((b"y", 3, 1))
    tick()
    tick()  # the same append: no second wake (never a spin)
    assert (so.notified, pacing.solo_wakes) == (1, 1)
    so._SyncObj__raftCommitIndex = 3
    so._SyncObj__raftLog.append((b"z", 4, 1))
    tick()
    assert so.notified == 2
    so._SyncObj__raftState = FOLLOWER
    so._SyncObj__raftLog.append((b"w", 5, 1))
    tick()
    assert so.notified == 2
    del so._SyncObj__pipeNotifier
    so._SyncObj__raftState = LEADER
    tick()  # never raises in the engine's tick


def test_members_with_peers_get_no_wake_hook() -> None:
    so, _ = _pacing(solo=False)
    assert so.callbacks == []
