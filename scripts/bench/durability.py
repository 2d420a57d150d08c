"""What durability costs: commit latency, throughput and failover per ``raft.durability``, beside
etcd (which fsyncs its log before it acknowledges), on the same machine in the same run.

Both systems are measured the same way, from outside through their HTTP APIs on loopback, by
the same client code (``JsonClient``: ``http.client``), either with a new connection per write
(the default: every write pays a TCP handshake and a server's connection setup) or, with
``--kept``, one connection kept for all of a client's writes (as a real client's pool does):

* latency: sequential writes to the leader (ours: ``POST /raft/work``; etcd: ``/v3/kv/put``);
* throughput: ``--concurrency`` clients writing to the leader for ``--seconds``;
* failover: SIGKILL the leader, time until a write through another member succeeds.

    .venv/bin/python scripts/bench/durability.py --nodes 3 --n 300 --seconds 8 --trials 3 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

from bench_common import percentile

from ringrift_cluster.testing import LocalCluster
from ringrift_cluster.testing.api_client import JsonClient
from ringrift_cluster.testing.etcd import EtcdCluster, b64

TOKEN = "bench-token"


class Writer:
    """One client's writes: through a new connection each (``kept`` False) or one kept for all,
    by the same client code for every system."""

    def __init__(self, url: str, path: str, body: Callable[[str], dict[str, Any]], token: str = "",
                 kept: bool = False) -> None:
        self.url, self.path, self.body, self.token, self.kept = url, path, body, token, kept
        self.client = JsonClient(url, token) if kept else None

    def __call__(self, key: str) -> bool:
        client = self.client or JsonClient(self.url, self.token)
        try:
            return client.call("POST", self.path, self.body(key))[0] == 200
        finally:
            if not self.kept:
                client.close()

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


def etcd_put(url: str, kept: bool = False) -> Writer:
    return Writer(url, "/v3/kv/put", lambda key: {"key": b64(key), "value": b64("v")}, kept=kept)


def work_add(url: str, kept: bool = False) -> Writer:
    return Writer(url, "/raft/work", lambda key: {"work_id": key, "work_type": "t"}, TOKEN, kept)


def sequential_writes(write: Writer, n: int) -> list[float]:
    """``n`` writes one after another through ``write``: the latency of each that succeeded, in ms."""
    latencies = []
    for i in range(n):
        started = time.perf_counter()
        if write(f"lat-{i}"):
            latencies.append((time.perf_counter() - started) * 1000)
    write.close()
    return latencies


def concurrent_writes(writer: Callable[[], Writer], concurrency: int, seconds: float) -> int:
    """``concurrency`` writers (threads) writing for ``seconds``: how many writes succeeded."""
    done = [0]
    stop = time.monotonic() + seconds
    lock = threading.Lock()

    def client(c: int) -> None:
        write, i = writer(), 0
        while time.monotonic() < stop:
            i += 1
            if write(f"tp-{c}-{i}"):
                with lock:
                    done[0] += 1
        write.close()

    threads = [threading.Thread(target=client, args=(c,)) for c in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done[0]


def measure(writer: Callable[[], Writer], n: int, seconds: float, concurrency: int) -> dict[str, float]:
    """Sequential latency through one writer, then ``concurrency`` writers (threads) at once."""
    latencies = sequential_writes(writer(), n)
    done = concurrent_writes(writer, concurrency, seconds)
    return {"p50_ms": statistics.median(latencies), "p99_ms": percentile(latencies, 99), "ops_s": done / seconds}


def failover(kill: Callable[[], str], write_elsewhere: Callable[[str, str], bool], restore: Callable[[str], None],
             trials: int) -> list[float]:
    times = []
    for trial in range(trials):
        killed_at = time.monotonic()
        victim = kill()
        i = 0
        while True:
            i += 1
            if write_elsewhere(victim, f"fo-{trial}-{i}"):
                break
            if time.monotonic() - killed_at > 60:
                raise RuntimeError("no write within 60 s of the kill")
        times.append(time.monotonic() - killed_at)
        restore(victim)
    return times


def ours(mode: str, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    cluster = LocalCluster(args.nodes, root / f"ours-{mode}", auth_token=TOKEN,
                           settings={"consensus_mode": "raft", "raft": {"durability": mode}})
    try:
        cluster.start_all()
        cluster.wait_converged(60)
        leader = [cluster.wait_for_leader(60)]

        out = measure(lambda: work_add(cluster.nodes[leader[0]].url, args.kept), args.n, args.seconds,
                      args.concurrency)
        status = cluster.get(leader[0], "/raft/status", timeout=5) or {}
        out["term_after_load"] = status.get("term", 0)
        batching = status.get("batching") or {}
        out["commands_per_entry"] = batching.get("commands", 0) / max(1, batching.get("entries", 0))

        def kill() -> str:
            victim = cluster.wait_for_leader(60)
            cluster.kill(victim)
            return victim

        def elsewhere(victim: str, key: str) -> bool:  # a new connection each try: the old one may be dead
            return work_add(cluster.nodes[next(n for n in cluster.nodes if n != victim)].url)(key)

        def restore(victim: str) -> None:
            cluster.start(victim)
            cluster.wait_converged(60)
            leader[0] = cluster.wait_for_leader(60)

        fo = failover(kill, elsewhere, restore, args.trials)
        out.update(failover_p50_s=statistics.median(fo), failover_max_s=max(fo))
        return out
    finally:
        cluster.shutdown()


def etcd(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    cluster = EtcdCluster(args.nodes, root / "etcd")
    try:
        cluster.start_all()
        leader = [cluster.leader()]
        out = measure(lambda: etcd_put(cluster.clients[leader[0]], args.kept), args.n, args.seconds, args.concurrency)

        def kill() -> str:
            victim = cluster.leader()
            cluster.kill(victim)
            return str(victim)

        def elsewhere(victim: str, key: str) -> bool:
            return etcd_put(cluster.clients[next(i for i in range(args.nodes) if str(i) != victim)])(key)

        def restore(victim: str) -> None:
            cluster.start(int(victim), state="existing")
            leader[0] = cluster.leader()

        fo = failover(kill, elsewhere, restore, args.trials)
        out.update(failover_p50_s=statistics.median(fo), failover_max_s=max(fo))
        return out
    finally:
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--n", type=int, default=300, help="sequential writes for the latency figures")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of the throughput run")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--trials", type=int, default=3, help="leader kills for the failover figures")
    parser.add_argument("--modes", default="fsync,batch,none")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run every system this many times, in turn, and add the medians: the "
                             "systems then share whatever else the machine was doing")
    parser.add_argument("--kept", action="store_true",
                        help="each client keeps one connection for all its writes (default: a new one per write)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if not EtcdCluster.available():
        print("etcd not installed (apt-get install etcd-server): skipped in this benchmark run")
    systems = [f"ringrift {mode}" for mode in args.modes.split(",")] + (["etcd"] if EtcdCluster.available() else [])
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeat):
            results: dict[str, Any] = {}
            for name in systems:
                print(f"... round {r + 1}/{args.repeat}: {name}", flush=True)
                root = Path(tmp) / f"round-{r}"
                load = os.getloadavg()  # the machine may be shared: each figure says how busy it was
                measured = etcd(args, root) if name == "etcd" else ours(name.split()[1], args, root)
                results[name] = {**measured, "load_avg_1m": load[0]}
            runs.append(results)
            print_table(f"round {r + 1}", results)
    if args.repeat > 1:
        print_table(f"medians of {args.repeat} rounds", medians(runs))
    connections = "one kept connection per client" if args.kept else "a new connection per write"
    print(f"({args.nodes} members on loopback, through each system's HTTP API, {connections})")
    if args.json:
        args.json.write_text(json.dumps({"kept": args.kept, "rounds": runs, "medians": medians(runs)}, indent=2))


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {name: {k: statistics.median(run[name][k] for run in runs) for k in runs[0][name]} for name in runs[0]}


def print_table(title: str, results: dict[str, Any]) -> None:
    print(f"\n{title}")
    print(f"{'system':<18}{'p50 ms':>8}{'p99 ms':>8}{'ops/s':>8}{'failover p50 s':>16}{'max s':>7}{'load 1m':>9}")
    for name, r in results.items():
        print(f"{name:<18}{r['p50_ms']:>8.2f}{r['p99_ms']:>8.2f}{r['ops_s']:>8.0f}"
              f"{r['failover_p50_s']:>16.2f}{r['failover_max_s']:>7.2f}{r['load_avg_1m']:>9.1f}", flush=True)


if __name__ == "__main__":
    main()
