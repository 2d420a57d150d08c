"""CPU time per Raft write, per member and per thread, with the write latency or rate beside it.

Starts a cluster of real node processes, writes to the leader (``POST /raft/work``) with the
durability benchmark's client code, and reads every thread's CPU time from ``/proc`` before and
after: what a change to the commit path costs or saves across the whole cluster, which a latency
figure on a 2-core machine hides (every member competes for the same cores).

    .venv/bin/python scripts/bench/cpu_per_write.py --durability batch --writes 2000
    .venv/bin/python scripts/bench/cpu_per_write.py --clients 16 --seconds 8 --kept
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_common import percentile, thread_cpu, write_json
from durability import TOKEN, concurrent_writes, sequential_writes, work_add

from ringrift_cluster.testing import LocalCluster

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--durability", choices=("fsync", "batch", "none"), default="batch")
    parser.add_argument("--writes", type=int, default=2000, help="sequential writes (with --clients 1)")
    parser.add_argument("--clients", type=int, default=1, help="clients writing at once; above 1, for --seconds")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--kept", action="store_true", help="each client keeps its connection")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = LocalCluster(args.nodes, Path(tmp) / "cluster", auth_token=TOKEN,
                               settings={"consensus_mode": "raft", "raft": {"durability": args.durability}})
        try:
            cluster.start_all()
            cluster.wait_converged(60)
            leader = cluster.wait_for_leader(60)
            url = cluster.nodes[leader].url
            warm = work_add(url)
            for i in range(200):  # connections, caches and the engines' first entries out of the figures
                warm(f"warm-{i}")
            pids = {n: cluster.nodes[n].proc.pid for n in cluster.nodes}  # type: ignore[union-attr]
            before = {n: thread_cpu(p) for n, p in pids.items()}
            own_before = os.times()
            started = time.perf_counter()
            latencies, done = run(url, args)
            wall = time.perf_counter() - started
            after = {n: thread_cpu(p) for n, p in pids.items()}
            own_after = os.times()
            batching = (cluster.get(leader, "/raft/status") or {}).get("batching")
        finally:
            cluster.shutdown()
    per_write = {n: {t: (after[n].get(t, 0.0) - before[n].get(t, 0.0)) / max(1, done) * 1e6 for t in after[n]}
                 for n in pids}
    client_us = (own_after.user + own_after.system - own_before.user - own_before.system) / max(1, done) * 1e6
    result: dict[str, Any] = {
        "durability": args.durability, "nodes": args.nodes, "clients": args.clients, "kept": args.kept,
        "writes": done, "writes_per_s": done / wall, "leader": leader, "batching": batching,
        "p50_ms": statistics.median(latencies) if latencies else None, "p99_ms": percentile(latencies, 99),
        "cpu_us_per_write": {n: sum(t.values()) for n, t in per_write.items()},
        "threads_us_per_write": per_write, "client_us_per_write": client_us,
    }
    print_result(result)
    write_json(args.json, result)


def run(url: str, args: argparse.Namespace) -> tuple[list[float], int]:
    """Sequential writes (latencies in ms), or ``--clients`` writers for ``--seconds``."""
    if args.clients == 1:
        latencies = sequential_writes(work_add(url, args.kept), args.writes)
        return latencies, len(latencies)
    return [], concurrent_writes(lambda: work_add(url, args.kept), args.clients, args.seconds)


def print_result(r: dict[str, Any]) -> None:
    how = f"{r['clients']} client(s), {'kept connections' if r['kept'] else 'a new connection per write'}"
    rate = f"{r['writes_per_s']:.0f} writes/s" + (f", p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms"
                                                 if r["p50_ms"] is not None else "")
    print(f"{r['durability']}, {r['nodes']} members, {how}: {r['writes']} writes, {rate}")
    print(f"{'member':<18}{'CPU µs/write':>13}  busiest threads (µs/write)")
    for node, total in r["cpu_us_per_write"].items():
        threads = sorted(r["threads_us_per_write"][node].items(), key=lambda kv: -kv[1])
        busy = ", ".join(f"{name.split('/')[0]} {us:.0f}" for name, us in threads if us >= 5)
        label = f"{node}{' (leader)' if node == r['leader'] else ''}"
        print(f"{label:<18}{total:>13.0f}  {busy}")
    cluster = sum(r["cpu_us_per_write"].values())
    print(f"{'the cluster':<18}{cluster:>13.0f}")
    print(f"{'the client':<18}{r['client_us_per_write']:>13.0f}")
    if r["batching"]:
        print(f"batching on the leader: {r['batching']}")


if __name__ == "__main__":
    main()
