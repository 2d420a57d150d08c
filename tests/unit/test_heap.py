"""The heap freezer (heap.py): freezes at each growth step of the state, and only then."""

from __future__ import annotations

import gc

from ringrift_cluster.heap import HeapFreezer
from ringrift_cluster.state import StateMachine, commands


def test_freezes_at_the_floor_then_at_each_growth_step() -> None:
    freezer = HeapFreezer(floor=10, growth=2.0)
    before = gc.get_freeze_count()  # another test's state may have been frozen already
    try:
        assert not freezer.grew(9) and gc.get_freeze_count() == before
        kept = [{"item": i} for i in range(100)]  # alive now: frozen by the next freeze
        assert freezer.grew(10) and gc.get_freeze_count() >= before + len(kept)
        assert not freezer.grew(19)
        assert freezer.grew(20) and freezer.freezes == 2
        assert not freezer.grew(39)
    finally:
        gc.unfreeze()


def test_the_state_machine_reports_its_size() -> None:
    machine = StateMachine()
    for i in range(5):
        assert machine.apply(commands.stamp(commands.add_work(f"w{i}", "selfplay"), 1000.0 + i))["ok"]
    assert machine.size() == 5 + 5  # five items, five remembered commands
    assert StateMachine.from_snapshot(machine.snapshot()).size() == machine.size()
