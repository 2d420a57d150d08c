"""Failover when the leader's machine goes silent, beside a SIGKILL, in the namespace harness.

A SIGKILL closes the victim's TCP connections, so the survivors learn of the death at once; a
machine that loses power or its network sends nothing, and only timers notice. Each trial here
runs N real nodes, each in its own network namespace (``testing/netns``), and faults the Raft
leader one of two ways:

* ``blackhole``: every packet to and from the leader dropped (nft), the process left running;
* ``kill``: SIGKILL, for the same harness's figure of the kind every loopback bench measures.

The figure is the time from the fault to the commit of the first write *started after* it,
written sequentially through one surviving member (0.5 s per attempt). The trial then heals
(or restarts the victim) and waits until every member agrees on one leader again; it also counts
the elections the healed member's return causes (pysyncobj has no pre-vote: a member cut off
keeps raising its term, and its return can depose a healthy leader).

    sudo .venv/bin/python scripts/bench/failover_blackhole.py --nodes 5 --trials 8 [--preset lan]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench_common import machine, progress, summary, write_json

from ringrift_cluster.testing.netns import NetnsCluster

TOKEN = "bench-token"


class Writer:
    """Sequential writes through one member; keeps (start, end, ok) of every attempt."""

    def __init__(self, cluster: NetnsCluster, via: str, tag: str) -> None:
        self.cluster, self.via, self.tag = cluster, via, tag
        self.attempts: list[tuple[float, float, bool]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            started = time.monotonic()
            try:
                status, _ = self.cluster.post(self.via, "/raft/work", {"work_id": f"{self.tag}-{i}", "work_type": "t"},
                                              timeout=0.5)
            except OSError:
                status = 0
            self.attempts.append((started, time.monotonic(), status == 200))
            if status != 200:
                self.stop.wait(0.005)

    def first_commit_after(self, t: float) -> float | None:
        return next((end for start, end, ok in list(self.attempts) if ok and start >= t), None)


def term_of(cluster: NetnsCluster, node: str) -> int:
    return int((cluster.get(node, "/raft/status") or {}).get("term") or 0)


def trial(cluster: NetnsCluster, fault: str, index: int, timeout_s: float = 60.0) -> dict[str, Any]:
    leader = cluster.wait_for_leader(60)
    survivors = [n for n in cluster.nodes if n != leader]
    via = survivors[index % len(survivors)]
    writer = Writer(cluster, via, f"{fault}-{index}")
    writer.thread.start()
    try:
        while writer.first_commit_after(time.monotonic() - 1.0) is None:  # the writer is committing
            if writer.stop.wait(0.05) or len(writer.attempts) > 2000:
                raise RuntimeError(f"no write commits through {via} before the fault")
        term_before = term_of(cluster, leader)
        if fault == "blackhole":
            cluster.isolate(leader)
        else:
            cluster.kill(leader)
        # From when the fault is in force: loading the drop rules takes tens of ms, and a write
        # that commits meanwhile is no failover.
        at = time.monotonic()
        while (done := writer.first_commit_after(at)) is None:
            if time.monotonic() - at > timeout_s:
                raise RuntimeError(f"no write committed within {timeout_s:.0f} s of the {fault}")
            writer.stop.wait(0.01)
    finally:
        writer.stop.set()
        writer.thread.join()
    new_leader = cluster.wait_for_leader(30, among=survivors)
    term_before_heal = term_of(cluster, new_leader)
    if fault == "blackhole":
        cluster.heal()
    else:
        cluster.start(leader)
    cluster.wait_converged(90)
    agreed = cluster.wait_for_leader(60)
    # Terms the survivors went through to elect: 1 is a clean election; more are rounds lost to
    # split votes or to candidates whose log was behind a voter's.
    return {"failover_s": done - at, "old_leader": leader, "new_leader": new_leader, "after_heal": agreed,
            "election_rounds": term_before_heal - term_before,
            # The writer's attempts from the fault to its first commit (ms from the fault; ok):
            # shows whether the time went to the election or to an attempt stuck on the old leader.
            "attempts_ms": [(round((s - at) * 1000), round((e - at) * 1000), ok)
                            for s, e, ok in writer.attempts if e >= at and s <= done][:12],
            "elections_on_return": max(0, term_of(cluster, agreed) - term_before_heal)}


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    settings = {"consensus_mode": "raft", "membership_mode": args.membership}
    out: dict[str, Any] = {}
    with NetnsCluster(args.nodes, root, preset=args.preset, settings=settings, auth_token=TOKEN) as cluster:
        cluster.start_all()
        cluster.wait_converged(90)
        for fault in args.faults.split(","):
            rows = []
            for i in range(args.trials):
                rows.append(trial(cluster, fault, i))
                progress(f"{fault} {i + 1}/{args.trials}: {rows[-1]['failover_s'] * 1000:.0f} ms, "
                         f"{rows[-1]['election_rounds']} term(s) to elect, "
                         f"{rows[-1]['elections_on_return']} election(s) when the old leader came back")
            times = [r["failover_s"] * 1000 for r in rows]
            out[fault] = {"failover_ms": summary(times), "samples_ms": times,
                          "elections_on_return": sum(r["elections_on_return"] for r in rows),
                          "election_rounds": [r["election_rounds"] for r in rows], "trials": rows}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--preset", default="local", choices=["local", "lan"])
    parser.add_argument("--membership", default="http", choices=["http", "swim", "hybrid"])
    parser.add_argument("--faults", default="blackhole,kill")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rr-blackhole-") as tmp:
        result = run(args, Path(tmp))
    print(f"\n{args.nodes} voters, {args.preset} preset, {args.membership} membership, each node in its own "
          f"network namespace; failover = fault to the first committed write started after it")
    print(f"{'fault':<10} {'trials':>6} {'p50 ms':>8} {'p90 ms':>8} {'max ms':>8} {'elections on return':>20}")
    for fault, figures in result.items():
        s = figures["failover_ms"]
        print(f"{fault:<10} {s['n']:>6} {s['p50']:>8.0f} {s['p90']:>8.0f} {s['max']:>8.0f} "
              f"{figures['elections_on_return']:>20}")
    write_json(args.json, {"machine": machine(), "args": vars(args) | {"json": None}, "results": result})


if __name__ == "__main__":
    main()
