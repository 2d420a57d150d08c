"""Every mode at every size, with real ``ringrift-cluster run`` nodes on loopback (LocalCluster,
``--preset``, ``local`` by default, at most 5 voters): the ADR-013 comparison measured.

Per mode (``http+bully``, ``swim+raft``, ``hybrid``) and N (``--sizes``):

* idle footprint per node over ``--idle`` s: CPU % of one core and RSS from /proc, membership
  messages sent per node per minute (heartbeat requests and answers, or SWIM datagrams) and SWIM
  bytes/s;
* ``--trials`` leader SIGKILLs under a small sequential write load through a survivor (10/s):
  detection (until every survivor's ``/membership/events`` has the leader ``failed``), failover
  (until the survivors agree on a new leader, polled every 0.1 s), the next committed write (the
  first write started after the kill to be acknowledged), and acknowledged writes the new leader
  does not hold (state replication);
* split-brain, at the smallest N: the leader is paused (SIGSTOP) past its lease while writes go
  on, then resumed; the most nodes claiming to lead at one moment afterwards, and acknowledged
  writes lost.

    .venv/bin/python scripts/bench/cluster_modes.py --sizes 5,30 --trials 1 --json modes.json
    .venv/bin/python scripts/bench/cluster_modes.py --preset lan --trials 0 --pause 0 --idle 30   # idle only
"""

from __future__ import annotations

import argparse
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench_common import footprint, progress, write_json

from ringrift_cluster.demo.load import lost_writes
from ringrift_cluster.testing import LocalCluster, wait_until
from ringrift_cluster.testing.api_client import JsonClient

TOKEN = "bench-token"
MODES = {"http+bully": ("http", "bully"), "swim+raft": ("swim", "raft"), "hybrid": ("hybrid", "hybrid")}


def traffic(described: Any) -> tuple[int, int | None]:
    """(membership messages sent, SWIM bytes sent) in a node's ``membership`` status block,
    whatever its backend (hybrid nests both)."""
    messages, sent_bytes = 0, None
    if isinstance(described, dict):
        for key, value in described.items():
            if key in ("messages_sent", "heartbeats_sent", "heartbeats_received") and isinstance(value, int):
                messages += value
            elif key == "bytes_sent" and isinstance(value, int):
                sent_bytes = (sent_bytes or 0) + value
            elif isinstance(value, dict) and key not in ("peers", "by_type", "config"):
                more, more_bytes = traffic(value)
                messages += more
                if more_bytes is not None:
                    sent_bytes = (sent_bytes or 0) + more_bytes
    return messages, sent_bytes


