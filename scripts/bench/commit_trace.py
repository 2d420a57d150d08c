"""Where a sequential write's time goes, across every member of a Raft cluster.

Starts a local cluster whose nodes record timestamped events (``trace_hooks/sitecustomize.py``:
pysyncobj's messages, every fdatasync, proposals, applies, accepted HTTP connections), writes
``--n`` times to the leader one after another with the durability benchmark's client (a new
connection per write), then lines the events up per write on the machine's one monotonic clock
and prints the phases' p50/p90 and each member's fdatasync time.

    .venv/bin/python scripts/bench/commit_trace.py --nodes 5 --n 300 --durability batch

The hooks cost a few microseconds per event: read the phases against each other, and the
totals beside ``durability.py``'s untraced figures.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from ringrift_cluster.testing import LocalCluster

from bench_common import summary
from durability import TOKEN, work_add

HOOKS = Path(__file__).resolve().parent / "trace_hooks"
Event = tuple[int, str, str]  # (ns, pid, name)


def load_hooks() -> Any:
    """The hooks module, loaded from its file under a name of its own (this process may have
    imported another ``sitecustomize`` at startup)."""
    spec = importlib.util.spec_from_file_location("commit_trace_hooks", HOOKS / "sitecustomize.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def load_events(trace_dir: Path) -> list[Event]:
    events = []
    for path in trace_dir.glob("t-*.txt"):
        pid = path.stem[2:]
        for line in path.read_text().splitlines():
            ns, _, name = line.partition(" ")
            events.append((int(ns), pid, name))
    return sorted(events)


def phases(events: list[Event], client_pid: str, nodes: int) -> dict[str, list[float]]:
    """Per write (the window from one call's start to the next's), the time of each phase in µs."""
    proposers = defaultdict(int)
    for _, pid, name in events:
        if name == "propose":
            proposers[pid] += 1
    leader = max(proposers, key=proposers.get)  # type: ignore[arg-type]
    starts = [i for i, (_, pid, name) in enumerate(events) if pid == client_pid and name == "client0"]
    acks_needed = nodes // 2  # followers' acknowledgements that, with the leader's own, make a majority
    out: dict[str, list[float]] = defaultdict(list)
    for k, first in enumerate(starts):
        window = events[first:starts[k + 1] if k + 1 < len(starts) else len(events)]
        t0 = window[0][0]

        def at(pid: str, name: str, after: int) -> int | None:
            return next((t for t, p, n in window if p == pid and n == name and t >= after), None)

        accepted = at(leader, "http conn", t0)
        proposed = accepted and at(leader, "propose", accepted)
        applied = proposed and at(leader, "apply0", proposed)
        answered = applied and at(leader, "apply1", applied)
        done = answered and at(client_pid, "client1", answered)
        if not done:
            continue  # a write the trace did not see whole (the last one, a failed call)
        sent = [t for t, p, n in window if p == leader and n == "send append_entries" and t >= proposed]
        acks = sorted(t for t, p, n in window if p != leader and n == "send next_node_idx" and proposed <= t <= applied)
        synced = at(leader, "sync1", proposed)
        syncing = at(leader, "sync0", proposed)
        last_sent = sent[min(len(sent), nodes - 1) - 1] if sent else None  # to the last follower
        # The leader's receipt of the acknowledgements (the k-th it handled): with the send above,
        # the transit, which on a busy machine is mostly the wait for a core.
        got = sorted(t for t, p, n in window if p == leader and n == "recv next_node_idx" and proposed <= t <= applied)
        first_in = next((t for t, p, n in window if p != leader and n == "recv append_entries" and t >= proposed), None)
        for name, start, end in (("call start -> connection accepted", t0, accepted),
                                 ("accepted -> proposed", accepted, proposed),
                                 ("proposed -> applied on the leader", proposed, applied),
                                 ("applied -> answer at the client", answered, done),
                                 ("whole call", t0, done)):
            out[name].append((end - start) / 1e3)
        if sent:
            out["proposed -> last AppendEntries sent"].append((last_sent - proposed) / 1e3)
        if sent and first_in:
            out["first AppendEntries sent -> a follower has it"].append((first_in - sent[0]) / 1e3)
        if len(acks) >= acks_needed:
            out["proposed -> majority's last acknowledgement sent"].append((acks[acks_needed - 1] - proposed) / 1e3)
            if len(got) >= acks_needed:
                out["that acknowledgement sent -> the leader has it"].append(
                    (got[acks_needed - 1] - acks[acks_needed - 1]) / 1e3)
            if syncing and synced and last_sent:
                out["last AppendEntries sent -> the leader's sync starts"].append((syncing - last_sent) / 1e3)
                out["the leader's sync starts -> it ends"].append((synced - syncing) / 1e3)
            if synced:
                out["leader's sync end - that acknowledgement"].append((synced - acks[acks_needed - 1]) / 1e3)
    return out


def sync_times(events: list[Event], client_pid: str) -> dict[str, list[float]]:
    started: dict[str, int] = {}
    out: dict[str, list[float]] = defaultdict(list)
    for t, pid, name in events:
        if pid == client_pid:
            continue
        if name == "sync0":
            started[pid] = t
        elif name == "sync1" and pid in started:
            out[pid].append((t - started.pop(pid)) / 1e3)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--n", type=int, default=300, help="sequential writes to trace")
    parser.add_argument("--durability", default="batch", choices=("fsync", "batch", "none"))
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="commit-trace-") as tmp:
        trace_dir = Path(tmp) / "trace"
        trace_dir.mkdir()
        os.environ["RINGRIFT_TRACE_DIR"] = str(trace_dir)  # before the hooks load in this process
        hooks = load_hooks()  # this process records the client's events
        env = {"PYTHONPATH": os.pathsep.join([str(HOOKS), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               "RINGRIFT_TRACE_DIR": str(trace_dir)}
        cluster = LocalCluster(args.nodes, Path(tmp) / "cluster", auth_token=TOKEN, env=env,
                               settings={"consensus_mode": "raft", "raft": {"durability": args.durability}})
        try:
            cluster.start_all()
            cluster.wait_converged(60)
            leader = cluster.wait_for_leader(60)
            names = {str(node.proc.pid): name + (" (leader)" if name == leader else "")
                     for name, node in cluster.nodes.items() if node.proc is not None}
            print(f"... {args.n} sequential writes to {leader} ({args.durability}, {args.nodes} members)", flush=True)
            failed = 0
            for i in range(args.n):
                hooks.event("client0")
                failed += not work_add(cluster.nodes[leader].url)(f"trace-{i}")
                hooks.event("client1")
        finally:
            cluster.shutdown()
        events = load_events(trace_dir)
    client = str(os.getpid())
    figures = {name: summary(v) for name, v in phases(events, client, args.nodes).items()}
    syncs = {names.get(pid, pid): summary(v) for pid, v in sync_times(events, client).items()}
    for title, rows in (("phase (per write)", figures.items()), ("fdatasync, per member", sorted(syncs.items()))):
        print(f"\n{title:52} {'p50 µs':>8} {'p90 µs':>8} {'n':>5}")
        for name, f in rows:
            print(f"{name:52} {f['p50']:8.0f} {f['p90']:8.0f} {f['n']:5}")
    print(f"({args.n} writes, {failed} failed; the leader's sync can end before the acknowledgement: negative)")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "phases": figures, "fdatasync": syncs,
                                               "failed": failed, "at": time.time()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
