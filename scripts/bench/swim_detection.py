"""SWIM failure detection on loopback: N node processes, K SIGKILLs, one table per setting.

    PYTHONPATH=. python scripts/bench/swim_detection.py --nodes 30 --kills 10

For each configuration (``--configs``, default ``local,defaults,raw``):

* ``local``    our backend with ``PRESETS["local"]``
* ``lan``      our backend with ``PRESETS["lan"]``
* ``defaults`` our backend with swim-p2p's default timings (period 1 s, ping 1 s x 2, 3 indirect,
  suspicion 5 s, Lifeguard on)
* ``raw``      swim-p2p as it comes (its transport, defaults, on the node's loop, no damping)

it converges the cluster, measures idle load per node (messages/s and bytes/s from our transport
counters, CPU and RSS from /proc), then kills K random members one at a time and records when each
survivor reports the victim failed. Detection time = until the *last* survivor reports it.
False transitions = suspect/failed events about members that were never killed. With
``--restart`` each victim is restarted after detection and the time until every survivor sees it
alive again is recorded.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ringrift_cluster.testing.swim_clusters import SwimCluster, wait_for

DEFAULTS = {
    "protocol_period_s": 1.0, "ping_timeout_s": 1.0, "ping_retries": 2, "indirect_probes": 3,
    "suspicion_timeout_s": 5.0, "lifeguard": True, "suspect_report_after_s": 1.0,
}
CONFIGS: dict[str, dict[str, Any]] = {
    "local": {"preset": "local", "swim": None, "engine": "ours"},
    "lan": {"preset": "lan", "swim": None, "engine": "ours"},
    "defaults": {"preset": "local", "swim": DEFAULTS, "engine": "ours"},
    "raw": {"preset": "local", "swim": None, "engine": "raw"},
}


def proc_usage(pid: int) -> tuple[float, int]:
    """(CPU seconds used so far, RSS bytes) of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    return cpu, rss


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def cpu_hogs(count: int) -> list[Any]:
    """Busy-looping processes competing for the CPUs (a loaded host)."""
    import subprocess

    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def run(name: str, nodes: int, kills: int, idle_s: float, detect_timeout: float, restart: bool,
        seed: int, hogs: int = 0, verbose: bool = False) -> dict[str, Any]:
    spec = CONFIGS[name]
    rng = random.Random(seed)
    workdir = Path(tempfile.mkdtemp(prefix=f"swim-bench-{name}-"))
    cluster = SwimCluster(workdir, nodes, preset=spec["preset"], swim=spec["swim"], engine=spec["engine"])
    result: dict[str, Any] = {"config": name + (f"+{hogs}hogs" if hogs else ""), "nodes": nodes}
    hog_procs = cpu_hogs(hogs)
    try:
        cluster.start()
        result["converge_s"] = round(wait_for(lambda: cluster.sees_all_alive(cluster.ids, cluster.ids),
                                              120, f"{name}: convergence", cluster.summary), 2)
        time.sleep(2.0)
        # Idle load.
        before = {n: (cluster.status(n), proc_usage(cluster.nodes[n].proc.pid)) for n in cluster.ids}
        start = time.monotonic()
        time.sleep(idle_s)
        elapsed = time.monotonic() - start
        msgs, byts, cpus, rsss = [], [], [], []
        for n in cluster.ids:
            st0, (cpu0, _) = before[n]
            st1 = cluster.status(n)
            cpu1, rss = proc_usage(cluster.nodes[n].proc.pid)
            if "messages_sent" in st1:
                msgs.append((st1["messages_sent"] + st1["messages_received"]
                             - st0["messages_sent"] - st0["messages_received"]) / elapsed)
                byts.append((st1["bytes_sent"] + st1["bytes_received"]
                             - st0["bytes_sent"] - st0["bytes_received"]) / elapsed)
            cpus.append(100 * (cpu1 - cpu0) / elapsed)
            rsss.append(rss / 2**20)
        result.update(
            msgs_per_s=round(statistics.mean(msgs), 1) if msgs else None,
            kbytes_per_s=round(statistics.mean(byts) / 1024, 1) if byts else None,
            cpu_pct=round(statistics.mean(cpus), 2), rss_mb=round(statistics.mean(rsss), 1),
        )
        idle_false = _false_events(cluster)
        # Kills.
        killed: set[str] = set()
        detections: list[float] = []
        first_suspects: list[float] = []
        rejoins: list[float] = []
        undetected = 0
        for _ in range(kills):
            live = [n for n in cluster.ids if n not in killed]
            victim = rng.choice(live)
            survivors = [n for n in live if n != victim]
            mark = {n: len(cluster.events(n)) for n in survivors}
            t_kill = time.monotonic()
            cluster.signal(victim, signal.SIGKILL)
            cluster.nodes[victim].proc.wait(5)
            killed.add(victim)

            def failed_everywhere() -> bool:
                return all(cluster.view(n).get(victim) == "failed" for n in survivors)

            try:
                wait_for(failed_everywhere, detect_timeout, f"{victim} failed everywhere",
                         lambda: cluster.summary(survivors[:5]))
            except AssertionError:
                undetected += 1
            times, suspects = [], []
            for n in survivors:
                for e in cluster.events(n)[mark[n]:]:
                    if e["node_id"] == victim and e["kind"] == "failed":
                        times.append(e["mono"] - t_kill)
                    if e["node_id"] == victim and e["kind"] in ("suspect", "failed"):
                        suspects.append(e["mono"] - t_kill)
            if times and len(times) >= len(survivors):
                detections.append(max(times))
            if verbose:
                print(f"#   kill {victim}: suspect {sorted(round(x, 2) for x in suspects)[:3]} "
                      f"failed {sorted(round(x, 2) for x in times)}", file=sys.stderr, flush=True)
            if suspects:
                first_suspects.append(min(suspects))
            if restart:
                cluster.spawn(victim)
                t_restart = time.monotonic()
                try:
                    wait_for(lambda: all(cluster.view(n).get(victim) == "alive" for n in survivors)
                             and cluster.sees_all_alive([victim], survivors), detect_timeout,
                             f"{victim} alive again", lambda: cluster.summary(survivors[:5]))
                    rejoins.append(time.monotonic() - t_restart)
                except AssertionError:
                    pass
                killed.discard(victim)
            time.sleep(1.0)
        time.sleep(3.0)
        false = _false_events(cluster)
        result.update(
            detect_p50=pct(detections, 50), detect_p99=pct(detections, 99),
            detect_max=max(detections) if detections else float("nan"),
            first_suspect_p50=pct(first_suspects, 50), undetected=undetected,
            false_suspect=false["suspect"] - idle_false["suspect"],
            false_failed=false["failed"] - idle_false["failed"],
            idle_false=idle_false["suspect"] + idle_false["failed"],
            raw_flaps=sum(cluster.status(n).get("raw_flaps", 0) for n in cluster.alive_ids()),
            raw_dead_flaps=sum(cluster.status(n).get("raw_dead_flaps", 0) for n in cluster.alive_ids()),
            restarts=sum(cluster.status(n).get("restarts", 0) for n in cluster.alive_ids()),
            rejoin_p50=pct(rejoins, 50) if restart else None,
            rejoin_max=max(rejoins) if rejoins else None,
        )
    finally:
        cluster.close()
        for hog in hog_procs:
            hog.kill()
            hog.wait()
    return result


