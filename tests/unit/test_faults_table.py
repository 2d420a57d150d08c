"""scripts/faults.py's table: the linearizable column per scenario and in total."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ringrift_cluster.testing.nemesis import ScenarioResult

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "faults.py"
spec = importlib.util.spec_from_file_location("faults_script", SCRIPT)
faults = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
spec.loader.exec_module(faults)  # type: ignore[union-attr]


def result(name: str, workload: dict) -> ScenarioResult:
    return ScenarioResult(name=name, seed=1, ops=[], violations=[], known=[], notes=[], max_unavailable_s=0.5,
                          duration_s=10.0, rounds=20, workload=workload)


def test_the_table_says_per_scenario_whether_every_history_was_linearizable() -> None:
    rows = [result("kill-leader", {"lin_keys": 30, "lin_ops": 200, "lin_failed": 0}),
            result("kill-leader", {"lin_keys": 30, "lin_ops": 200, "lin_failed": 2}),
            result("bridge", {"lin_keys": 25, "lin_ops": 150, "lin_failed": 0}),
            result("pause-member", {})]
    lines = faults.table(rows).splitlines()
    assert "linearizable" in lines[0]
    cells = {line.split()[0]: line.split()[6] for line in lines[2:] if not line.startswith("-")}
    assert cells == {"kill-leader": "FAIL", "bridge": "ok", "pause-member": "-", "total": "FAIL"}, lines
    assert "FAIL 2" in next(line for line in lines if line.startswith("total"))
