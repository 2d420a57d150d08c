"""Pacing's decisions (consensus/raft/pacing.py) against a stand-in for pysyncobj's internals;
tests/integration/test_raft_pacing.py runs it on real members."""

from __future__ import annotations

from typing import Any

import pytest

from ringrift_cluster.consensus.raft.pacing import KEEPALIVE, NOTICE_DELAY_S, Pacing
from ringrift_cluster.testing.stubs import ManualClock

LEADER, FOLLOWER = 2, 0


class FakeSyncObj:
    """The attributes Pacing reads, under pysyncobj's mangled names."""

    def __init__(self) -> None:
        self.sent = 0
        self.notified = 0
        self.messages: list[tuple[str, Any]] = []
        self.polls: list[float] = []
        self.callbacks: list[Any] = []
        self._SyncObj__raftState = LEADER
        self._SyncObj__newAppendEntriesTime = 100.0
        self._SyncObj__raftLog = [(b"", 1, 1), (b"x", 2, 1)]
        self._SyncObj__raftNextIndex = {"b": 3, "c": 3}
        self._SyncObj__connectedNodes = {"b", "c"}
        self._SyncObj__raftCommitIndex = 2
        self._SyncObj__properies: set[str] = set()
        self.conf = type("Conf", (), {"connectionTimeout": 1.5})()
        self.otherNodes = {"b", "c", "d"}
        self.connected = {"b", "c", "d"}
        self.leader: str | None = "b"
        fake = self

        class Notifier:
            def notify(self) -> None:
                fake.notified += 1

        class Transport:
            def send(self, node: str, message: Any) -> bool:
                fake.messages.append((node, message))
                return True

        class Poller:
            def poll(self, timeout: float) -> None:
                fake.polls.append(timeout)

        self._SyncObj__pipeNotifier = Notifier()
        self._SyncObj__transport = Transport()
        self._poller = Poller()
        self._SyncObj__sendAppendEntries = self._send

    def _send(self) -> None:
        self.sent += 1
        self._SyncObj__newAppendEntriesTime = 100.0  # pysyncobj: the next heartbeat one period on

    def addOnTickCallback(self, callback: Any) -> None:  # noqa: N802 (pysyncobj's name)
        self.callbacks.append(callback)

    def _isLeader(self) -> bool:  # noqa: N802
        return self._SyncObj__raftState == LEADER

    def _getLeader(self) -> str | None:  # noqa: N802
        return self.leader

    def isNodeConnected(self, node: str) -> bool:  # noqa: N802
        return node in self.connected


def _pacing(now: float = 50.0, solo: bool = False) -> tuple[FakeSyncObj, Pacing, ManualClock]:
    so, clock = FakeSyncObj(), ManualClock(now)
    return so, Pacing(so, clock, solo=solo), clock


def test_a_commit_only_broadcast_waits_a_moment_for_the_next_append() -> None:
    so, pacing, clock = _pacing()
    so._SyncObj__sendAppendEntries()
    assert (so.sent, pacing.notices_deferred) == (0, 1)
    assert so._SyncObj__newAppendEntriesTime == pytest.approx(50.0 + NOTICE_DELAY_S)  # due then, at the latest
    assert "_SyncObj__sendAppendEntries" in so._SyncObj__properies  # kept out of the dumps
    clock.now += NOTICE_DELAY_S / 2
    so._SyncObj__sendAppendEntries()  # another commit meanwhile: the same deadline, not a later one
    assert (so.sent, pacing.notices_deferred) == (0, 1)
    assert so._SyncObj__newAppendEntriesTime == pytest.approx(50.0 + NOTICE_DELAY_S)
    # The next append carries the commit index: the notice rode on it.
    so._SyncObj__raftLog.append((b"y", 3, 1))
    so._SyncObj__sendAppendEntries()
    assert (so.sent, pacing.notices_alone) == (1, 0)


def test_the_tick_thread_wakes_in_time_to_send_a_deferred_notice() -> None:
    so, pacing, clock = _pacing()
    so._poller.poll(0.05)
    so._SyncObj__sendAppendEntries()
    so._poller.poll(0.05)
    clock.now += 1.0  # past due: the next tick sends it (its heartbeat deadline has passed) ...
    so._poller.poll(0.05)
    assert so.polls == [0.05, pytest.approx(NOTICE_DELAY_S), 0.0]
    so._SyncObj__sendAppendEntries()
    assert (so.sent, pacing.notices_alone) == (1, 1)  # ... alone: no append came for it
    so._poller.poll(0.05)
    assert so.polls[-1] == 0.05


