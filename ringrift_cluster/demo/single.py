"""``ringrift-cluster demo``: one cluster, its live table and an optional leader kill."""

from __future__ import annotations

import argparse
import time
from typing import Callable

from .owned import OwnedCluster
from .setup import Stop, Token, demo_settings, node_env, resolve_modes, resolve_token, token_lines
from .view import Out, agreed_leader, read_extras, summary, table, work_line

REFRESH_S = 0.5
LEGACY = ("http", "bully")


def mode_line(n: int, membership: str, consensus: str) -> str:
    if (membership, consensus) == LEGACY:
        hint = "the legacy system; the demo's default is swim + raft"
    else:
        hint = "legacy: --membership-mode http --consensus-mode bully; both side by side: --compare"
    return f"ringrift-cluster demo: {n} nodes, membership {membership}, consensus {consensus} ({hint})"


def reporter(err: Out) -> Callable[[str, str], None]:
    return lambda node_id, reason: err(f"ringrift-cluster demo: {node_id} failed: {reason}")


def start(cluster: OwnedCluster, args: argparse.Namespace, stop: Stop, err: Out) -> bool:
    """Check the ports, start the nodes; False (reasons on stderr) when the demo must end."""
    problems = cluster.port_problems()
    for problem in problems:
        err(f"ringrift-cluster demo: {problem}")
    if problems:
        err("ringrift-cluster demo: not starting; free those ports or pass another --base-port")
        return False
    failures = cluster.start_checked(stop, reporter(err))
    return not failures or keep_going(cluster, args, err)


def keep_going(cluster: OwnedCluster, args: argparse.Namespace, err: Out) -> bool:
    """After a node failed: go on (--keep-going) or say why the demo stops."""
    if not args.keep_going:
        err(f"ringrift-cluster demo: stopping: {len(cluster.failed)} of {cluster.n} nodes failed "
            "(--keep-going runs on and shows them as failed)")
    return bool(args.keep_going)


def run_single(args: argparse.Namespace, root_path: str, stop: Stop, out: Out, err: Out) -> int:
    membership, consensus = resolve_modes(args)
    token: Token = resolve_token(args)
    cluster = OwnedCluster(args.nodes, root_path, base_port=args.base_port, preset=args.preset,
                           settings=demo_settings(args, membership, consensus),
                           env=node_env(membership, consensus, token), auth_token=token.value)
    first = next(iter(cluster.nodes.values()))
    header = [mode_line(args.nodes, membership, consensus), f"data and logs in {root_path}",
              *token_lines(token, first.url), ""]
    for line in header:
        out(line)
    try:
        if not start(cluster, args, stop, err):
            return 1
        for node in cluster.nodes.values():
            failed = f"  FAILED: {cluster.failed[node.node_id]}" if node.node_id in cluster.failed else ""
            out(f"  {node.node_id}  {node.url}  pid {node.proc.pid if node.proc else '-'}{failed}")
        out("Ctrl-C stops every node.\n")
        return _watch(cluster, args, stop, out, err, header)
    finally:
        out("\nstopping nodes ...")
        cluster.shutdown()


def _watch(cluster: OwnedCluster, args: argparse.Namespace, stop: Stop, out: Out, err: Out,
           header: list[str]) -> int:
    """Show the cluster until stopped; 1 when a node fails (unless --keep-going), else 0."""
    started = time.monotonic()
    killed: tuple[str, float] | None = None
    events: list[str] = []
    last_lines: set[str] = set()

    def event(text: str) -> None:
        events.append(f"[{time.monotonic() - started:6.1f}s] {text}")
        if not out.tty:
            out(events[-1])

    while not stop():
        now = time.monotonic() - started
        if args.duration is not None and now >= args.duration:
            return 0
        if cluster.check_exits(reporter(err)) and not keep_going(cluster, args, err):
            return 1
        views = cluster.views()
        leader = agreed_leader(views)
        if args.kill_leader_after is not None and killed is None and now >= args.kill_leader_after and leader:
            cluster.kill(leader)
            killed = (leader, time.monotonic())
            event(f"SIGKILL leader {leader}")
            continue
        if killed is not None and len(events) == 1 and leader and leader != killed[0]:
            event(f"new leader {leader}, {time.monotonic() - killed[1]:.2f}s after the kill")
        extras = read_extras(cluster, views)
        if out.tty:
            out.redraw([*header, f"t={now:6.1f}s   (Ctrl-C stops every node)", "",
                        *table(cluster, views, extras), "", *events])
        else:
            for line in (summary(views), work_line(extras)):
                if line not in last_lines:
                    out(f"[{now:6.1f}s] {line}")
            last_lines = {summary(views), work_line(extras)}
        stop.sleep(REFRESH_S)
    return 0
