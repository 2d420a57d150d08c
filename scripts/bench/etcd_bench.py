"""etcd beside us (ADR-013 Option B): a real etcd cluster on loopback (Debian's ``etcd-server``,
``--members``, by default 3) with low-latency timings (heartbeat 50 ms, election 250 ms), measured
the way ``api_bench.py`` and ``cluster_modes.py`` measure our nodes:

* put latency at a fixed rate (wrk, ``--rate``/s on ``/v3/kv/put`` of the leader's gateway) and
  puts flat out (``--connections``), with the Raft term before and after;
* failover: SIGKILL the leader; time until the first put *started after* the kill is committed
  through a surviving member (sequential puts, 0.5 s timeout each);
* locks: acquire latency (``/v3/lock/lock`` on a held lease, kept-alive connection) and
  hand-over: ``etcdctl lock --ttl T`` holds a lock, a second one waits, the holder is SIGKILLed;
  the time until the waiter holds it;
* idle footprint of each member (CPU %, RSS from /proc).

    .venv/bin/python scripts/bench/etcd_bench.py --seconds 10 --trials 5 --json etcd.json
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import wrk_load
from bench_common import footprint, progress, summary, timed, write_json

from ringrift_cluster.testing import wait_until
from ringrift_cluster.testing.api_client import JsonClient
from ringrift_cluster.testing.etcd import LOW_LATENCY, EtcdCluster, b64

PUT_BODY = '{"key": "{id64}", "value": "dmFsdWU="}'


def put_rates(cluster: EtcdCluster, leader: int, args: argparse.Namespace) -> dict[str, Any]:
    url = cluster.clients[leader] + "/v3/kv/put"
    headers = {"Content-Type": "application/json"}
    progress(f"etcd: puts at {args.rate:g}/s for {args.seconds:g} s")
    at_rate = wrk_load.run(url, rate=args.rate, seconds=args.seconds, connections=32, method="POST",
                           body=PUT_BODY, headers=headers)
    print(f"  put at {at_rate['rate']:.0f}/s: p50 {at_rate['p50_ms']:.2f} ms, p99 {at_rate['p99_ms']:.2f} ms "
          f"({at_rate['errors']} errors)", flush=True)
    term_before = cluster.term(leader)
    progress(f"etcd: puts flat out, {args.connections} connections, {args.seconds:g} s")
    flat = wrk_load.run(url, rate=0, seconds=args.seconds, connections=args.connections, method="POST",
                        body=PUT_BODY, headers=headers)
    flat.update(term_before=term_before, term_after=cluster.term(leader))
    print(f"  puts flat out: {flat['rate']:.0f}/s ({flat['errors']} errors), term {term_before} -> "
          f"{flat['term_after']}", flush=True)
    return {"latency": at_rate, "throughput": flat}


def failover(cluster: EtcdCluster, trial: int) -> float:
    """ms from the leader's SIGKILL to the first put, started after it, committed via a survivor."""
    victim = cluster.leader()
    via = JsonClient(cluster.clients[(victim + 1) % cluster.n])
    for i in range(5):  # the writer is warm and the survivor serves before the kill
        if not via.call("POST", "/v3/kv/put", {"key": b64(f"warm-{trial}-{i}"), "value": b64("v")})[0] == 200:
            raise RuntimeError("etcd: a put before the kill failed")
    killed = time.perf_counter()
    cluster.kill(victim)
    i = 0
    while True:
        i += 1
        started = time.perf_counter()
        status, _ = via.call("POST", "/v3/kv/put", {"key": b64(f"fo-{trial}-{i}"), "value": b64("v")}, timeout=0.5)
        if status == 200 and started >= killed:
            done = time.perf_counter()
            break
        if started - killed > 60:
            raise RuntimeError("etcd: no put committed within 60 s of the kill")
        if status != 200:
            time.sleep(0.005)
    via.close()
    cluster.start(victim, state="existing")
    # The next kill must leave a majority: wait until the restarted member follows a leader again.
    wait_until(lambda: (cluster.status(victim) or {}).get("leader") not in (None, "0"), 60,
               what=f"etcd member e{victim} back and following")
    cluster.leader()
    return (done - killed) * 1000


def lock_acquire(cluster: EtcdCluster, leader: int, n: int) -> list[float]:
    client = JsonClient(cluster.clients[(leader + 1) % cluster.n])  # a follower, as for ours
    status, lease = client.call("POST", "/v3/lease/grant", {"TTL": 30})
    if status != 200:
        raise RuntimeError(f"etcd: lease grant failed: {status}")
    times = []
    for i in range(n):
        ms, (status, body) = timed(lambda: client.call("POST", "/v3/lock/lock", {"name": b64(f"acq-{i}"),
                                                                                 "lease": lease["ID"]}))
        if status == 200:
            times.append(ms)
            client.call("POST", "/v3/lock/unlock", {"key": body["key"]})
    client.call("POST", "/v3/lease/revoke", {"ID": lease["ID"]})
    client.close()
    return times


