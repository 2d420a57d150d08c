"""Real loopback runs for the simulator's calibration: ``scripts/bench/swim_scale.py`` (bounded
mode) as it is, plus what the simulator is compared on that the bench does not print: messages
per type per node per second, and the mean size of each type, over the bench's idle window.

    .venv/bin/python scripts/sim/real_runs.py --sizes 10,30,60 --kills 5 --json docs/scale/real_calibration.json
    .venv/bin/python scripts/sim/real_runs.py --sizes 100 --kills 5 --json docs/scale/real_holdout.json

Heavy: N real nodes on this machine. Run one at a time, on a quiet machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _load_swim_scale() -> Any:
    """The benchmark script as a module (scripts are no package): its runs, with the cluster
    class swapped for one that records every event."""
    spec = importlib.util.spec_from_file_location("swim_scale", ROOT / "scripts" / "bench" / "swim_scale.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["swim_scale"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


swim_scale = _load_swim_scale()


class RecordingCluster(swim_scale.PackCluster):
    """The bench's cluster, keeping every snapshot it takes (with when) so the idle window's pair
    can be found afterwards."""

    taken: list[tuple[float, dict[str, Any]]] = []

    def snapshot(self) -> dict[str, dict[str, Any]]:
        snap = super().snapshot()
        RecordingCluster.taken.append((time.monotonic(), snap))
        return snap


def by_type(taken: list[tuple[float, dict[str, Any]]], idle: float) -> dict[str, dict[str, float]]:
    """Per type and direction: messages/s per node and mean bytes per message, over the first
    pair of consecutive snapshots ``idle`` seconds apart (the bench's idle window)."""
    for (t0, before), (t1, after) in zip(taken, taken[1:]):
        if t1 - t0 >= 0.9 * idle:
            break
    else:
        return {}
    out: dict[str, dict[str, float]] = {}
    nodes = max(1, len(after))
    for node_id, st in after.items():
        for key, (count, size) in (st.get("by_type") or {}).items():
            c0, s0 = (before.get(node_id, {}).get("by_type") or {}).get(key, (0, 0))
            row = out.setdefault(key, {"count": 0.0, "bytes": 0.0})
            row["count"] += count - c0
            row["bytes"] += size - s0
    return {k: {"msgs_per_node_s": round(v["count"] / (t1 - t0) / nodes, 3),
                "mean_bytes": round(v["bytes"] / v["count"], 1) if v["count"] else 0.0}
            for k, v in sorted(out.items()) if v["count"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,30,60")
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--idle", type=float, default=20.0)
    parser.add_argument("--preset", default="lan")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--json", required=True)
    args = parser.parse_args()
    bench = argparse.Namespace(per_process=0, swim_overrides={}, preset=args.preset, start_timeout=300.0,
                               converge_timeout=180.0, settle=5.0, idle=args.idle, kills=args.kills,
                               detect_timeout=60.0)
    swim_scale.PackCluster = RecordingCluster
    rows = []
    for n in [int(x) for x in args.sizes.split(",") if x]:
        RecordingCluster.taken = []
        row = swim_scale.run(n, "bounded", bench, args.seed + n)
        row["by_type"] = by_type(RecordingCluster.taken, args.idle)
        row["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        swim_scale.progress(f"N={n}: {json.dumps(row)}")
        rows.append(row)
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"preset": args.preset, "cores": os.cpu_count(), "rows": rows},
                                              indent=2) + "\n")
    print(swim_scale.table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
