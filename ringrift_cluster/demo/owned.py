"""A demo's own cluster: nodes that stop with it, started only on free ports, and shown as up
only while the process answering on a node's port is the one the demo started."""

from __future__ import annotations

import http.client
import json
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from ..testing.local_cluster import LocalCluster
from .ports import holder, listening, port_taken

STARTUP_TIMEOUT_S = 60.0


@dataclass
class NodeView:
    """What the demo knows of one node right now."""

    node_id: str
    state: str  # up | starting | down | killed | failed | exited | foreign
    pid: int | None
    detail: str = ""
    status: dict[str, Any] | None = field(default=None, repr=False)


class OwnedCluster(LocalCluster):
    """A LocalCluster whose nodes watch the demo (``run --parent-pid``) and are checked by pid."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.killed: set[str] = set()
        self.failed: dict[str, str] = {}  # node id -> why it failed to start
        self._pool = ThreadPoolExecutor(max_workers=min(16, 2 * self.n), thread_name_prefix="demo-probe")

    def command(self, node_id: str) -> list[str]:
        return super().command(node_id) + ["--parent-pid", str(os.getpid())]

    def get(self, node_id: str, path: str, timeout: float = 1.0) -> dict[str, Any] | None:
        """GET, None when nothing sane answers: also for a garbled reply, such as the echo of a
        probe that connected to itself on a port nobody listens on yet."""
        try:
            return super().get(node_id, path, timeout)
        except http.client.HTTPException:
            return None

    def kill(self, node_id: str) -> None:
        self.killed.add(node_id)
        super().kill(node_id)

    def shutdown(self) -> None:
        super().shutdown()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- Starting ------------------------------------------------------------------------------

    def port_problems(self) -> list[str]:
        """One line per port a node needs that something else holds, naming the holder."""
        problems = []
        for node in self.nodes.values():
            for port, kind, what in ((node.api_port, socket.SOCK_STREAM, "API, TCP"),
                                     (node.swim_port, socket.SOCK_DGRAM, "SWIM, UDP"),
                                     (node.raft_port, socket.SOCK_STREAM, "Raft, TCP")):
                if port_taken(port, kind):
                    problems.append(f"port {port} ({node.node_id} {what}) is in use by {holder(port, kind)}")
        return problems

    def start_checked(self, stopped: Callable[[], bool], on_failure: Callable[[str, str], None],
                      timeout: float = STARTUP_TIMEOUT_S) -> dict[str, str]:
        """Start every node and wait until each is ready (its own pid answering /health) or fails.

        ``on_failure(node_id, reason)`` is called the moment a node is seen failing. Returns the
        failures (also kept in ``self.failed``).
        """
        self.start_all()
        pending = set(self.nodes)
        deadline = time.monotonic() + timeout
        while pending and not stopped():
            for node_id in sorted(pending):
                if not listening(self.nodes[node_id].api_port) and self.nodes[node_id].running:
                    continue
                view = self.view(node_id, with_status=False)
                if view.state == "up" and self.get(node_id, "/ready") is not None:
                    pending.discard(node_id)
                elif view.state in ("exited", "foreign"):
                    self._fail(node_id, view.detail, on_failure)
                    pending.discard(node_id)
            if pending and time.monotonic() >= deadline:
                for node_id in sorted(pending):
                    self._fail(node_id, f"did not answer on {self.nodes[node_id].url}/health within "
                                        f"{timeout:.0f}s; log: {self.nodes[node_id].log_path}", on_failure)
                break
            time.sleep(0.1)
        return dict(self.failed)

    def check_exits(self, on_failure: Callable[[str, str], None]) -> list[str]:
        """Nodes that ended by themselves since the last look (the demo killed none of them)."""
        ended = [n for n, node in self.nodes.items() if n not in self.killed and n not in self.failed
                 and node.proc is not None and node.proc.poll() is not None]
        for node_id in ended:
            self._fail(node_id, f"exited, {self.exit_reason(node_id)}", on_failure)
        return ended

    def _fail(self, node_id: str, reason: str, on_failure: Callable[[str, str], None]) -> None:
        self.failed[node_id] = reason
        on_failure(node_id, reason)

    def exit_reason(self, node_id: str) -> str:
        """Why a node's process ended: its exit code and the last thing it said."""
        node = self.nodes[node_id]
        code = node.proc.returncode if node.proc else None
        return f"exit code {code}: {last_words(self.log_tail(node_id, 20))}"

    # -- Observing -----------------------------------------------------------------------------

    def view(self, node_id: str, with_status: bool = True) -> NodeView:
        node = self.nodes[node_id]
        pid = node.proc.pid if node.proc else None
        if node_id in self.killed:
            return NodeView(node_id, "killed", pid, "SIGKILLed by the demo")
        if node_id in self.failed:
            return NodeView(node_id, "failed", pid, self.failed[node_id])
        if node.proc is None or node.proc.poll() is not None:
            return NodeView(node_id, "exited", pid, self.exit_reason(node_id))
        health = self.get(node_id, "/health", timeout=1.0)
        if health is None:
            return NodeView(node_id, "down", pid, "not answering")
        if health.get("pid") != pid:
            return NodeView(node_id, "foreign", pid,
                            f"port {node.api_port} is answered by pid {health.get('pid')} "
                            f"(node {health.get('node_id')}), not by this demo's pid {pid}")
        status = self.status(node_id, timeout=1.5) if with_status else None
        if with_status and status is None:
            return NodeView(node_id, "down", pid, "no /status")
        return NodeView(node_id, "up", pid, status=status)

    def views(self) -> dict[str, NodeView]:
        """Every node's view, probed in parallel."""
        ids = list(self.nodes)
        return dict(zip(ids, self._pool.map(self.view, ids)))


def last_words(log: str) -> str:
    """The most telling line of a node's log tail: its CLI error, else its last error event."""
    lines = [line for line in log.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("ringrift-cluster:"):
            return line.split(":", 1)[1].strip()
    if lines and not lines[-1].startswith("{"):  # a traceback's last line, or a plain message
        return lines[-1][:300]
    for line in reversed(lines):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("level") in ("error", "critical"):
            return " ".join(str(event.get(k)) for k in ("event", "error") if event.get(k))
    return lines[-1][:300] if lines else "(no output)"
