"""Failover benchmark: SIGKILL the Raft leader, time the next committed write.

Runs N voters on loopback twice in the same run: once with our adapter (RaftConsensus, via
ringrift_cluster.testing.drivers.raft) and once with raw pysyncobj using the same SyncObjConf
(scripts/bench/raft_rawnode.py). Per trial: a client writes sequentially through one surviving
follower (per-write timeout 0.5 s, 5 ms pause after a failure); the leader gets SIGKILL; the
figure is the time from the kill to the commit of the first write *started after* the kill. The
victim is restarted from its journal and the next trial waits until every member is connected
to every other, so trials do not overlap restarts.

    PYTHONPATH=. python scripts/bench/raft_failover.py --nodes 5 --trials 15 [--raft min_timeout_s=0.25 ...]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_common import percentile, write_json

from ringrift_cluster.testing.engines import RaftCluster, parse_overrides, poll_until

HERE = Path(__file__).resolve().parent

os.environ["RAFT_DRIVER_NO_STATE"] = "1"  # both kinds of node apply the same test ops only
RAW_NODE = [sys.executable, str(HERE / "raft_rawnode.py")]


async def _trial(cluster: RaftCluster, trial: int, kind: str) -> dict[str, Any]:
    leader, term = await cluster.wait_agreed_leader(15.0)
    writer_node = next(n for n in cluster.ids if n != leader)
    acks: list[tuple[float, float]] = []
    stop = asyncio.Event()

    async def writer() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            started = time.monotonic()
            command = {"op": "test_append", "rid": f"t{trial}-{i}", "args": {"value": f"t{trial}-{i}"}}
            try:
                answer = await cluster.submit(writer_node, command, timeout=0.5, http_timeout=3.0)
            except Exception:
                answer = {"ok": False}
            if answer.get("ok") and answer["result"].get("ok"):
                acks.append((started, time.monotonic()))
            else:
                await asyncio.sleep(0.005)

    task = asyncio.create_task(writer())
    await poll_until(lambda: _ready(acks, 5), 10.0, "5 writes before the kill")
    killed_at = time.monotonic()
    cluster.kill(leader, signal.SIGKILL)
    await poll_until(lambda: _after(acks, killed_at), 15.0, "a write committed after the kill")
    stop.set()
    await task
    failover = min(done for started, done in acks if started >= killed_at) - killed_at
    survivors = [n for n in cluster.ids if n != leader]
    new_leader, new_term = await cluster.wait_agreed_leader(15.0, nodes=survivors)
    hinted = await _hinted(cluster, survivors) if kind == "adapter" else None
    cluster.spawn(leader)
    await cluster.wait_serving(leader)
    await cluster.wait_full_mesh(30.0)
    return {"trial": trial, "killed": leader, "new_leader": new_leader, "term": new_term, "failover_s": failover,
            "from_term": term, "hinted": hinted}


async def _hinted(cluster: RaftCluster, nodes: list[str]) -> int | None:
    """Elections the survivors started early on a leader-loss hint, so far (None: hints off)."""
    total = None
    for nid in nodes:
        hints = (await cluster.get(nid, "/describe")).get("leader_hints") or {}
        if hints.get("enabled"):
            total = (total or 0) + hints.get("elections_started", 0)
    return total


async def _ready(acks: list[Any], n: int) -> tuple[bool, Any]:
    return len(acks) >= n, len(acks)


async def _after(acks: list[tuple[float, float]], t: float) -> tuple[bool, Any]:
    return any(started >= t for started, _ in acks), len(acks)


async def run(kind: str, nodes: int, trials: int, raft: dict[str, Any], base: Path) -> list[float]:
    node_cmd = None if kind == "adapter" else RAW_NODE
    async with RaftCluster(nodes, base / kind, raft=raft, node_cmd=node_cmd) as cluster:
        await cluster.start_all()
        await cluster.wait_full_mesh(30.0)
        figures = []
        for trial in range(trials):
            result = await _trial(cluster, trial, kind)
            figures.append(result["failover_s"])
            hinted = "" if result["hinted"] is None else f", hinted elections so far {result['hinted']}"
            print(f"  {kind:7s} trial {trial:2d}: killed {result['killed']}, new leader {result['new_leader']} "
                  f"(term {result['from_term']} -> {result['term']}), next write committed after "
                  f"{result['failover_s'] * 1000:.0f} ms{hinted}", flush=True)
        return figures


def table(rows: list[tuple[str, list[float]]]) -> str:
    lines = ["| backend | trials | min ms | p50 ms | p90 ms | max ms |", "|---|---|---|---|---|---|"]
    for name, values in rows:
        ms = [v * 1000 for v in values]
        lines.append(f"| {name} | {len(ms)} | {min(ms):.0f} | {statistics.median(ms):.0f} | "
                     f"{percentile(ms, 90):.0f} | {max(ms):.0f} |")
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--trials", type=int, default=15)
    parser.add_argument("--raft", nargs="*", default=[], help="raft setting overrides, key=value")
    parser.add_argument("--only", choices=["adapter", "raw"], default=None)
    parser.add_argument("--json", type=Path, help="also write the figures here (for report.py)")
    args = parser.parse_args()
    raft = parse_overrides(args.raft)
    base = Path(tempfile.mkdtemp(prefix="raft-failover-"))
    print(f"{args.nodes} voters, {args.trials} SIGKILLs of the leader each; preset local + {raft or 'no overrides'}")
    rows = []
    for kind in ("adapter", "raw"):
        if args.only and kind != args.only:
            continue
        rows.append((kind if kind == "raw" else "adapter (RaftConsensus)", await run(kind, args.nodes, args.trials, raft, base)))
    print()
    print("Failover: leader SIGKILL -> first write started after the kill is committed")
    print(table(rows))
    write_json(args.json, {"nodes": args.nodes, "raft": raft, "failover_s": {name: values for name, values in rows}})


if __name__ == "__main__":
    asyncio.run(main())
