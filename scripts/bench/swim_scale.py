"""SWIM at scale on loopback: bounded gossip beside swim-p2p's own, N = 10 ... the most this
machine holds. Every node is a full node of our backend (own sockets, own engine thread); several
share a process (``ringrift_cluster.testing.drivers.swim pack``) so the library is not imported N times.

    PYTHONPATH=. python scripts/bench/swim_scale.py --sizes 10,30,60,100 --ramp 150,200,250 \\
        --modes bounded,library --preset lan --kills 3 --json swim_scale.json

Per N and mode: convergence (last node started -> every node sees every other alive), per-node
msgs/s and bytes/s (sent + received; mean and max over nodes) in an idle window, the largest
datagram any node sent, idle CPU and RSS per node (a process's figures divided by its nodes; RSS
per process too), detection after each of K silent kills (until the *last* survivor reports the
member failed; p50/p99), and false ``suspect``/``failed`` events (about members never killed)
after convergence. ``--ramp`` then tries bigger N in bounded mode, once each, until one fails:
the highest N that converged, detected every kill and reported no false failure is printed with
what stopped the next one. Load average is recorded: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from ringrift_cluster.testing.swim_clusters import PackCluster, wait_for

MODES = {"bounded": {"bounded_gossip": True}, "library": {"bounded_gossip": False}}


def progress(text: str) -> None:
    print(f"# [{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.1f}] {text}", file=sys.stderr, flush=True)


def proc_usage(pid: int) -> tuple[float, int]:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return ((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"),
            int(fields[21]) * os.sysconf("SC_PAGE_SIZE"))


def pct(values: list[float], p: float) -> Optional[float]:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))], 2)


def false_events(c: PackCluster, killed: set[str], since: float) -> dict[str, int]:
    out = {"suspect": 0, "failed": 0}
    for e in list(c.events):
        if e["kind"] in out and e["node_id"] not in killed and e["mono"] >= since:
            out[e["kind"]] += 1
    return out


def run(n: int, mode: str, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    per = args.per_process or max(5, min(25, math.ceil(n / 10)))
    swim = {**args.swim_overrides, **MODES[mode]}
    cluster = PackCluster(Path(tempfile.mkdtemp(prefix=f"swim-scale-{n}-{mode}-")), n, per_process=per,
                          preset=args.preset, swim=swim)
    row: dict[str, Any] = {"nodes": n, "mode": mode, "processes": len(cluster.groups), "load_start": round(os.getloadavg()[0], 1)}
    killed: set[str] = set()
    try:
        progress(f"N={n} {mode}: starting {len(cluster.groups)} processes")
        cluster.start()
        wait_for(lambda: len(cluster.started) == n, args.start_timeout, f"{n} nodes started",
                   lambda: f"{len(cluster.started)} started")
        last_start = max(cluster.started.values())
        progress(f"N={n} {mode}: all started, converging")
        try:
            wait_for(cluster.converged, args.converge_timeout, "convergence",
                       lambda: sorted(s["alive"] for s in cluster.snapshot().values())[:5])
            row["converge_s"] = round(time.monotonic() - last_start, 1)
        except AssertionError:
            row["converge_s"] = None
            row["limit"] = f"did not converge within {args.converge_timeout:.0f}s"
            alive = sorted(s["alive"] for s in cluster.snapshot().values())
            row["alive_min"] = alive[0] if alive else 0
            return row
        converged_at = time.monotonic()
        # Idle window: traffic and CPU per node.
        time.sleep(args.settle)
        before = cluster.snapshot()
        usage0 = {pid: proc_usage(pid) for pid in cluster.pids()}
        t0 = time.monotonic()
        progress(f"N={n} {mode}: converged in {row['converge_s']}s, idle window {args.idle:.0f}s")
        time.sleep(args.idle)
        after = cluster.snapshot()
        elapsed = time.monotonic() - t0
        usage1 = {pid: proc_usage(pid) for pid in cluster.pids()}
        msgs, byts = [], []
        for node_id, st in after.items():
            st0 = before.get(node_id)
            if st0 is None or st["mono"] <= st0["mono"]:
                continue
            dt = st["mono"] - st0["mono"]
            msgs.append((st["messages_sent"] + st["messages_received"] - st0["messages_sent"] - st0["messages_received"]) / dt)
            byts.append((st["bytes_sent"] + st["bytes_received"] - st0["bytes_sent"] - st0["bytes_received"]) / dt)
        per_proc = [len(g) for g in cluster.groups]
        cpu = [100 * (usage1[p][0] - usage0[p][0]) / elapsed / k for p, k in zip(usage0, per_proc) if p in usage1]
        rss = [usage1[p][1] / 2**20 for p in usage1]
        by_type: dict[str, float] = {}
        for node_id, st in after.items():
            for key, (count, size) in (st.get("by_type") or {}).items():
                c0, s0 = (before.get(node_id, {}).get("by_type") or {}).get(key, (0, 0))
                by_type[key] = by_type.get(key, 0.0) + (size - s0) / elapsed / max(1, len(after))
        row.update(
            msgs_per_s_mean=round(statistics.mean(msgs), 1), msgs_per_s_max=round(max(msgs), 1),
            bytes_per_s_mean=round(statistics.mean(byts)), bytes_per_s_max=round(max(byts)),
            cpu_pct_per_node=round(statistics.mean(cpu), 2),
            rss_mb_per_node=round(sum(rss) / n, 1), rss_mb_per_process=round(statistics.mean(rss), 1),
            bytes_per_s_by_type={k: round(v) for k, v in sorted(by_type.items()) if v >= 1},
        )
        # Kills.
        detections: list[float] = []
        undetected = 0
        for i in range(args.kills):
            victim = rng.choice([x for x in cluster.live() if x != cluster.ids[0]])
            progress(f"N={n} {mode}: kill {i + 1}/{args.kills} ({victim})")
            t_kill = cluster.kill(victim)
            killed.add(victim)
            survivors = cluster.live()
            try:
                wait_for(lambda: len(cluster.events_about(victim, "failed", t_kill)) >= len(survivors),
                           args.detect_timeout, f"{victim} failed everywhere")
                detections.append(max(cluster.events_about(victim, "failed", t_kill).values()) - t_kill)
            except AssertionError:
                undetected += 1
            time.sleep(1.0)
        time.sleep(2.0)
        final = cluster.snapshot()
        false = false_events(cluster, killed, converged_at)
        startup = false_events(cluster, killed, 0.0)
        row.update(
            detect_p50=pct(detections, 50), detect_p99=pct(detections, 99), undetected=undetected,
            false_suspect=false["suspect"], false_failed=false["failed"],
            startup_false_suspect=startup["suspect"] - false["suspect"],
            startup_false_failed=startup["failed"] - false["failed"],
            largest_datagram=max(st.get("largest_datagram") or 0 for st in final.values()),
            oversize_over_tcp=sum(st.get("oversize") or 0 for st in final.values()),
            oversize_dropped=sum(st.get("oversize_dropped") or 0 for st in final.values()),
            send_errors=sum(st.get("send_errors") or 0 for st in final.values()),
            piggyback_depth_max=max(st.get("piggyback_depth") or 0 for st in final.values()),
        )
        if undetected or false["failed"]:
            row["limit"] = f"{undetected} kills undetected, {false['failed']} false failures"
    except AssertionError as e:
        row["limit"] = str(e).splitlines()[0]
    finally:
        row["load_end"] = round(os.getloadavg()[0], 1)
        cluster.close()
    return row


COLUMNS = ["nodes", "mode", "converge_s", "msgs_per_s_mean", "msgs_per_s_max", "bytes_per_s_mean", "bytes_per_s_max",
           "largest_datagram", "cpu_pct_per_node", "rss_mb_per_node", "rss_mb_per_process", "detect_p50", "detect_p99",
           "undetected", "false_suspect", "false_failed", "load_start", "limit"]


def table(rows: list[dict[str, Any]]) -> str:
    lines = [" | ".join(COLUMNS), " | ".join("---" for _ in COLUMNS)]
    for row in rows:
        lines.append(" | ".join("" if row.get(c) is None else str(row.get(c)) for c in COLUMNS))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,30,60,100")
    parser.add_argument("--ramp", default="", help="bigger N tried in bounded mode until one fails")
    parser.add_argument("--modes", default="bounded,library")
    parser.add_argument("--preset", default="lan")
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--idle", type=float, default=20.0)
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument("--per-process", type=int, default=0, help="nodes per process (0: by N)")
    parser.add_argument("--start-timeout", type=float, default=300.0)
    parser.add_argument("--converge-timeout", type=float, default=180.0)
    parser.add_argument("--detect-timeout", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--json", default="swim_scale.json")
    parser.add_argument("--swim", action="append", default=[], metavar="KEY=VALUE",
                        help="a swim setting over the preset (e.g. suspicion_timeout_s=1.5)")
    args = parser.parse_args()
    args.swim_overrides = {}
    for pair in args.swim:
        key, _, value = pair.partition("=")
        args.swim_overrides[key] = {"true": True, "false": False}.get(value.lower(), value)
        if isinstance(args.swim_overrides[key], str):
            args.swim_overrides[key] = float(value) if "." in value else int(value)
    rows: list[dict[str, Any]] = []
    meta = {"cores": os.cpu_count(), "preset": args.preset, "swim": args.swim_overrides, "argv": sys.argv[1:],
            "started": time.strftime("%Y-%m-%dT%H:%M:%S")}

    def save() -> None:
        Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))

    for n in [int(x) for x in args.sizes.split(",") if x]:
        for mode in args.modes.split(","):
            row = run(n, mode, args, args.seed + n)
            progress(f"N={n} {mode}: {json.dumps(row)}")
            rows.append(row)
            save()
    stopped = None
    for n in [int(x) for x in args.ramp.split(",") if x]:
        row = run(n, "bounded", args, args.seed + n)
        row["ramp"] = True
        progress(f"N={n} bounded (ramp): {json.dumps(row)}")
        rows.append(row)
        save()
        if row.get("limit"):
            stopped = f"N={n}: {row['limit']} (load average {row['load_start']} -> {row['load_end']} on {os.cpu_count()} cores)"
            break
    passed = [r["nodes"] for r in rows if r["mode"] == "bounded" and not r.get("limit")]
    meta["highest_n"] = max(passed) if passed else None
    meta["stopped"] = stopped
    bounded = [r for r in rows if r["mode"] == "bounded" and r.get("bytes_per_s_mean")]
    if bounded:
        rates = [r["bytes_per_s_mean"] for r in bounded]
        meta["bytes_per_s_max_over_min"] = round(max(rates) / min(rates), 2)
    meta["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    save()
    print(table(rows))
    print(f"\nhighest N reached (bounded, converged, every kill detected, no false failure): {meta['highest_n']}")
    if stopped:
        print(f"stopped by: {stopped}")
    if "bytes_per_s_max_over_min" in meta:
        print(f"bounded per-node bytes/s, max/min across N: {meta['bytes_per_s_max_over_min']}")
    print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
