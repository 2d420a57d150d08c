"""KeepConfiguredLimits: the leader alone proposes the configured retention bounds, and only when
the replicated state holds others (a fake facade and store around a real machine)."""

from __future__ import annotations

import asyncio
from typing import Any

from ringrift_cluster.errors import NoLeader
from ringrift_cluster.state import Limits, StateMachine, commands
from ringrift_cluster.store.duties import KeepConfiguredLimits


class FakeState:
    """The facade: applies to one real machine, or raises what it is told to."""

    def __init__(self, machine: StateMachine, leader: str | None) -> None:
        self.machine, self._leader = machine, leader
        self.executed: list[dict[str, Any]] = []
        self.fail: Exception | None = None
        self.attempts = 0

    def leader(self) -> str | None:
        return self._leader

    async def execute(self, command: dict[str, Any]) -> dict[str, Any]:
        self.attempts += 1
        if self.fail is not None:
            raise self.fail
        self.executed.append(command)
        return self.machine.apply(commands.stamp(command, 1.0))


class FakeStore:
    def __init__(self, machine: StateMachine) -> None:
        self.machine = machine

    async def read_local(self, fn: Any) -> Any:
        return fn(self.machine)


def duty(state: FakeState, wanted: Limits) -> KeepConfiguredLimits:
    return KeepConfiguredLimits("n1", state, FakeStore(state.machine), wanted, every_s=0.01)


async def test_the_leader_proposes_configured_limits_once_they_differ() -> None:
    machine = StateMachine()
    state = FakeState(machine, "n1")
    wanted = Limits(max_finished_work=5, dedup_ttl_s=60)
    assert await duty(state, wanted).check() is True
    assert machine.limits == wanted
    assert [c["op"] for c in state.executed] == ["state.limits"]
    assert await duty(state, wanted).check() is False  # equal now: nothing proposed
    assert len(state.executed) == 1


async def test_a_follower_proposes_nothing() -> None:
    state = FakeState(StateMachine(), "n2")
    assert await duty(state, Limits(max_finished_work=5)).check() is False
    assert state.executed == [] and state.machine.limits == Limits()


async def test_no_leader_is_retried_by_the_loop_not_raised_out_of_it() -> None:
    state = FakeState(StateMachine(), "n1")
    state.fail = NoLeader("electing")
    task = asyncio.create_task(duty(state, Limits(max_finished_work=5)).run())
    deadline = asyncio.get_running_loop().time() + 5
    while state.attempts < 3:  # several rounds fail while there is no leader
        assert asyncio.get_running_loop().time() < deadline and not task.done(), (state.attempts, task)
        await asyncio.sleep(0.01)
    state.fail = None
    while state.machine.limits != Limits(max_finished_work=5):
        assert asyncio.get_running_loop().time() < deadline, "the duty never proposed after the leader came"
        await asyncio.sleep(0.01)
    task.cancel()
