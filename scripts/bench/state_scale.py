"""What the replicated state costs as the work queue grows.

In process, on the pure ``StateMachine`` (one ``apply`` per command, as every replica runs it),
at each size: every operation's median and worst apply, the worst apply of the whole run,
memory per item, what a snapshot holds the engine for (``freeze``; the rest of the work happens
off the engine thread), its size per item (JSON and the gzip'd pickle of a Raft dump) and a
restore. Each family of operations runs on its own machine of that size: a queue of N pending
items, N held locks, one model with N versions.

With ``--cluster N``: a real 3-voter Raft cluster (``LocalCluster``) gets N items through the
HTTP API, then clients claim them at full speed; reports claims/s, the Raft leader's longest
apply and snapshot stall, and leader changes.

    .venv/bin/python scripts/bench/state_scale.py --sizes 1000,10000,100000,1000000
    .venv/bin/python scripts/bench/state_scale.py --sizes 0 --cluster 100000 [--preset lan]

Not run in CI: it prints figures and progress.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import gzip
import json
import os
import pickle
import random
import sys
import tempfile
import time
from typing import Any, Callable, Iterable

from ringrift_cluster.state import Limits, StateMachine, commands as c

TYPES = ("selfplay", "eval", "train", "export")
CAPS = ((), ("gpu",), ("cuda12", "gpu"), ("avx512",))
T0 = 1_000_000.0


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class GcClock:
    """CPU seconds this process spent in the cyclic garbage collector (a pause of the whole
    interpreter that lands inside whichever apply happens to allocate at that moment)."""

    spent = 0.0
    _start = 0.0

    @classmethod
    def hook(cls, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            cls._start = time.thread_time()
        else:
            cls.spent += time.thread_time() - cls._start


gc.callbacks.append(GcClock.hook)


class Runner:
    """Applies commands on one machine, on a clock that moves 1 ms per command."""

    def __init__(self, machine: StateMachine) -> None:
        self.m = machine
        self.now = T0
        self.n = 0
        self.worst = 0.0
        self.worst_cpu = 0.0  # this thread's CPU time less GC pauses: what the apply itself costs

    def apply(self, op: Callable[..., dict[str, Any]], *args: Any, **kw: Any) -> tuple[dict[str, Any], float]:
        self.now += 0.001
        self.n += 1
        cmd = op(*args, rid=f"r{self.n}", now=self.now, **kw)
        t, cpu, gc_before = time.perf_counter(), time.thread_time(), GcClock.spent
        result = self.m.apply(cmd)
        dt = time.perf_counter() - t
        self.worst = max(self.worst, dt)
        self.worst_cpu = max(self.worst_cpu, time.thread_time() - cpu - (GcClock.spent - gc_before))
        return result, dt


def fmt_us(seconds: float) -> str:
    us = seconds * 1e6
    return f"{us:,.0f} µs" if us < 10_000 else f"{us / 1000:,.1f} ms"


def timed(label: str, runner: Runner, calls: Iterable[tuple], budget_s: float, out: dict[str, Any]) -> list[dict]:
    """Apply each call until the time budget is spent; record the median and the worst."""
    times, results = [], []
    start = time.perf_counter()
    for call in calls:
        result, dt = runner.apply(*call)
        times.append(dt)
        results.append(result)
        if time.perf_counter() - start > budget_s:
            break
    times.sort()
    out[label] = (times[len(times) // 2], times[min(len(times) - 1, int(0.99 * len(times)))], max(times), len(times))
    return results


def build_queue(n: int, rng: random.Random, progress: Callable[[str], None]) -> tuple[Runner, float]:
    gc.collect()
    before = rss_bytes()
    runner = Runner(StateMachine())
    for i in range(n):
        runner.apply(c.add_work, f"w{i}", TYPES[i % 4], priority=rng.randrange(10),
                     capabilities=list(CAPS[(i // 4) % 4]))
        if i and i % 200_000 == 0:
            progress(f"    {i:,} items added")
    gc.collect()
    return runner, (rss_bytes() - before) / max(n, 1)


def memory_per_item(n: int) -> float:
    """Resident bytes per pending item, from a fresh process (a long-lived one reuses memory)."""
    import subprocess

    out = subprocess.run([sys.executable, __file__, "--memory-probe", str(n)], capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip().splitlines()[-1])


def queue_ops(n: int, budget: float, progress: Callable[[str], None]) -> dict[str, Any]:
    rng = random.Random(n)
    out: dict[str, Any] = {}
    runner, _ = build_queue(n, rng, progress)
    out["mem/item"] = memory_per_item(n)
    progress(f"    built {n:,} pending items ({out['mem/item']:,.0f} B/item)")
    timed("add", runner, ((c.add_work, f"x{i}", TYPES[i % 4]) for i in range(1000)), budget, out)
    claims = timed("claim", runner, ((c.claim_work, "n1") for _ in range(400)), budget, out)
    filtered = timed("claim gpu+type", runner,
                     ((lambda **kw: c.claim_work("n2", capabilities=["gpu"], work_types=["selfplay"], **kw),)
                      for _ in range(400)), budget, out)
    timed("claim no match", runner,
          ((lambda **kw: c.claim_work("n3", capabilities=["tpu"], work_types=["train"], **kw),)
           for _ in range(400)), budget, out)
    held = [(r["item"]["work_id"], r["claim_token"]) for r in claims + filtered if r.get("item")]
    half = len(held) // 2
    timed("complete", runner, ((c.complete_work, w, t, {"ok": 1}) for w, t in held[:half]), budget, out)
    timed("fail+requeue", runner, ((c.fail_work, w, t, "boom") for w, t in held[half:]), budget, out)
    timed("tick", runner, ((c.tick,) for _ in range(1000)), budget, out)
    snapshot_figures(runner.m, n, out, progress)
    out["worst apply"], out["worst apply cpu"] = runner.worst, runner.worst_cpu
    return out


def snapshot_figures(m: StateMachine, n: int, out: dict[str, Any], progress: Callable[[str], None]) -> None:
    freeze = getattr(m, "freeze", None)
    t = time.perf_counter()
    if freeze is not None:  # the engine thread only freezes; the view is serialized elsewhere
        view = freeze()
        out["snapshot stall"] = time.perf_counter() - t
        t = time.perf_counter()
        snap = view.snapshot()
        out["snapshot off-thread"] = time.perf_counter() - t
    else:  # before: the whole snapshot is built on the engine thread
        snap = m.snapshot()
        out["snapshot stall"] = time.perf_counter() - t
        out["snapshot off-thread"] = 0.0
    out["json B/item"] = len(json.dumps(snap, separators=(",", ":"))) / max(n, 1)
    t = time.perf_counter()
    dump = gzip.compress(pickle.dumps([{}, {"format": 1, "machine": snap}]), 6)
    out["dump"] = time.perf_counter() - t
    out["dump B/item"] = len(dump) / max(n, 1)
    t = time.perf_counter()
    StateMachine.from_snapshot(snap)
    out["restore"] = time.perf_counter() - t
    progress(f"    snapshot: stall {fmt_us(out['snapshot stall'])}, restore {out['restore']:.2f} s")


def lock_ops(n: int, budget: float, progress: Callable[[str], None]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    runner = Runner(StateMachine())
    for i in range(n):  # lock i expires 3600 s after it was taken; each node holds 10 locks
        runner.apply(c.acquire_lock, f"lock-{i}", f"node-{i // 10}:job-{i}", 3600.0)
    progress(f"    {n:,} locks held")
    runner.now = T0 + 3600.0  # from here on, about one old lock expires per command
    runner.worst = runner.worst_cpu = 0.0
    timed("lock acquire", runner, ((c.acquire_lock, f"new-{i}", "node-x", 60.0) for i in range(1000)), budget, out)
    timed("node release", runner, ((c.release_node, f"node-{i}") for i in range(0, n // 10, max(1, n // 2000))),
          budget, out)
    out["worst apply"], out["worst apply cpu"] = runner.worst, runner.worst_cpu
    return out


def model_ops(n: int, budget: float, progress: Callable[[str], None]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    runner = Runner(StateMachine(Limits(max_versions_per_model=max(n, 1))))
    for i in range(n):
        runner.apply(c.register_model, "policy", f"v{i}", f"s3://m/v{i}", f"sha{i}")
    runner.apply(c.promote_model, "policy", "v0", "production")
    progress(f"    {n:,} model versions")
    runner.worst = runner.worst_cpu = 0.0
    timed("model register", runner, ((c.register_model, "policy", f"n{i}", "s3://m", "sha") for i in range(1000)),
          budget, out)
    timed("model promote", runner, ((c.promote_model, "policy", f"n{i}", "production") for i in range(200)),
          budget, out)
    out["worst apply"], out["worst apply cpu"] = runner.worst, runner.worst_cpu
    return out


COLUMNS = ("add", "claim", "claim gpu+type", "claim no match", "complete", "fail+requeue", "tick",
           "lock acquire", "node release", "model register", "model promote")


def in_process(sizes: list[int], budget: float, families: set[str]) -> None:
    table: dict[int, dict[str, Any]] = {}
    for n in sizes:
        say = lambda s: print(s, flush=True)  # noqa: E731
        say(f"== {n:,} ==")
        parts = [fn(n, budget, say) for name, fn in (("queue", queue_ops), ("locks", lock_ops), ("models", model_ops))
                 if name in families]
        table[n] = {k: v for part in parts for k, v in part.items()}
        for key in ("worst apply", "worst apply cpu"):
            table[n][key] = max(part[key] for part in parts)
        gc.collect()
    print("\nper operation: median / p99 / worst apply (samples)")
    print(f"{'operation':<20}" + "".join(f"{n:>34,}" for n in sizes))
    for col in COLUMNS:
        if col not in table[sizes[0]]:
            continue
        cells = []
        for n in sizes:
            med, p99, worst, k = table[n][col]
            cells.append(f"{fmt_us(med)} / {fmt_us(p99)} / {fmt_us(worst)} ({k})")
        print(f"{col:<20}" + "".join(f"{x:>34}" for x in cells))
    table_names = {"worst apply cpu": "worst apply (CPU, no GC)"}
    for col in ("worst apply", "worst apply cpu", "snapshot stall", "snapshot off-thread", "dump", "restore"):
        if col in table[sizes[0]]:
            print(f"{table_names.get(col, col):<20}" + "".join(f"{fmt_us(table[n][col]):>34}" for n in sizes))
    for col in ("mem/item", "json B/item", "dump B/item"):
        if col in table[sizes[0]]:
            print(f"{col:<20}" + "".join(f"{table[n][col]:>34,.0f}" for n in sizes))


# -- a real cluster ------------------------------------------------------------------------------


async def cluster_run(n: int, clients: int, claim_s: float, preset: str) -> None:
    import aiohttp

    from ringrift_cluster.testing import LocalCluster

    with tempfile.TemporaryDirectory() as root, \
            LocalCluster(3, root, preset=preset, settings={"consensus_mode": "raft"}) as cluster:
        cluster.start_all()
        leader = cluster.wait_for_leader(60.0)
        print(f"leader {leader} ({preset} preset)", flush=True)
        urls = [node.url for node in cluster.nodes.values()]

        def raft(node_id: str) -> dict[str, Any]:
            return cluster.get(node_id, "/raft/status", timeout=5.0) or {}

        async def worker(session: aiohttp.ClientSession, jobs: list[Any], fn: Callable[..., Any]) -> int:
            done = 0
            while jobs:
                job = jobs.pop()
                done += await fn(session, job)
            return done

        async def add(session: aiohttp.ClientSession, i: int) -> int:
            body = {"work_id": f"w{i}", "work_type": TYPES[i % 4], "priority": i % 10,
                    "capabilities": list(CAPS[(i // 4) % 4]), "request_id": f"add-{i}"}
            async with session.post(urls[i % 3] + "/raft/work", json=body) as r:
                await r.read()
                return int(r.status == 200)

        connector = aiohttp.TCPConnector(limit=clients)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
            t = time.perf_counter()
            todo = list(range(n))[::-1]
            added = sum(await asyncio.gather(*(worker(session, todo, add) for _ in range(clients))))
            print(f"added {added:,} items in {time.perf_counter() - t:.1f} s", flush=True)
            before = {nid: raft(nid) for nid in cluster.nodes}
            counts = {"claimed": 0, "empty": 0, "errors": 0}
            stop = time.monotonic() + claim_s

            async def claimer(k: int) -> None:  # able to run every item, so it ends on an empty queue
                while time.monotonic() < stop:
                    async with session.post(urls[k % 3] + "/raft/work/claim", json={"node_id": f"c{k}", "capabilities": ["avx512", "cuda12", "gpu"]}) as r:
                        body = await r.json()
                    if r.status != 200:
                        counts["errors"] += 1
                    elif body.get("item") is None:
                        counts["empty"] += 1
                        return
                    else:
                        counts["claimed"] += 1

            t = time.perf_counter()
            await asyncio.gather(*(claimer(k) for k in range(clients)))
            elapsed = time.perf_counter() - t
        after = {nid: raft(nid) for nid in cluster.nodes}
        lead = after[leader]
        changes = sum((after[x].get("leader_changes") or 0) - (before[x].get("leader_changes") or 0) for x in after)
        print(f"claims: {counts['claimed']:,} in {elapsed:.1f} s = {counts['claimed'] / elapsed:,.0f} claims/s "
              f"({counts['errors']} errors, queue emptied: {counts['empty'] > 0})")
        print(f"leader changes while claiming (summed over voters): {changes}; term {before[leader].get('term')} -> "
              f"{lead.get('term')}")
        print(f"leader engine: {lead.get('engine_stalls', 'n/a')}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1000,10000,100000,1000000")
    p.add_argument("--budget", type=float, default=5.0, help="seconds per measured operation and size")
    p.add_argument("--cluster", type=int, default=0, help="items for the 3-voter cluster run (0: skip)")
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--preset", default="local", help="the cluster run's timing preset (local: 0.2-0.6 s elections)")
    p.add_argument("--claim-seconds", type=float, default=600.0)
    p.add_argument("--families", default="queue,locks,models")
    p.add_argument("--memory-probe", type=int, default=0, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.memory_probe:
        print(build_queue(a.memory_probe, random.Random(a.memory_probe), lambda s: None)[1])
        return
    sizes = [int(s) for s in a.sizes.split(",") if int(s) > 0]
    if sizes:
        in_process(sizes, a.budget, set(a.families.split(",")))
    if a.cluster:
        asyncio.run(cluster_run(a.cluster, a.clients, a.claim_seconds, a.preset))


if __name__ == "__main__":
    main()
