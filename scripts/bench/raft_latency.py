"""Commit latency and pipelined throughput: our adapter beside raw pysyncobj, same settings.

For each backend (adapter = RaftConsensus through the asyncio bridge; raw = pysyncobj with the
same SyncObjConf, ``sync=True`` calls / ``callback=`` pipelining) a fresh N-voter cluster runs on
loopback and, inside one node process (no HTTP in the measured path):

* ``latency``: N sequential commits of one small command, on the leader and on a follower;
* ``pipeline``: M commands with at most K in flight, on the leader and on a follower.

    PYTHONPATH=. python scripts/bench/raft_latency.py --nodes 3 --n 2000 --pipeline 20000 --inflight 1000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_common import percentile, write_json

from ringrift_cluster.testing.engines import RaftCluster, parse_overrides

HERE = Path(__file__).resolve().parent

os.environ["RAFT_DRIVER_NO_STATE"] = "1"  # both kinds of node apply the same test ops only
RAW_NODE = [sys.executable, str(HERE / "raft_rawnode.py")]


async def run(kind: str, args: argparse.Namespace, base: Path, raft: dict[str, Any]) -> dict[str, Any]:
    node_cmd = None if kind == "adapter" else RAW_NODE
    out: dict[str, Any] = {}
    async with RaftCluster(args.nodes, base / kind, raft=raft, node_cmd=node_cmd) as cluster:
        await cluster.start_all()
        await cluster.wait_full_mesh(30.0)
        leader, term_before = await cluster.wait_agreed_leader(15.0)
        follower = next(n for n in cluster.ids if n != leader)
        for role, nid in (("leader", leader), ("follower", follower)):
            await cluster.post(nid, "/bench/latency", {"n": 200}, timeout=120)  # warm-up
            lat = (await cluster.post(nid, "/bench/latency", {"n": args.n}, timeout=600))["latencies"]
            out[f"latency_{role}"] = lat
            pipe = await cluster.post(nid, "/bench/pipeline", {"n": args.pipeline, "inflight": args.inflight},
                                      timeout=600)
            out[f"pipeline_{role}"] = pipe
            print(f"  {kind}/{role}: p50 {statistics.median(lat) * 1000:.2f} ms, p99 {percentile(lat, 99) * 1000:.2f} ms; "
                  f"pipelined {pipe['ops_per_s']:.0f} ops/s ({pipe['errors']} errors)", flush=True)
        leader_after, term_after = await cluster.wait_agreed_leader(15.0)
        out["terms"] = (term_before, term_after)
        print(f"  {kind}: leader {leader} term {term_before} before the load, {leader_after} term {term_after} after",
              flush=True)
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--pipeline", type=int, default=20000)
    parser.add_argument("--inflight", type=int, default=1000)
    parser.add_argument("--raft", nargs="*", default=[], help="raft setting overrides, key=value")
    parser.add_argument("--json", type=Path, help="also write the figures here (for report.py)")
    args = parser.parse_args()
    raft = parse_overrides(args.raft)
    base = Path(tempfile.mkdtemp(prefix="raft-latency-"))
    print(f"{args.nodes} voters, preset local + {raft or 'no overrides'}; {args.n} sequential commits; "
          f"{args.pipeline} pipelined with {args.inflight} in flight")
    results = {kind: await run(kind, args, base, raft) for kind in ("adapter", "raw")}
    print()
    print("| backend | submitted on | commit p50 ms | commit p99 ms | pipelined ops/s |")
    print("|---|---|---|---|---|")
    for kind, label in (("adapter", "adapter (RaftConsensus)"), ("raw", "raw pysyncobj")):
        for role in ("leader", "follower"):
            lat = results[kind][f"latency_{role}"]
            pipe = results[kind][f"pipeline_{role}"]
            print(f"| {label} | {role} | {statistics.median(lat) * 1000:.2f} | {percentile(lat, 99) * 1000:.2f} | "
                  f"{pipe['ops_per_s']:.0f} |")
    write_json(args.json, {"nodes": args.nodes, "raft": raft, "n": args.n, "pipeline": args.pipeline,
                           "inflight": args.inflight, "results": results})


if __name__ == "__main__":
    asyncio.run(main())
