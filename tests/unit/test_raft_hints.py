"""Leader-loss hints (consensus/raft/hints.py) on a stand-in for pysyncobj's SyncObj: when the
election deadline is pulled in, by how much, and when it is left alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ringrift_cluster.consensus.raft.hints import LeaderLossHints
from ringrift_cluster.testing.stubs import ManualClock


@dataclass(frozen=True)
class _Node:
    address: str


@dataclass
class _SyncObj:
    """The few SyncObj members the hints read, with the private deadline they pull in."""

    self_address: str
    others: list[str]
    leader: str | None
    connected: set[str] = field(default_factory=set)
    leading: bool = False
    raftCurrentTerm: int = 3  # noqa: N815 (pysyncobj's name)
    _SyncObj__raftElectionDeadline: float = 100.5  # noqa: N815

    @property
    def selfNode(self) -> _Node:  # noqa: N802
        return _Node(self.self_address)

    @property
    def otherNodes(self) -> set[_Node]:  # noqa: N802
        return {_Node(a) for a in self.others}

    def _isLeader(self) -> bool:  # noqa: N802
        return self.leading

    def _getLeader(self) -> Any:  # noqa: N802
        return None if self.leader is None else _Node(self.leader)

    def isNodeConnected(self, node: _Node) -> bool:  # noqa: N802
        return node.address in self.connected

    @property
    def deadline(self) -> float:
        return self._SyncObj__raftElectionDeadline


VOTERS = ["10.0.0.1:4321", "10.0.0.2:4321", "10.0.0.3:4321", "10.0.0.4:4321", "10.0.0.5:4321"]


def _follower(me: str, leader: str = "10.0.0.5:4321") -> tuple[_SyncObj, LeaderLossHints, ManualClock]:
    so = _SyncObj(me, [a for a in VOTERS if a != me], leader, connected={a for a in VOTERS if a != me})
    clock = ManualClock(100.0)
    hints = LeaderLossHints(so, clock=clock, confirm_s=0.05, step_s=0.1, jitter_s=0.05, rand=lambda: 0.5)
    return so, hints, clock


def test_a_closed_leader_connection_pulls_the_deadline_in_after_confirmation_by_rank() -> None:
    for me, rank in [("10.0.0.1:4321", 0), ("10.0.0.3:4321", 2)]:
        so, hints, clock = _follower(me)
        hints.on_tick()
        assert so.deadline == 100.5 and hints.elections_started == 0  # leader connected: nothing
        so.connected.discard("10.0.0.5:4321")
        hints.on_tick()  # first sight of the loss
        clock.now += 0.04
        hints.on_tick()
        assert so.deadline == 100.5, "not confirmed yet"
        clock.now += 0.02
        hints.on_tick()
        # the survivors in address order; each waits its rank in steps, plus jitter
        assert abs(so.deadline - (clock.now + rank * 0.1 + 0.025)) < 1e-9, (me, so.deadline)
        assert hints.elections_started == 1


def test_one_pull_per_leader_and_term_and_never_a_later_deadline() -> None:
    so, hints, clock = _follower("10.0.0.4:4321")  # rank 3 of the survivors: 0.3 s + jitter
    so._SyncObj__raftElectionDeadline = 100.3
    so.connected.discard("10.0.0.5:4321")
    hints.on_tick()
    clock.now += 0.1
    hints.on_tick()
    assert so.deadline == 100.3 and hints.elections_started == 0  # its own deadline comes first
    so._SyncObj__raftElectionDeadline = 200.0  # pysyncobj pushed it out (it voted for someone)
    clock.now += 0.1
    hints.on_tick()
    assert so.deadline == 200.0, "one pull per leader and term: pysyncobj's own timers rule after it"
    so.raftCurrentTerm += 1  # a new term with the same unreachable leader known: may pull again
    hints.on_tick()
    assert so.deadline < 200.0 and hints.elections_started == 1


def test_a_reconnect_within_the_confirmation_resets_it_and_leaders_never_pull() -> None:
    so, hints, clock = _follower("10.0.0.1:4321")
    so.connected.discard("10.0.0.5:4321")
    hints.on_tick()
    clock.now += 0.04
    so.connected.add("10.0.0.5:4321")  # a blip
    hints.on_tick()
    so.connected.discard("10.0.0.5:4321")
    clock.now += 0.04
    hints.on_tick()  # lost again: the confirmation starts over
    assert so.deadline == 100.5
    leader_so, leader_hints, leader_clock = _follower("10.0.0.5:4321", leader="10.0.0.5:4321")
    leader_so.leading, leader_so.connected = True, set()
    for _ in range(3):
        leader_clock.now += 1.0
        leader_hints.on_tick()
    assert leader_so.deadline == 100.5 and leader_hints.elections_started == 0
    no_leader, idle_hints, idle_clock = _follower("10.0.0.1:4321", leader=None)
    idle_clock.now += 1.0
    idle_hints.on_tick()
    idle_hints.on_tick()
    assert no_leader.deadline == 100.5


def test_without_the_private_deadline_hints_stay_off() -> None:
    class Other:
        pass

    hints = LeaderLossHints(Other(), clock=ManualClock(100.0), confirm_s=0.05, step_s=0.1, jitter_s=0.05)
    assert not hints.enabled
    hints.on_tick()  # touches nothing
