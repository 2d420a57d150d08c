"""``make scale-report``: calibration, held-out check and projection -> ``docs/scale.md``,
``docs/scale.json`` and the plots in ``docs/scale/``.

Real runs are files (they need a quiet machine and minutes of real nodes, see
``scripts/sim/real_runs.py``); everything else is recomputed here, deterministically."""

from __future__ import annotations

import fcntl
import json
import sys
import time
from pathlib import Path
from typing import Any

from . import calibrate
from .params import LARGE_OVERRIDES, Model, protocol_for
from .scenario import Scenario, run
from .sizes import measure
from ..membership.swim.gossip import push_pull_interval

DOCS = Path("docs")
PLOTS = DOCS / "scale"
CACHE = PLOTS / "projections.json"
COLD_CACHE = PLOTS / "coldstart.json"
COLD_WINDOW_S = 10.0  # every member's process starts within this window (a fleet rollout)
COLD_CHECK_SIZES = (10, 30, 60, 100)  # the real runs' N: their measured convergence beside the model's
CONDITIONS = [(0.0, 0.0), (0.01, 0.0), (0.05, 0.0), (0.0, 0.01)]  # (loss, fraction stalling 1 s)
PRESETS = ("lan", "large")
KILLS = 8  # per scenario: detection p50/p99 over 8 deaths
LAN_LATENCY = {"latency_s": 0.0003, "latency_sigma": 0.5}  # one-way median 0.3 ms in a datacenter LAN


