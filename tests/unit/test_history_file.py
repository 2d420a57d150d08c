"""A failed run's history file: written with its final state, read back equal, and checked again
by ``scripts/faults.py --recheck`` with the verdict of the run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ringrift_cluster.testing.checks.calls import OK, UNKNOWN, Attempt, Call, FinalState, read_history, write_history

ROOT = Path(__file__).resolve().parents[2]


def history(lost: bool) -> tuple[list[Call], FinalState]:
    add = Call(1, "producer", "work.add", {"work_id": "w1", "work_type": "t", "config": {"n": 1}}, "rid-1",
               10.0, 10.5, OK, {"ok": True, "clock": 10.2}, [Attempt("node-1", 10.0, 10.5, 200, OK, "200", {"ok": True})])
    maybe = Call(2, "producer", "work.add", {"work_id": "w2", "work_type": "t", "config": {"n": 2}}, "rid-2",
                 11.0, None, UNKNOWN, None, [Attempt("node-2", 11.0, 17.0, None, UNKNOWN, "timeout")])
    item = {"work_id": "w1", "work_type": "t", "config": {"n": 1}, "status": "pending", "claim_token": None, "attempts": 0}
    final = FinalState(items={"w1": None if lost else item, "w2": None}, locks={}, models={}, total_items=0 if lost else 1,
                       clock=20.0, compacted=frozenset({"w2"}))
    return [add, maybe], final


def recheck(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "faults.py"), "--recheck", str(path)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_a_history_file_reads_back_as_written(tmp_path: Path) -> None:
    calls, final = history(lost=False)
    assert read_history(write_history(calls, final, tmp_path / "calls.jsonl")) == (calls, final)


def test_recheck_gives_the_verdict_of_the_run(tmp_path: Path) -> None:
    bad = recheck(write_history(*history(lost=True), tmp_path / "bad.jsonl"))
    assert bad.returncode == 1 and "lost write: acknowledged add of w1" in bad.stdout, bad
    good = recheck(write_history(*history(lost=False), tmp_path / "good.jsonl"))
    assert good.returncode == 0 and "0 violations" in good.stdout, good
