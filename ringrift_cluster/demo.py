"""``ringrift-cluster demo``: N real nodes on loopback, a live table, an optional failover."""

from __future__ import annotations

import argparse
import secrets
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .testing.local_cluster import LocalCluster

REFRESH_S = 0.5


def run_demo(args: argparse.Namespace) -> int:
    if not 1 <= args.nodes <= 100:
        raise ConfigError("--nodes", args.nodes, "a number of nodes from 1 to 100")
    if not 1024 <= args.base_port <= 65535 - 3 * args.nodes:
        raise ConfigError("--base-port", args.base_port, f"a port from 1024 to {65535 - 3 * args.nodes}")
    root = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="ringrift-demo-"))
    settings: dict[str, Any] = {}
    if args.membership_mode:
        settings["membership_mode"] = args.membership_mode
    if args.consensus_mode:
        settings["consensus_mode"] = args.consensus_mode
    cluster = LocalCluster(args.nodes, root, base_port=args.base_port, preset=args.preset,
                           settings=settings, auth_token=secrets.token_hex(16))
    stop = {"now": False}

    def on_signal(signum: int, frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    tty = sys.stdout.isatty()
    try:
        cluster.start_all()
        print(f"ringrift-cluster demo: {args.nodes} nodes, data in {root}")
        for node in cluster.nodes.values():
            print(f"  {node.node_id}  {node.url}  pid {node.proc.pid if node.proc else '-'}")
        print("Ctrl-C stops every node.\n", flush=True)
        _watch(cluster, args, stop, tty)
    finally:
        print("\nstopping nodes ...", flush=True)
        cluster.shutdown()
        if not args.data_dir:
            shutil.rmtree(root, ignore_errors=True)
    return 0


def _watch(cluster: LocalCluster, args: argparse.Namespace, stop: dict[str, bool], tty: bool) -> None:
    started = time.monotonic()
    killed: tuple[str, float] | None = None
    reported = False
    last_line = ""
    while not stop["now"]:
        now = time.monotonic() - started
        if args.duration is not None and now >= args.duration:
            return
        statuses = cluster.statuses(list(cluster.nodes))
        leader = _agreed(statuses)
        if args.kill_leader_after is not None and killed is None and now >= args.kill_leader_after and leader:
            cluster.kill(leader)
            killed = (leader, time.monotonic())
            print(f"[{now:6.1f}s] SIGKILL leader {leader}", flush=True)
        if killed is not None and not reported and leader and leader != killed[0]:
            print(f"[{now:6.1f}s] new leader {leader}, {time.monotonic() - killed[1]:.2f}s after the kill", flush=True)
            reported = True
        if tty:
            sys.stdout.write("\x1b[H\x1b[2J" + _table(cluster, statuses, now) + "\n")
            sys.stdout.flush()
        else:
            line = _summary(statuses)
            if line != last_line:
                print(f"[{now:6.1f}s] {line}", flush=True)
                last_line = line
        time.sleep(REFRESH_S)


def _agreed(statuses: dict[str, dict[str, Any] | None]) -> str | None:
    views = {s.get("leader_id") for s in statuses.values() if s is not None}
    return views.pop() if len(views) == 1 else None


def _table(cluster: LocalCluster, statuses: dict[str, dict[str, Any] | None], now: float) -> str:
    lines = [f"ringrift-cluster demo  t={now:6.1f}s   (Ctrl-C to stop)", "",
             f"{'NODE':<10}{'PID':>8}  {'STATE':<8}{'ROLE':<11}{'LEADER':<10}{'TERM':>5}  {'ALIVE PEERS':<12}QUORUM"]
    for node_id, node in cluster.nodes.items():
        status = statuses.get(node_id)
        pid = node.proc.pid if node.proc else "-"
        if status is None:
            lines.append(f"{node_id:<10}{pid:>8}  {'down':<8}")
            continue
        peers = status.get("peers", {})
        alive = sum(1 for p in peers.values() if p.get("is_alive"))
        quorum = status.get("quorum", {})
        lines.append(f"{node_id:<10}{pid:>8}  {'up':<8}{status.get('role', '?'):<11}{status.get('leader_id') or '-':<10}"
                     f"{status.get('leader_term', 0):>5}  {f'{alive}/{len(cluster.nodes) - 1}':<12}"
                     f"{quorum.get('alive_voters')}/{quorum.get('total_voters')} {quorum.get('health')}")
    return "\n".join(lines)


def _summary(statuses: dict[str, dict[str, Any] | None]) -> str:
    parts = []
    for node_id, status in statuses.items():
        if status is None:
            parts.append(f"{node_id}=down")
        else:
            alive = sum(1 for p in status.get("peers", {}).values() if p.get("is_alive"))
            parts.append(f"{node_id}={status.get('role')}(leader={status.get('leader_id') or '-'},"
                         f"term={status.get('leader_term')},alive={alive})")
    return " ".join(parts)
