#!/usr/bin/env python3
"""Legacy baseline: Bully failover and heartbeat death detection, with real node processes.

Each trial starts a fresh N-node cluster (``--preset local`` or ``lan``), waits for a leader,
SIGKILLs it, and records
  - detection: from the kill until every survivor reports the leader ``failed``;
  - failover: from the kill until every survivor agrees on a new leader.
Prints one line per trial and a p50 / max summary.

  python scripts/bench/legacy_failover.py --preset local --nodes 5 --trials 10
  python scripts/bench/legacy_failover.py --preset lan --nodes 3 --trials 1   # ~6 minutes a trial
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from ringrift_cluster.testing import LocalCluster


def trial(args: argparse.Namespace, root: Path) -> tuple[float, float]:
    with LocalCluster(args.nodes, root, preset=args.preset) as cluster:
        cluster.start_all()
        cluster.wait_converged(args.start_timeout)
        leader = cluster.wait_for_leader(args.start_timeout)
        survivors = [n for n in cluster.nodes if n != leader]
        killed = time.monotonic()
        cluster.kill(leader)
        detected = failover = None
        deadline = killed + args.trial_timeout
        while (detected is None or failover is None) and time.monotonic() < deadline:
            statuses = cluster.statuses(survivors)
            now = time.monotonic() - killed
            if detected is None and all(s and s["peers"].get(leader, {}).get("state") == "failed" for s in statuses.values()):
                detected = now
            views = {(s or {}).get("leader_id") for s in statuses.values()}
            if failover is None and len(views) == 1 and None not in views and leader not in views:
                failover = now
            time.sleep(args.poll)
        if detected is None or failover is None:
            raise SystemExit(f"trial incomplete after {args.trial_timeout}s: detected={detected} failover={failover}")
        return failover, detected


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="local", choices=["local", "lan"])
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--poll", type=float, default=0.05)
    parser.add_argument("--start-timeout", type=float, default=120)
    parser.add_argument("--trial-timeout", type=float, default=900)
    args = parser.parse_args()
    failovers, detections = [], []
    with tempfile.TemporaryDirectory(prefix="rr-bench-") as tmp:
        for i in range(args.trials):
            failover, detected = trial(args, Path(tmp) / f"t{i}")
            failovers.append(failover)
            detections.append(detected)
            print(f"trial {i + 1}: failover {failover:7.2f}s   detection {detected:7.2f}s", flush=True)
    print(f"\nlegacy preset={args.preset} nodes={args.nodes} trials={args.trials}")
    print(f"  failover  (kill -> survivors agree on a new leader): p50 {statistics.median(failovers):.2f}s  max {max(failovers):.2f}s")
    print(f"  detection (kill -> every survivor reports failed):   p50 {statistics.median(detections):.2f}s  max {max(detections):.2f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
