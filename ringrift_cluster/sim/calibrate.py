"""Real runs against simulated ones: fit the model's free constant on the calibration points,
predict the held-out N before it is measured, and report the errors.

Real runs are files written by ``scripts/sim/real_runs.py`` (``swim_scale.py`` in bounded mode,
plus messages per type). The only fitted constant is ``report_delay_s`` (a raw state to the event
a subscriber sees); message sizes and per-cycle costs are measured on the code itself, rates follow
from the protocol. A relative error per point is the largest over: messages/s and bytes/s per node,
detection p50 and p99.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable

from .costs import cycle_scan_per_member_s
from .params import Model
from .scenario import Scenario, run

DOCS = Path("docs/scale")
REAL_CALIBRATION = DOCS / "real_calibration.json"
REAL_HOLDOUT = DOCS / "real_holdout.json"
PREDICTION = DOCS / "holdout_prediction.json"
FITTED = DOCS / "fitted_model.json"
# The calibration box: every node on loopback.
LOOPBACK = Model(latency_s=0.0001, latency_sigma=0.5)
COMPARED = ("msgs_per_node_s", "bytes_per_node_s", "detection_p50_s", "detection_p99_s")
SEEDS = range(1, 9)


def load_rows(path: Path) -> list[dict[str, Any]]:
    return [r for r in json.loads(path.read_text())["rows"] if r.get("mode", "bounded") == "bounded"]


def real_figures(row: dict[str, Any]) -> dict[str, Any]:
    """The bench's row in the simulator's names (messages per type: sent + received)."""
    by_type: dict[str, float] = {}
    for key, v in (row.get("by_type") or {}).items():
        kind = key.split(":", 1)[1]
        by_type[kind] = by_type.get(kind, 0.0) + v["msgs_per_node_s"]
    return {"n": row["nodes"], "msgs_per_node_s": row.get("msgs_per_s_mean"),
            "bytes_per_node_s": row.get("bytes_per_s_mean"), "detection_p50_s": row.get("detect_p50"),
            "detection_p99_s": row.get("detect_p99"), "false_suspect_events": row.get("false_suspect"),
            "false_failed_events": row.get("false_failed"), "max_datagram_b": row.get("largest_datagram"),
            "converge_s": row.get("converge_s"), "msgs_by_type": by_type}


def simulate_point(n: int, model: Model, kills: int = 5, seeds: Iterable[int] = SEEDS) -> dict[str, Any]:
    """The bench's run at ``n`` (same number of kills), repeated over seeds: each figure is the
    median over seeds of what one run reports, so a p99 of 5 kills is compared with a p99 of 5."""
    runs = [run(Scenario(n=n, loopback=True, kills=kills, seed=s, model=model)) for s in seeds]
    kinds = {k for r in runs for k in r["by_type"]}
    return {
        "n": n,
        "msgs_per_node_s": round(statistics.mean(r["msgs_per_node_s"] for r in runs), 2),
        "bytes_per_node_s": round(statistics.mean(r["bytes_per_node_s"] for r in runs)),
        "detection_p50_s": round(statistics.median(r["detection_p50_s"] for r in runs), 2),
        "detection_p99_s": round(statistics.median(r["detection_p99_s"] for r in runs), 2),
        "detection_p99_range_s": [min(r["detection_p99_s"] for r in runs), max(r["detection_p99_s"] for r in runs)],
        "false_suspect_events": sum(r["false_suspect_events"] for r in runs) / len(runs),
        "false_failed_events": sum(r["false_failed_events"] for r in runs) / len(runs),
        "max_datagram_b": max(r["max_datagram_b"] for r in runs),
        "msgs_by_type": {k: round(statistics.mean(r["by_type"].get(k, {}).get("msgs_per_node_s", 0.0) for r in runs), 3)
                         for k in sorted(kinds)},
        "undetected": sum(r["undetected"] for r in runs),
    }


def compare(real: dict[str, Any], sim: dict[str, Any]) -> dict[str, Any]:
    errors = {k: abs(sim[k] - real[k]) / real[k] for k in COMPARED if real.get(k)}
    return {"n": real["n"], "real": real, "sim": sim, "errors": {k: round(v, 3) for k, v in errors.items()},
            "error": round(max(errors.values()), 3) if errors else None}


def fit(reals: list[dict[str, Any]], log: Any = print) -> Model:
    """``report_delay_s`` by grid search: the least squared relative error of detection p50 and
    p99 over the calibration points."""
    best, best_score = LOOPBACK, float("inf")
    for k in range(0, 17):
        model = LOOPBACK.with_(report_delay_s=round(0.1 * k, 2))
        score = 0.0
        for real in reals:
            sim = simulate_point(real["n"], model)
            score += sum(((sim[m] - real[m]) / real[m]) ** 2 for m in ("detection_p50_s", "detection_p99_s"))
        log(f"# fit: report_delay_s={model.report_delay_s:.1f} score={score:.4f}")
        if score < best_score:
            best, best_score = model, score
    return best


def calibrate(log: Any = print) -> dict[str, Any]:
    reals = [real_figures(r) for r in load_rows(REAL_CALIBRATION)]
    # The per-member cycle cost is measured on this machine (costs.py); pinned in the fitted model
    # so that every later run from it, in any process, repeats to the digit.
    model = fit(reals, log).with_(cycle_overhead_per_member_s=float(f"{cycle_scan_per_member_s():.2g}"))
    FITTED.write_text(json.dumps({"model": asdict(model), "fitted_on": [r["n"] for r in reals],
                                  "fitted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, indent=2) + "\n")
    return {"model": asdict(model), "points": [compare(r, simulate_point(r["n"], model)) for r in reals]}


def check(log: Any = print) -> dict[str, Any]:
    """The calibration points against the model on file (no refit)."""
    model = fitted_model()
    reals = [real_figures(r) for r in load_rows(REAL_CALIBRATION)]
    return {"model": asdict(model), "points": [compare(r, simulate_point(r["n"], model)) for r in reals]}


def fitted_model() -> Model:
    return Model(**json.loads(FITTED.read_text())["model"])


def predict(n: int) -> dict[str, Any]:
    """The held-out point, simulated with the fitted model, written before the real run."""
    prediction = {"n": n, "predicted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "model": asdict(fitted_model()), "sim": simulate_point(n, fitted_model())}
    PREDICTION.write_text(json.dumps(prediction, indent=2) + "\n")
    return prediction


def holdout() -> dict[str, Any]:
    """The prediction on file against the held-out real run."""
    prediction = json.loads(PREDICTION.read_text())
    rows = [r for r in load_rows(REAL_HOLDOUT) if r["nodes"] == prediction["n"]]
    out = compare(real_figures(rows[0]), prediction["sim"])
    out["predicted_at"] = prediction["predicted_at"]
    out["measured_at"] = rows[0].get("measured_at")
    return out


def holdout_now() -> dict[str, Any]:
    """The held-out real run against the model as it is now (the filed prediction stays the
    test: this shows whether later changes to the simulator moved away from it)."""
    n = json.loads(PREDICTION.read_text())["n"]
    rows = [r for r in load_rows(REAL_HOLDOUT) if r["nodes"] == n]
    return compare(real_figures(rows[0]), simulate_point(n, fitted_model()))
