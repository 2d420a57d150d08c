"""``ringrift-cluster demo --compare``: the legacy system and SWIM + Raft side by side.

Both clusters take the same small write load; their leaders are SIGKILLed at the same moment;
the demo shows both live and ends with a table: detection time, failover time, acknowledged
writes lost, and membership messages per node per second.
"""

from __future__ import annotations

import argparse
import signal
import time
from dataclasses import dataclass, field
from typing import Callable
from pathlib import Path

from ..errors import ConfigError
from .load import WriteLoad, lost_writes, membership_messages
from .owned import NodeView, OwnedCluster
from .setup import Stop, Token, node_env, resolve_token, token_lines
from .single import keep_going, reporter, start
from .view import Out, agreed_leader, read_extras, summary, table

DEFAULT_KILL_AFTER_S = 8.0
MIN_LOAD_S = 3.0  # writes and message counts before the kill
FAILOVER_TIMEOUT_S = 30.0
SETTLE_S = 2.0  # writes through the new leader before counting what was lost
POLL_S = 0.2


@dataclass
class Side:
    label: str
    cluster: OwnedCluster
    load: WriteLoad | None = None
    leader: str | None = None  # the leader the demo killed
    messages: tuple[float, dict[str, int]] | None = None  # (when, per node) as the load started
    msg_rate: float | None = None
    detection_s: float | None = None
    failover_s: float | None = None
    new_leader: str | None = None
    lost: tuple[int, int] | None = None  # (lost, unknown)
    views: dict[str, NodeView] = field(default_factory=dict)


def run_compare(args: argparse.Namespace, root: str, stop: Stop, out: Out, err: Out) -> int:
    if args.membership_mode or args.consensus_mode:
        raise ConfigError("--compare", "with --membership-mode/--consensus-mode",
                          "no mode flags: --compare runs http+bully against swim+raft")
    if args.sd_file:
        raise ConfigError("--sd-file", args.sd_file, "no targets file with --compare (two clusters would share it)")
    token = resolve_token(args)
    n, base = args.nodes, args.base_port
    sides = [Side("legacy (http+bully)", _cluster(args, token, Path(root) / "legacy", base, "legacy", "http", "bully")),
             Side("swim+raft", _cluster(args, token, Path(root) / "swim-raft", base + 3 * n, "new", "swim", "raft"))]
    header = [f"ringrift-cluster demo --compare: {n} nodes each; legacy (membership http, consensus bully) "
              "against the new system (membership swim, consensus raft)",
              f"data and logs in {root}", *token_lines(token, next(iter(sides[1].cluster.nodes.values())).url), ""]
    for line in header:
        out(line)
    try:
        for side in sides:
            if not start(side.cluster, args, stop, err):
                return 1
        for side in sides:
            out(f"{side.label}:")
            for node in side.cluster.nodes.values():
                out(f"  {node.node_id}  {node.url}  pid {node.proc.pid if node.proc else '-'}")
        out("Ctrl-C stops every node.\n")
        code = _run(args, sides, stop, out, err, header)
        if any(side.leader for side in sides):  # what was measured, even when stopped early
            for line in result_table(sides):
                out(line)
        return code
    finally:
        for side in sides:
            if side.load is not None:
                side.load.stop()
        out("\nstopping nodes ...")
        for side in sides:
            side.cluster.shutdown()


def _cluster(args: argparse.Namespace, token: Token, root: Path, base: int, prefix: str,
             membership: str, consensus: str) -> OwnedCluster:
    return OwnedCluster(args.nodes, root, base_port=base, preset=args.preset, prefix=prefix,
                        settings={"membership_mode": membership, "consensus_mode": consensus},
                        env=node_env(membership, consensus, token), auth_token=token.value)


def _run(args: argparse.Namespace, sides: list[Side], stop: Stop, out: Out, err: Out, header: list[str]) -> int:
    """Lead up, load, kill both leaders at once, watch both fail over, let the new leaders settle.
    Returns 1 when a node failed (unless --keep-going), else 0."""
    started = time.monotonic()
    kill_after = args.kill_leader_after if args.kill_leader_after is not None else DEFAULT_KILL_AFTER_S
    loaded_at = killed_at = done_at = None
    events: list[str] = []
    shown: list[str] = []

    def event(text: str) -> None:
        events.append(f"[{time.monotonic() - started:6.1f}s] {text}")
        if not out.tty:
            out(events[-1])

    while not stop():
        now = time.monotonic()
        if args.duration is not None and now - started >= args.duration:
            event("--duration reached")
            return 0
        for side in sides:
            if side.cluster.check_exits(reporter(err)) and not keep_going(side.cluster, args, err):
                return 1
        for side in sides:
            side.views = side.cluster.views()
        if loaded_at is None and all(agreed_leader(s.views) for s in sides):
            loaded_at = now
            for side in sides:
                side.messages = (time.monotonic(), _counts(side.views))
                side.load = WriteLoad(side.cluster, f"{side.label.split()[0]}-w")
                side.load.start()
            event("both clusters have a leader; write load started on each")
        elif loaded_at is not None and killed_at is None and now - started >= kill_after and now - loaded_at >= MIN_LOAD_S:
            killed_at = _kill_leaders(sides, event)
        elif killed_at is not None:
            _measure(sides, killed_at, event)
            if done_at is None and (all(s.failover_s is not None for s in sides) or now - killed_at > FAILOVER_TIMEOUT_S):
                done_at = now
            if done_at is not None and now - done_at >= SETTLE_S:
                _count_lost(sides, event)
                return 0
        _show(sides, out, header, events, started, shown)
        stop.sleep(POLL_S if killed_at is not None else 0.5)
    return 0