def log(text: str) -> None:
    print(f"# [{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def anti_entropy_bytes_s(n: int, preset: str) -> float:
    """Anti-entropy per node, steady state (sent + received): each node starts one exchange per
    interval and takes part in one started by another: SYNC-REQ plus a whole list each way."""
    p = protocol_for(preset)
    sz = measure(n, False, p.gossip_fanout, p.packet_budget_bytes)
    return 2 * (sz.sync_req + 2 * sz.full_list) / push_pull_interval(p.sync_interval_s, n)


def plan(sizes: list[int], quick: bool = False) -> list[tuple[int, str, float, float]]:
    conditions = CONDITIONS[:2] if quick else CONDITIONS
    return [(n, preset, loss, stall) for n in sizes for preset in PRESETS for loss, stall in conditions]


def cached() -> dict[tuple[int, str, float, float], dict[str, Any]]:
    """Projection rows already computed (``project`` writes them as it goes)."""
    if not CACHE.exists():
        return {}
    return {(r["n"], r["preset"], r["loss"], r["stall"]): r for r in json.loads(CACHE.read_text())}


def save(row: dict[str, Any]) -> None:
    PLOTS.mkdir(parents=True, exist_ok=True)
    with open(PLOTS / ".projections.lock", "w") as lock:  # processes of other N save here too
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = cached()
        rows[(row["n"], row["preset"], row["loss"], row["stall"])] = row
        CACHE.write_text(json.dumps(sorted(rows.values(), key=lambda r: (r["n"], r["preset"], r["loss"], r["stall"])),
                                    indent=1) + "\n")


def project(todo: list[tuple[int, str, float, float]], model: Model, reuse: bool = False,
            kills: int = KILLS, only_cached: bool = False) -> list[dict[str, Any]]:
    """Run each scenario of ``todo`` (or take it from the cache with ``reuse``), saving as it goes:
    runs of different N can go in separate processes (``python -m ringrift_cluster.sim project``)."""
    rows = []
    have = cached() if reuse else {}
    total = len(todo)
    for key in todo:
        n, preset, loss, stall = key
        if key in have:
            rows.append(have[key])
            continue
        if only_cached:
            log(f"not run (not in {CACHE}): N={n} {preset} loss={loss:g} stall={stall:g}")
            continue
        log(f"projection {len(rows) + 1}/{total}: N={n} {preset} loss={loss:g} stall={stall:g}")
        r = run(Scenario(n=n, preset=preset, loss=loss, stall_fraction=stall, kills=kills, seed=7,
                         model=model.with_(**LAN_LATENCY)), progress=n >= 3000)
        ae = anti_entropy_bytes_s(n, preset)
        r["anti_entropy_bytes_per_node_s"] = round(ae)
        r["gossip_bytes_per_node_s"] = r["bytes_per_node_s"]
        r["bytes_per_node_s"] = round(r["bytes_per_node_s"] + ae)
        r["cluster_bytes_s"] = round(r["bytes_per_node_s"] * n / 2)  # every byte is sent once, received once
        log(f"  detection p50/p99 {r['detection_p50_s']}/{r['detection_p99_s']} s, {r['msgs_per_node_s']} msgs/s, "
            f"{r['bytes_per_node_s']} B/s, false deaths {r['false_deaths']}, {r['wall_s']} s wall")
        save(r)
        rows.append(r)
    return rows


def cold_starts(sizes: list[int], presets: tuple[str, ...] = PRESETS, reuse: bool = False,
                only_cached: bool = False) -> list[dict[str, Any]]:
    """Cold start to a converged view per (N, preset), cached like the projections; the real
    runs' N too (all started within 2 s, as the bench's processes are)."""
    from .coldstart import cold_start
    have: dict[str, Any] = json.loads(COLD_CACHE.read_text()) if (reuse or only_cached) and COLD_CACHE.exists() else {}
    todo = [(n, p, COLD_WINDOW_S) for n in sizes for p in presets] + [(n, "lan", 2.0) for n in COLD_CHECK_SIZES]
    rows = []
    for n, preset, window in todo:
        key = f"{n}/{preset}/{window:g}"
        if key not in have:
            if only_cached:
                log(f"cold start not run (not in {COLD_CACHE}): {key}")
                continue
            log(f"cold start: N={n} {preset}, every start within {window:g} s")
            def keep(row: dict[str, Any], key: str = key) -> None:
                with open(PLOTS / ".projections.lock", "w") as lock:  # other processes save here too
                    fcntl.flock(lock, fcntl.LOCK_EX)
                    now = json.loads(COLD_CACHE.read_text()) if COLD_CACHE.exists() else {}
                    now[key] = row
                    COLD_CACHE.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")

            r = cold_start(n, preset, calibrate.fitted_model().with_(**LAN_LATENCY), seed=7, start_window_s=window,
                           progress=n >= 3000, checkpoint=keep if n >= 3000 else None)
            log(f"  99 % of views {r['views_99_s']} s, converged {r['converge_s']} s, {r['wall_s']} s wall")
            keep(r)
            have[key] = r
        rows.append(dict(have[key]))
    real = {r["nodes"]: r.get("converge_s") for f in (calibrate.REAL_CALIBRATION, calibrate.REAL_HOLDOUT) if f.exists()
            for r in calibrate.load_rows(f)}
    for r in rows:
        if r["start_window_s"] < 5:
            r["real_converge_s"] = real.get(r["n"])
    return rows


def _json(projections: list[dict[str, Any]], cal: dict[str, Any], hold: dict[str, Any] | None,
          cold: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("n", "preset", "loss", "stall", "detection_p50_s", "detection_p99_s", "msgs_per_node_s",
            "bytes_per_node_s", "max_datagram_b", "false_deaths", "memory_per_node_mb", "false_suspect_events",
            "false_failed_events", "dissemination_t99_s", "cluster_bytes_s", "undetected", "dead_told")
    cold_keys = ("n", "preset", "start_window_s", "views_50_s", "views_90_s", "views_99_s", "converge_s",
                 "max_datagram_b", "bytes_per_node_s", "real_converge_s")
    return {"projections": [{k: r.get(k) for k in keys} for r in projections],
            "cold_start": [{k: r.get(k) for k in cold_keys} for r in cold],
            "calibration": {"points": {str(p["n"]): p["error"] for p in cal["points"]},
                            "holdout_n": hold["n"] if hold else None, "holdout_error": hold["error"] if hold else None,
                            "holdout_error_current_model": hold["now"]["error"] if hold else None,
                            "fitted": {"report_delay_s": cal["model"]["report_delay_s"]}}}


def build(sizes: list[int], quick: bool = False, reuse: bool = False, only_cached: bool = False) -> None:
    started = time.monotonic()
    log("calibration: the fitted model (docs/scale/fitted_model.json) against the real runs")
    cal = calibrate.check(log=log)
    hold = calibrate.holdout() if calibrate.REAL_HOLDOUT.exists() and calibrate.PREDICTION.exists() else None
    if hold is not None:
        hold["now"] = calibrate.holdout_now()
    projections = project(plan(sizes, quick), calibrate.fitted_model(), reuse or only_cached, only_cached=only_cached)
    cold = cold_starts(sizes, reuse=reuse or only_cached, only_cached=only_cached)
    PLOTS.mkdir(parents=True, exist_ok=True)
    from . import plots
    plots.draw(PLOTS, cal, hold, projections, cold)
    data = _json(projections, cal, hold, cold)
    (DOCS / "scale.json").write_text(json.dumps(data, indent=2) + "\n")
    from .markdown import render
    (DOCS / "scale.md").write_text(render(cal, hold, projections, sizes, LARGE_OVERRIDES, KILLS, cold))
    log(f"wrote docs/scale.md, docs/scale.json and {PLOTS}/*.png in {time.monotonic() - started:.0f} s")
