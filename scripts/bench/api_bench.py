"""What a client of the HTTP API sees, on a real SWIM + Raft LocalCluster (``ringrift-cluster run``
processes on loopback):

* latency at a fixed rate (wrk, ``--rate`` requests/s): ``GET /status``, ``GET /swim/members``,
  ``GET /raft/status`` on a follower, and a state write (``POST /raft/work``) through a follower
  (forwarded to the leader) and on the leader;
* write throughput: wrk flat out (``--connections``) on the leader, with the Raft term before and
  after (a term change under load is a false election);
* locks: acquire latency (sequential, kept-alive connection), and hand-over: a node holds a lock
  (ttl ``--lock-ttl``), it is SIGKILLed, and a waiter retries every 20 ms until it holds it.

    .venv/bin/python scripts/bench/api_bench.py --nodes 3 --seconds 10 --trials 3 --json api.json
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import wrk_load
from bench_common import progress, summary, timed, write_json

from ringrift_cluster.testing import LocalCluster, wait_until
from ringrift_cluster.testing.api_client import JsonClient

TOKEN = "bench-token"


def work_body(tag: str) -> str:
    """wrk's body template for ``POST /raft/work``: ids unique to the run (a repeated id is a 409)."""
    return '{"work_id": "%s-{id}", "work_type": "bench"}' % tag


def latency_at_rate(cluster: LocalCluster, leader: str, follower: str, args: argparse.Namespace) -> dict[str, Any]:
    routes = [("GET /status", follower, "/status", "GET", None),
              ("GET /swim/members", follower, "/swim/members", "GET", None),
              ("GET /raft/status", follower, "/raft/status", "GET", None),
              ("POST /raft/work via a follower", follower, "/raft/work", "POST", work_body("f")),
              ("POST /raft/work on the leader", leader, "/raft/work", "POST", work_body("l"))]
    out = {}
    for label, node, path, method, body in routes:
        progress(f"api: {label} at {args.rate:g}/s for {args.seconds:g} s")
        result = wrk_load.run(cluster.nodes[node].url + path, rate=args.rate, seconds=args.seconds,
                              connections=32, method=method, body=body,
                              headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
        print(f"  {label:34s} p50 {result['p50_ms']:6.2f} ms  p99 {result['p99_ms']:6.2f} ms  "
              f"max {result['max_ms']:7.2f} ms  {result['rate']:.0f} req/s  {result['errors']} errors", flush=True)
        if result["errors"] and method == "POST":  # show one refusal: an error rate alone says nothing
            sample = JsonClient(cluster.nodes[node].url, TOKEN).call("POST", path, {"work_id": f"probe-{label[-6:]}",
                                                                                   "work_type": "bench"})
            result["sample_refusal"] = sample
            print(f"    statuses {result['statuses']}; one more write now: {sample}", flush=True)
        out[label] = result
    return out


def throughput(cluster: LocalCluster, leader: str, args: argparse.Namespace) -> dict[str, Any]:
    term_before = cluster.get(leader, "/raft/status")["term"]
    progress(f"api: writes flat out on the leader, {args.connections} connections, {args.seconds:g} s")
    result = wrk_load.run(cluster.nodes[leader].url + "/raft/work", rate=0, seconds=args.seconds,
                          connections=args.connections, method="POST", body=work_body("t"),
                          headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
    status = wait_until(lambda: cluster.get(leader, "/raft/status", timeout=5), 30, what="raft status after load")
    result.update(term_before=term_before, term_after=status["term"], leader_after=status.get("leader"))
    print(f"  writes flat out: {result['rate']:.0f} acknowledged/s ({result['errors']} errors), p50 "
          f"{result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms; term {term_before} -> {status['term']}", flush=True)
    return result


def lock_acquire(cluster: LocalCluster, follower: str, n: int) -> list[float]:
    client = JsonClient(cluster.nodes[follower].url, TOKEN)
    times = []
    for i in range(n):
        ms, (status, body) = timed(lambda: client.call("POST", f"/raft/lock/acq-{i}", {"holder": follower, "ttl_s": 30}))
        if status == 200 and body.get("acquired"):
            times.append(ms)
        client.call("DELETE", f"/raft/lock/acq-{i}", {"holder": follower})
    client.close()
    return times


def lock_handover(cluster: LocalCluster, leader: str, follower: str, trial: int, ttl: float) -> float:
    """SIGKILL a lock's holder node; ms until the waiter (on ``follower``) holds the lock."""
    holder = next(n for n in cluster.nodes if n not in (leader, follower))
    name = f"handover-{trial}"
    client = JsonClient(cluster.nodes[follower].url, TOKEN)
    status, body = client.call("POST", f"/raft/lock/{name}", {"holder": holder, "ttl_s": ttl})
    if status != 200 or not body.get("acquired"):
        raise RuntimeError(f"the holder could not take {name}: {status} {body}")
    killed = time.perf_counter()
    cluster.kill(holder)
    while True:
        status, body = client.call("POST", f"/raft/lock/{name}", {"holder": follower, "ttl_s": ttl}, timeout=2)
        if status == 200 and body and body.get("acquired"):
            break
        if time.perf_counter() - killed > 4 * ttl + 30:
            raise RuntimeError(f"{name} not handed over within {4 * ttl + 30:.0f} s")
        time.sleep(0.02)
    handed = (time.perf_counter() - killed) * 1000
    client.close()
    cluster.start(holder)
    cluster.wait_converged(120)
    return handed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--rate", type=float, default=200.0, help="requests/s in the latency runs")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each wrk run")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections in the throughput run")
    parser.add_argument("--locks", type=int, default=200, help="sequential lock acquisitions timed")
    parser.add_argument("--trials", type=int, default=3, help="lock hand-overs after the holder's SIGKILL")
    parser.add_argument("--lock-ttl", type=float, default=5.0, help="the holder's lock ttl (s), as etcd's session TTL")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not wrk_load.available():
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="wt-api-bench-") as tmp, \
            LocalCluster(args.nodes, tmp, auth_token=TOKEN,
                         settings={"membership_mode": "swim", "consensus_mode": "raft"}) as cluster:
        progress(f"api: starting {args.nodes} swim+raft nodes")
        cluster.start_all()
        cluster.wait_converged(120)
        leader = cluster.wait_for_leader(120)
        follower = next(n for n in cluster.nodes if n != leader)
        result: dict[str, Any] = {"nodes": args.nodes, "rate": args.rate, "seconds": args.seconds}
        result["latency"] = latency_at_rate(cluster, leader, follower, args)
        result["throughput"] = throughput(cluster, leader, args)
        leader = cluster.wait_for_leader(60)
        follower = next(n for n in cluster.nodes if n != leader)
        progress(f"api: {args.locks} lock acquisitions")
        acquire = lock_acquire(cluster, follower, args.locks)
        result["lock_acquire_ms"] = acquire
        print(f"  lock acquire via a follower: {summary(acquire)}", flush=True)
        handovers = []
        for trial in range(args.trials):
            progress(f"api: lock hand-over trial {trial + 1}/{args.trials}")
            leader = cluster.wait_for_leader(60)
            follower = next(n for n in cluster.nodes if n != leader)
            handovers.append(lock_handover(cluster, leader, follower, trial, args.lock_ttl))
            print(f"  lock hand-over after the holder's SIGKILL: {handovers[-1]:.0f} ms", flush=True)
        result["lock_handover_ms"] = handovers
        result["lock_ttl_s"] = args.lock_ttl
    write_json(args.json, result)


if __name__ == "__main__":
    main()