def _counts(views: dict[str, NodeView]) -> dict[str, int]:
    counts = {n: membership_messages(v.status) for n, v in views.items() if v.state == "up"}
    return {n: c for n, c in counts.items() if c is not None}


def _kill_leaders(sides: list[Side], event: Callable[[str], None]) -> float:
    for side in sides:  # message rates up to the kill
        side.leader = agreed_leader(side.views)
        since, before = side.messages or (time.monotonic(), {})
        after = _counts(side.views)
        common = [n for n in before if n in after]
        if common and time.monotonic() > since:
            side.msg_rate = sum(after[n] - before[n] for n in common) / len(common) / (time.monotonic() - since)
    for side in sides:  # the two SIGKILLs back to back: the same moment
        if side.leader:
            side.cluster.killed.add(side.leader)
            side.cluster.signal(side.leader, signal.SIGKILL)
    killed_at = time.monotonic()
    for side in sides:
        if side.leader:
            side.cluster.nodes[side.leader].proc.wait(timeout=10)  # type: ignore[union-attr]
    event("SIGKILL both leaders: " + ", ".join(f"{s.leader}" for s in sides))
    return killed_at


def _measure(sides: list[Side], killed_at: float, event: Callable[[str], None]) -> None:
    elapsed = time.monotonic() - killed_at
    for side in sides:
        survivors = [v for n, v in side.views.items() if n != side.leader and v.state == "up"]
        if side.detection_s is None and survivors and all(
                not (v.status or {}).get("peers", {}).get(side.leader, {}).get("is_alive", True) for v in survivors):
            side.detection_s = elapsed
            event(f"{side.label}: every survivor sees {side.leader} failed, {elapsed:.1f}s after the kill")
        leader = agreed_leader(side.views)
        if side.failover_s is None and leader and leader != side.leader:
            side.failover_s, side.new_leader = elapsed, leader
            event(f"{side.label}: new leader {leader}, {elapsed:.1f}s after the kill")


def _count_lost(sides: list[Side], event: Callable[[str], None]) -> None:
    for side in sides:
        if side.load is not None:
            side.load.stop()
    for side in sides:
        if side.load is None:
            continue
        reader = side.new_leader or next((n for n, v in side.views.items() if v.state == "up"), None)
        if reader is not None:
            side.lost = lost_writes(side.cluster, reader, side.load.acked)
    event("counted the acknowledged writes each new leader holds")


def _show(sides: list[Side], out: Out, header: list[str], events: list[str], started: float, shown: list[str]) -> None:
    if out.tty:
        lines = [*header, f"t={time.monotonic() - started:6.1f}s   (Ctrl-C stops every node)", ""]
        for side in sides:
            load = f"   writes acked {len(side.load.acked)}" if side.load else ""
            lines += [f"== {side.label}{load}", *table(side.cluster, side.views, read_extras(side.cluster, side.views)), ""]
        out.redraw([*lines, *events])
        return
    lines = [f"{side.label}: {summary(side.views)}" for side in sides]
    if lines != shown:
        for line in lines:
            out(f"[{time.monotonic() - started:6.1f}s] {line}")
        shown[:] = lines


def result_table(sides: list[Side]) -> list[str]:
    """The comparison: one column per cluster."""
    def secs(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} s"

    def lost(side: Side) -> str:
        if side.lost is None or side.load is None:
            return "-"
        text = f"{side.lost[0]} of {len(side.load.acked)}"
        return text + (f" ({side.lost[1]} unknown)" if side.lost[1] else "")

    rows = [("leader killed", [s.leader or "-" for s in sides]),
            ("detection (every survivor)", [secs(s.detection_s) for s in sides]),
            ("failover (new leader agreed)", [secs(s.failover_s) for s in sides]),
            ("acknowledged writes lost", [lost(s) for s in sides]),
            ("membership msgs/node/s", ["-" if s.msg_rate is None else f"{s.msg_rate:.1f}" for s in sides])]
    width = max(22, *(len(s.label) + 2 for s in sides))
    lines = ["", f"{'':<30}" + "".join(f"{s.label:<{width}}" for s in sides)]
    lines += [f"{name:<30}" + "".join(f"{v:<{width}}" for v in values) for name, values in rows]
    lines.append(f"(times from the kill, polled every {POLL_S:.1f} s; messages: SWIM datagrams, or heartbeat "
                 "requests and answers, sent per node before the kill)")
    return lines