def test_a_leader_that_lost_its_role_forgets_the_notice_and_never_spins() -> None:
    so, _, clock = _pacing()
    so._SyncObj__sendAppendEntries()
    so._SyncObj__raftState = FOLLOWER
    clock.now += 1.0
    so._poller.poll(0.05)
    so._poller.poll(0.05)
    assert so.polls == [0.05, 0.05]


def test_it_goes_at_once_when_anything_says_so() -> None:
    so, _, _ = _pacing(now=101.0)  # the heartbeat is due
    so._SyncObj__sendAppendEntries()
    assert so.sent == 1
    so, _, _ = _pacing()
    so._SyncObj__raftNextIndex["c"] = 2  # c lacks entry 2: the send carries it
    so._SyncObj__sendAppendEntries()
    assert so.sent == 1
    so, _, _ = _pacing()
    so._SyncObj__connectedNodes.add("d")  # no next index known for d: send
    so._SyncObj__sendAppendEntries()
    assert so.sent == 1
    so, _, _ = _pacing()
    so._SyncObj__raftState = FOLLOWER
    so._SyncObj__sendAppendEntries()
    assert so.sent == 1


def test_a_follower_waiting_for_its_forwarded_command_is_told_at_once() -> None:
    """A follower answers a command it forwarded when it applies the entry, so it must learn the
    commit at once; a commit that is not yet its command's waits as any other."""
    so, pacing, _ = _pacing()
    transport = so._SyncObj__transport
    transport.send("b", {"type": "apply_command_response", "request_id": 7, "log_idx": 3, "log_term": 1})
    assert so.messages and so.messages[-1][0] == "b"  # the message still goes, unchanged
    so._SyncObj__sendAppendEntries()  # index 2 committed, the forwarded command is 3: wait
    assert (so.sent, pacing.notices_deferred) == (0, 1)
    so._SyncObj__raftCommitIndex = 3
    so._SyncObj__sendAppendEntries()  # 3 committed: b waits for this notice
    assert so.sent == 1
    so._SyncObj__raftCommitIndex = 4
    so._SyncObj__raftLog.append((b"z", 4, 1))
    so._SyncObj__raftNextIndex = {"b": 5, "c": 5}
    so._SyncObj__sendAppendEntries()  # b was told of 3; 4 is nobody's forwarded command
    assert so.sent == 1
    transport.send("c", {"type": "apply_command_response", "request_id": 1, "error": 2})  # a refusal
    so._SyncObj__sendAppendEntries()
    assert so.sent == 1


def test_a_failing_check_sends_rather_than_defers() -> None:
    so, pacing, _ = _pacing()
    del so._SyncObj__raftNextIndex
    so._SyncObj__sendAppendEntries()
    assert (so.sent, pacing.notices_deferred) == (1, 0)


def test_a_solo_leader_wakes_its_next_tick_once_per_uncommitted_append() -> None:
    so, pacing, _ = _pacing(solo=True)
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
    so, pacing, _ = _pacing(solo=False)
    assert so.callbacks == [pacing._keep_links_alive]


def test_a_follower_keeps_its_links_to_the_other_followers_alive() -> None:
    so, pacing, clock = _pacing(solo=False)
    [tick] = so.callbacks
    so._SyncObj__raftState = FOLLOWER
    so.connected = {"b", "c"}  # d is down: nothing is sent into a closed link
    tick()
    assert so.messages == []  # not due yet: a third of the connection timeout
    clock.now += 0.5
    tick()
    assert sorted(so.messages) == [("c", KEEPALIVE)]  # never to the leader (b): its AppendEntries do
    assert pacing.keepalives == 1
    tick()
    assert len(so.messages) == 1  # once per interval
    clock.now += 0.5
    so.leader = None  # a candidate, or no leader known: every link
    so.connected = {"b", "c", "d"}
    tick()
    assert sorted(m for m in so.messages[1:]) == [("b", KEEPALIVE), ("c", KEEPALIVE), ("d", KEEPALIVE)]


def test_a_leader_sends_no_keepalives_and_a_failure_never_raises() -> None:
    so, pacing, clock = _pacing(solo=False)
    [tick] = so.callbacks
    clock.now += 1.0
    tick()  # the leader: its followers answer every AppendEntries
    assert (so.messages, pacing.keepalives) == ([], 0)
    so._SyncObj__raftState = FOLLOWER
    so.otherNodes = None  # type: ignore[assignment]
    clock.now += 1.0
    tick()  # never raises in the engine's tick