class Etcdctl:
    """``etcdctl lock --ttl T NAME``: holds the lock (its session's lease kept alive) while it lives;
    the line it prints is the moment it acquired."""

    def __init__(self, endpoints: list[str], name: str, ttl: int) -> None:
        self.proc = subprocess.Popen([shutil.which("etcdctl") or "etcdctl", "--endpoints", ",".join(endpoints),
                                      "lock", "--ttl", str(ttl), name],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.acquired_at: float | None = None
        self.acquired = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        assert self.proc.stdout is not None
        if self.proc.stdout.readline():
            self.acquired_at = time.perf_counter()
            self.acquired.set()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def lock_handover(cluster: EtcdCluster, trial: int, ttl: int) -> float:
    """ms from the holder's SIGKILL until the waiting etcdctl holds the lock."""
    name = f"handover-{trial}"
    holder = Etcdctl(cluster.clients, name, ttl)
    waiter = None
    try:
        if not holder.acquired.wait(30):
            raise RuntimeError("etcd: the holder never acquired the lock")
        waiter = Etcdctl(cluster.clients, name, ttl)
        time.sleep(1.0)  # the waiter has connected and queued behind the holder
        if waiter.acquired.is_set():
            raise RuntimeError("etcd: the waiter holds a lock that is held")
        killed = time.perf_counter()
        holder.kill()
        if not waiter.acquired.wait(4 * ttl + 30):
            raise RuntimeError("etcd: no hand-over")
        return (waiter.acquired_at - killed) * 1000  # type: ignore[operator]
    finally:
        holder.kill()
        if waiter is not None:
            waiter.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--heartbeat-ms", type=int, default=LOW_LATENCY["heartbeat_ms"])
    parser.add_argument("--election-ms", type=int, default=LOW_LATENCY["election_ms"])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--trials", type=int, default=5, help="leader SIGKILLs")
    parser.add_argument("--locks", type=int, default=200)
    parser.add_argument("--lock-trials", type=int, default=3)
    parser.add_argument("--lock-ttl", type=int, default=5, help="etcdctl's session TTL (s)")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of the idle window")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not EtcdCluster.available() or not wrk_load.available():
        raise SystemExit("needs etcd, etcdctl and wrk (apt-get install etcd-server etcd-client wrk)")
    with tempfile.TemporaryDirectory(prefix="wt-etcd-bench-") as tmp:
        cluster = EtcdCluster(args.members, Path(tmp), heartbeat_ms=args.heartbeat_ms, election_ms=args.election_ms)
        try:
            progress(f"etcd: starting {args.members} members (heartbeat {args.heartbeat_ms} ms, "
                     f"election {args.election_ms} ms)")
            cluster.start_all()
            leader = cluster.leader()
            time.sleep(2)
            progress(f"etcd: idle footprint over {args.idle:g} s")
            idle = footprint({f"e{i}": cluster.procs[i].pid for i in range(args.members)}, args.idle)
            print("  idle: " + ", ".join(f"{k} {v['cpu_pct']:.2f} % CPU {v['rss_mb']:.0f} MB" for k, v in idle.items()),
                  flush=True)
            result: dict[str, Any] = {"members": args.members, "heartbeat_ms": args.heartbeat_ms,
                                      "election_ms": args.election_ms, "rate": args.rate, "idle": idle,
                                      "version": subprocess.run(["etcd", "--version"], capture_output=True,
                                                                text=True).stdout.splitlines()[0]}
            result.update(put_rates(cluster, leader, args))
            progress(f"etcd: {args.locks} lock acquisitions")
            result["lock_acquire_ms"] = lock_acquire(cluster, cluster.leader(), args.locks)
            print(f"  lock acquire via a follower: {summary(result['lock_acquire_ms'])}", flush=True)
            result["lock_handover_ms"] = []
            for trial in range(args.lock_trials):
                progress(f"etcd: lock hand-over trial {trial + 1}/{args.lock_trials}")
                result["lock_handover_ms"].append(lock_handover(cluster, trial, args.lock_ttl))
                print(f"  lock hand-over after the holder's SIGKILL: {result['lock_handover_ms'][-1]:.0f} ms", flush=True)
            result["lock_ttl_s"] = args.lock_ttl
            result["failover_ms"] = []
            for trial in range(args.trials):
                progress(f"etcd: leader SIGKILL {trial + 1}/{args.trials}")
                result["failover_ms"].append(failover(cluster, trial))
                print(f"  failover: next put committed {result['failover_ms'][-1]:.0f} ms after the kill", flush=True)
        finally:
            cluster.stop()
    write_json(args.json, result)


if __name__ == "__main__":
    main()
