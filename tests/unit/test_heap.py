"""The heap freezer (heap.py): collects and freezes once the state is large, every so many
applies in proportion to its size, and only then."""

from __future__ import annotations

import gc
import weakref

from ringrift_cluster.heap import HeapFreezer
from ringrift_cluster.state import StateMachine, commands


def test_freezes_a_large_state_every_step_of_applies() -> None:
    freezer = HeapFreezer(floor=10, min_step=4, fraction=0.2)
    before = gc.get_freeze_count()  # another test's state may have been frozen already
    try:
        assert not freezer.applied(9, 100) and gc.get_freeze_count() == before  # small: never
        kept = [{"item": i} for i in range(100)]  # alive now: frozen by the next freeze
        assert freezer.applied(10, 5) and gc.get_freeze_count() >= before + len(kept)
        assert not freezer.applied(10, 3)  # 3 applies since: under the minimum step of 4
        assert freezer.applied(10, 1) and freezer.freezes == 2
        assert not freezer.applied(100, 19)  # a state of 100 waits for 100 * 0.2 = 20 applies
        assert freezer.applied(100, 1) and freezer.freezes == 3
    finally:
        gc.unfreeze()


class _Cell:
    pass


def test_garbage_is_collected_not_frozen() -> None:
    freezer = HeapFreezer(floor=1, min_step=1, fraction=0.0)
    try:
        cell = _Cell()
        cell.me = cell  # a cycle: reference counting alone never frees it
        dead = weakref.ref(cell)
        del cell
        assert dead() is not None
        assert freezer.applied(1, 1)
        assert dead() is None  # collected before the freeze, not kept for good
    finally:
        gc.unfreeze()


def test_a_restored_state_is_frozen_when_large() -> None:
    freezer = HeapFreezer(floor=10)
    try:
        assert not freezer.restored(9)
        assert freezer.restored(10) and freezer.freezes == 1
    finally:
        gc.unfreeze()


def test_the_baseline_freezes_what_is_alive_at_start_whatever_the_state() -> None:
    freezer = HeapFreezer(floor=10**9)  # no state large enough: only the baseline freezes
    before = gc.get_freeze_count()
    try:
        kept = [{"module": i} for i in range(1000)]
        freezer.baseline()
        assert freezer.freezes == 1 and gc.get_freeze_count() >= before + len(kept)
    finally:
        gc.unfreeze()


def test_the_state_machine_reports_its_size() -> None:
    machine = StateMachine()
    for i in range(5):
        assert machine.apply(commands.stamp(commands.add_work(f"w{i}", "selfplay"), 1000.0 + i))["ok"]
    assert machine.size() == 5 + 5  # five items, five remembered commands
    assert StateMachine.from_snapshot(machine.snapshot()).size() == machine.size()