class Writer(threading.Thread):
    """Sequential writes through one node at ``rate``/s: (started, acknowledged or None, work id)."""

    def __init__(self, cluster: LocalCluster, via: str, prefix: str, rate: float = 10.0) -> None:
        super().__init__(daemon=True)
        self.client = JsonClient(cluster.nodes[via].url, TOKEN)
        self.prefix, self.pause = prefix, 1.0 / rate
        self.log: list[tuple[float, float | None, str]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.halt.is_set():
            i += 1
            work_id = f"{self.prefix}-{i}"
            started = time.monotonic()
            status, body = self.client.call("POST", "/raft/work", {"work_id": work_id, "work_type": "bench",
                                                                   "request_id": work_id}, timeout=1.0)
            ok = status == 200 or (isinstance(body, dict) and body.get("error") == "already_exists")
            self.log.append((started, time.monotonic() if ok else None, work_id))
            self.halt.wait(self.pause if ok else 0.02)
        self.client.close()

    def stop(self) -> None:
        self.halt.set()
        self.join(10)

    def acked(self) -> list[str]:
        return [work_id for _, done, work_id in self.log if done is not None]

    def first_ack_after(self, t: float) -> float | None:
        done = [d for s, d, _ in self.log if d is not None and s >= t]
        return min(done) - t if done else None


def idle(cluster: LocalCluster, seconds: float) -> dict[str, Any]:
    before = {n: traffic((s or {}).get("membership")) for n, s in cluster.statuses().items()}
    started = time.monotonic()
    usage = footprint({n: node.proc.pid for n, node in cluster.nodes.items()}, seconds)  # type: ignore[union-attr]
    after = {n: traffic((s or {}).get("membership")) for n, s in cluster.statuses().items()}
    elapsed = time.monotonic() - started
    msgs = [(after[n][0] - before[n][0]) * 60 / elapsed for n in after if n in before]
    sent_bytes = [(after[n][1] - before[n][1]) / elapsed for n in after
                  if n in before and after[n][1] is not None and before[n][1] is not None]
    return {"cpu_pct": [u["cpu_pct"] for u in usage.values()], "rss_mb": [u["rss_mb"] for u in usage.values()],
            "msgs_per_min": msgs, "bytes_per_s": sent_bytes or None}


def detection_s(cluster: LocalCluster, survivors: list[str], victim: str, killed_wall: float) -> float | None:
    """When the last survivor recorded the victim ``failed`` (from each node's own event log)."""
    latest = 0.0
    for node_id in survivors:
        events = cluster.get(node_id, "/membership/events?limit=200", timeout=5) or {}
        times = [e["at"] for e in events.get("events", [])
                 if e.get("node_id") == victim and e.get("kind") == "failed" and e.get("at", 0) >= killed_wall]
        if not times:
            return None
        latest = max(latest, min(times) - killed_wall)
    return latest


def kill_trial(cluster: LocalCluster, trial: int) -> dict[str, Any]:
    leader = cluster.wait_for_leader(120)
    # In hybrid the state follows Raft's leader, which need not be the leader /status names.
    raft_leader = (cluster.get(leader, "/raft/status", timeout=5) or {}).get("leader")
    survivors = [n for n in cluster.nodes if n != leader]
    writer = Writer(cluster, survivors[0], f"kill{trial}")
    writer.start()
    wait_until(lambda: len(writer.acked()) >= 5, 30, what="5 writes before the kill")
    killed, killed_wall = time.monotonic(), time.time()
    cluster.kill(leader)
    failover = None
    while time.monotonic() - killed < 120:
        agreed = cluster.agreed_leader(survivors)
        if agreed and agreed != leader:
            failover = time.monotonic() - killed
            break
        time.sleep(0.1)
    wait_until(lambda: writer.first_ack_after(killed) is not None, 120, what="a write after the kill")
    detected = wait_until(lambda: detection_s(cluster, survivors, leader, killed_wall), 120,
                          interval=0.5, what=f"{leader} failed on every survivor")
    time.sleep(1.0)
    writer.stop()
    new_leader = cluster.wait_for_leader(60, among=survivors)
    lost, unknown = lost_writes(cluster, new_leader, writer.acked())  # type: ignore[arg-type]
    result = {"killed": leader, "raft_leader": raft_leader, "new_leader": new_leader, "detection_s": detected, "failover_s": failover,
              "next_write_s": writer.first_ack_after(killed), "acked": len(writer.acked()), "lost": lost,
              "unknown": unknown}
    cluster.start(leader)
    cluster.wait_converged(300)
    return result


def split_brain(cluster: LocalCluster, pause_s: float) -> dict[str, Any]:
    """Pause the leader past its lease, resume it; who claims to lead, and what was lost."""
    leader = cluster.wait_for_leader(120)
    others = [n for n in cluster.nodes if n != leader]
    writers = [Writer(cluster, others[0], "sb-survivor"), Writer(cluster, leader, "sb-paused")]
    for w in writers:
        w.start()
    wait_until(lambda: all(len(w.acked()) >= 3 for w in writers), 30, what="writes before the pause")
    cluster.signal(leader, signal.SIGSTOP)
    time.sleep(pause_s)
    cluster.signal(leader, signal.SIGCONT)
    most = 0
    end = time.monotonic() + 5.0
    while time.monotonic() < end:
        roles = [(s or {}).get("role") for s in cluster.statuses().values()]
        most = max(most, roles.count("leader"))
        time.sleep(0.1)
    for w in writers:
        w.stop()
    final = cluster.wait_for_leader(60)
    acked = [a for w in writers for a in w.acked()]
    lost, unknown = lost_writes(cluster, final, acked)  # type: ignore[arg-type]
    return {"paused": leader, "pause_s": pause_s, "most_leaders_at_once": most, "acked": len(acked),
            "lost": lost, "unknown": unknown}


def run(mode: str, n: int, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    membership, consensus = MODES[mode]
    cluster = LocalCluster(n, root / f"{mode}-{n}", auth_token=TOKEN, preset=args.preset,
                           settings={"membership_mode": membership, "consensus_mode": consensus},
                           voters=[f"node-{i + 1:0{len(str(n))}d}" for i in range(min(5, n))])
    row: dict[str, Any] = {"mode": mode, "nodes": n, "voters": min(5, n), "preset": args.preset}
    try:
        measure(cluster, row, mode, n, args)
    except Exception as e:  # one mode or size that fails must not lose the others' figures
        row["error"] = f"{type(e).__name__}: {e}"[:400]
        print(f"  {mode} N={n}: FAILED: {row['error']}", flush=True)
    return row


def measure(cluster: LocalCluster, row: dict[str, Any], mode: str, n: int, args: argparse.Namespace) -> None:
    with cluster:
        progress(f"modes: {mode} N={n}: starting")
        started = time.monotonic()
        cluster.start_all()
        cluster.wait_converged(args.converge_timeout)
        cluster.wait_for_leader(120)
        row["converge_s"] = time.monotonic() - started
        time.sleep(2.0)
        progress(f"modes: {mode} N={n}: idle window {args.idle:g} s")
        row["idle"] = idle(cluster, args.idle)
        row["trials"] = []
        for trial in range(args.trials):
            progress(f"modes: {mode} N={n}: leader SIGKILL {trial + 1}/{args.trials}")
            row["trials"].append(kill_trial(cluster, trial))
            t = row["trials"][-1]
            print(f"  {mode} N={n}: detection {t['detection_s']:.2f} s, new leader agreed {t['failover_s'] or -1:.2f} s, "
                  f"next write {t['next_write_s']:.2f} s, lost {t['lost']} of {t['acked']} acknowledged", flush=True)
        if n == min(args.sizes) and args.pause > 0:
            progress(f"modes: {mode} N={n}: leader paused {args.pause:g} s")
            row["split_brain"] = split_brain(cluster, args.pause)
            print(f"  {mode} N={n}: split-brain probe {row['split_brain']}", flush=True)
    cpu, rss, msgs = row["idle"]["cpu_pct"], row["idle"]["rss_mb"], row["idle"]["msgs_per_min"]
    print(f"  {mode} N={n}: converged {row['converge_s']:.1f} s; idle CPU mean {sum(cpu) / len(cpu):.2f} % "
          f"(max {max(cpu):.2f}), RSS mean {sum(rss) / len(rss):.0f} MB, membership msgs/min/node "
          f"{sum(msgs) / max(1, len(msgs)):.0f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--sizes", default="5,30", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--trials", type=int, default=1, help="leader SIGKILLs per mode and size")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of the idle window")
    parser.add_argument("--pause", type=float, default=8.0, help="split-brain: seconds the leader is paused (0: skip)")
    parser.add_argument("--converge-timeout", type=float, default=300.0,
                        help="seconds a (mode, N) may take to converge before it is reported failed")
    parser.add_argument("--preset", default="local", help="the nodes' timing preset (local, lan, ...)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="wt-modes-") as tmp:
        for n in args.sizes:
            for mode in args.modes.split(","):
                rows.append(run(mode, n, args, Path(tmp)))
    write_json(args.json, {"rows": rows, "preset": args.preset})
    if any("error" in row for row in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
