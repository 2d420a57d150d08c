"""state.import: a snapshot from another consensus mode replaces the state only when newer."""

from __future__ import annotations

import json

from ringrift_cluster.state import StateMachine, commands as c


def run(machine: StateMachine, cmd: dict, now: float) -> dict:
    return machine.apply(json.loads(json.dumps(c.stamp(cmd, now))))


def test_changes_are_counted_but_ticks_and_refusals_are_not() -> None:
    m = StateMachine()
    run(m, c.add_work("w1", "train"), 10)
    run(m, c.tick(), 11)
    run(m, c.add_work("w1", "train"), 12)  # refused: already exists
    same = c.add_work("w2", "train")
    run(m, same, 13)
    run(m, same, 14)  # a retry of the same rid is not a second change
    assert m.snapshot()["counters"]["change"] == 2


def test_newer_snapshot_replaces_older_is_refused() -> None:
    old, new = StateMachine(), StateMachine()
    run(old, c.add_work("w-old", "train"), 10)
    for i in range(3):
        run(new, c.add_work(f"w{i}", "train"), 20 + i)
    run(new, c.acquire_lock("L", "gpu-1", ttl_s=600), 30)
    exported = json.loads(json.dumps(new.snapshot()))

    result = run(old, c.import_state(exported), 40)
    assert result["ok"] and result["imported"] and result["changes"] == 4 and result["replaced"] == 1
    assert old.work_get("w-old") is None and old.work_get("w2") is not None
    assert old.lock_get("L")["holder"] == "gpu-1"

    again = run(old, c.import_state(exported), 41)
    assert not again["ok"] and again["error"] == "stale_import"
    run(old, c.add_work("after", "train"), 42)
    assert old.work_get("after") is not None


def test_import_of_garbage_is_refused_and_changes_nothing() -> None:
    m = StateMachine()
    run(m, c.add_work("w1", "train"), 10)
    before = m.snapshot()
    for bad in ({}, {"counters": {"change": "x"}}, {"counters": {"change": 99}, "format": 1}):
        result = run(m, c.import_state(bad), 11)
        assert not result["ok"] and result["error"] == "bad_command", result
    after = m.snapshot()
    assert after["work"] == before["work"] and after["counters"] == before["counters"]
