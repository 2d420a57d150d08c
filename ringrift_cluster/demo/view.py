"""What the demo shows: a table per cluster (redrawn on a terminal), one line per change elsewhere."""

from __future__ import annotations

import os
from typing import Any, Iterable, Mapping

from .owned import NodeView, OwnedCluster

CLEAR = "\x1b[H\x1b[2J"


class WriteInterrupted(Exception):
    """Raised by a stop signal that lands in a write (a terminal paused by Ctrl-S blocks it)."""


class Out:
    """Writes straight to a file descriptor (nothing left in a buffer to flush at exit) that never
    raise: a closed terminal (EIO), a pipe or a paused terminal must not keep the demo from
    stopping its nodes."""

    writing = False  # a stop signal during a write interrupts it (see Stop)

    def __init__(self, fd: int = 1) -> None:
        self.fd = fd
        self.tty = os.isatty(fd)
        self.broken = False

    def __call__(self, text: str = "") -> None:
        self.write(text + "\n")

    def write(self, text: str) -> None:
        data = text.encode(errors="replace")
        try:
            Out.writing = True
            while data and not self.broken:
                data = data[os.write(self.fd, data):]
        except (OSError, WriteInterrupted):
            self.broken = True
        finally:
            Out.writing = False

    def redraw(self, lines: Iterable[str]) -> None:
        self.write(CLEAR + "\n".join(lines) + "\n")


def agreed_leader(views: Mapping[str, NodeView]) -> str | None:
    """The leader every node that is up reports, when they all report the same one."""
    leaders = {(v.status or {}).get("leader_id") for v in views.values() if v.state == "up"}
    return leaders.pop() if len(leaders) == 1 else None


def table(cluster: OwnedCluster, views: Mapping[str, NodeView], extras: Mapping[str, Any] | None = None) -> list[str]:
    """The per-node table, then the work queue and the locks."""
    lines = [f"{'NODE':<12}{'PID':>8}  {'STATE':<8}{'ROLE':<11}{'LEADER':<12}{'TERM':>5}  {'ALIVE PEERS':<12}QUORUM"]
    for node_id, view in views.items():
        pid = view.pid if view.pid is not None else "-"
        if view.state != "up" or view.status is None:
            lines.append(f"{node_id:<12}{pid:>8}  {view.state:<8}{view.detail}"[:160])
            continue
        status = view.status
        alive = sum(1 for p in status.get("peers", {}).values() if p.get("is_alive"))
        quorum = status.get("quorum", {})
        lines.append(f"{node_id:<12}{pid:>8}  {'up':<8}{status.get('role', '?'):<11}"
                     f"{status.get('leader_id') or '-':<12}{status.get('leader_term', 0):>5}  "
                     f"{f'{alive}/{len(views) - 1}':<12}"
                     f"{quorum.get('alive_voters')}/{quorum.get('total_voters')} {quorum.get('health')}")
    if extras is not None:
        lines.append(work_line(extras))
    return lines


def work_line(extras: Mapping[str, Any]) -> str:
    """``work: pending 2 ...   locks: train (gpu-1, fence 4)`` from the leader's /raft/work and /raft/locks."""
    stats = (extras.get("work") or {}).get("stats")
    locks = (extras.get("locks") or {}).get("locks")
    work_text = ("work: " + " ".join(f"{k} {stats.get(k, 0)}" for k in
                                     ("pending", "claimed", "running", "completed", "failed"))
                 if isinstance(stats, dict) else "work: unavailable")
    if not isinstance(locks, list):
        lock_text = "locks: unavailable"
    elif not locks:
        lock_text = "locks: none held"
    else:
        lock_text = "locks: " + ", ".join(f"{lk.get('name')} ({lk.get('holder')}, fence {lk.get('fence_token')})"
                                          for lk in locks[:5]) + (" ..." if len(locks) > 5 else "")
    return f"{work_text}   {lock_text}"


def read_extras(cluster: OwnedCluster, views: Mapping[str, NodeView]) -> dict[str, Any]:
    """The work queue and locks, read from the leader (else any node that is up)."""
    leader = agreed_leader(views)
    up = [n for n, v in views.items() if v.state == "up"]
    source = leader if leader in up else (up[0] if up else None)
    if source is None:
        return {}
    return {"work": cluster.get(source, "/raft/work"), "locks": cluster.get(source, "/raft/locks")}


def summary(views: Mapping[str, NodeView]) -> str:
    """One line for logs and pipes: each node's state, role, leader, term and alive peers."""
    parts = []
    for node_id, view in views.items():
        if view.state != "up" or view.status is None:
            parts.append(f"{node_id}={view.state}")
            continue
        status = view.status
        alive = sum(1 for p in status.get("peers", {}).values() if p.get("is_alive"))
        parts.append(f"{node_id}={status.get('role')}(leader={status.get('leader_id') or '-'},"
                     f"term={status.get('leader_term')},alive={alive})")
    return " ".join(parts)