def _false_events(cluster: SwimCluster) -> dict[str, int]:
    """Suspect/failed events, seen by any observer, about members that were never SIGKILLed."""
    counts = {"suspect": 0, "failed": 0}
    killed = {n for n, gens in cluster.generations.items() if any(g.proc.returncode == -9 for g in gens)}
    for n in cluster.ids:
        for e in cluster.all_events(n):
            if e["kind"] in counts and e["node_id"] not in killed:
                counts[e["kind"]] += 1
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=30)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--configs", default="local,defaults,raw")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle load measurement")
    parser.add_argument("--detect-timeout", type=float, default=90.0)
    parser.add_argument("--restart", action="store_true", help="restart each victim; measure rejoin")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--verbose", action="store_true", help="per kill: when each survivor reported it")
    parser.add_argument("--cpu-hogs", type=int, default=0, help="busy processes competing for the CPUs")
    parser.add_argument("--custom", action="append", default=[],
                        help="name:key=value,key=value  extra configuration on the local preset")
    args = parser.parse_args()
    for spec in args.custom:
        label, _, pairs = spec.partition(":")
        swim: dict[str, Any] = {}
        for pair in filter(None, pairs.split(",")):
            key, _, value = pair.partition("=")
            swim[key] = {"true": True, "false": False}.get(value.lower(), value)
            if isinstance(swim[key], str):
                swim[key] = float(value) if "." in value else int(value)
        CONFIGS[label] = {"preset": "local", "swim": swim, "engine": "ours"}
    rows = []
    for name in args.configs.split(","):
        print(f"# running {name} with {args.nodes} nodes, {args.kills} kills ...", file=sys.stderr, flush=True)
        row = run(name, args.nodes, args.kills, args.idle, args.detect_timeout, args.restart, args.seed,
                  args.cpu_hogs, args.verbose)
        print(f"# {row}", file=sys.stderr, flush=True)
        rows.append(row)
    columns = ["config", "nodes", "converge_s", "detect_p50", "detect_p99", "detect_max", "first_suspect_p50",
               "undetected", "false_suspect", "false_failed", "idle_false", "raw_flaps", "raw_dead_flaps", "restarts",
               "rejoin_p50", "rejoin_max", "msgs_per_s", "kbytes_per_s", "cpu_pct", "rss_mb"]
    print(" | ".join(columns))
    print(" | ".join("---" for _ in columns))
    for row in rows:
        cells = []
        for c in columns:
            v = row.get(c)
            cells.append(f"{v:.2f}" if isinstance(v, float) else str(v))
        print(" | ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
