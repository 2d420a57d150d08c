"""N real node processes on loopback, from a generated cluster YAML.

Ports: node i's API on ``base_port + i``, its SWIM port on ``base_port + n + i`` and its Raft
port on ``base_port + 2n + i``, so nothing collides.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from .api_client import get_json, post_json
from .wait import wait_until


@dataclass
class LocalNode:
    node_id: str
    api_port: int
    swim_port: int
    raft_port: int
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def free_base_port(ports_needed: int, low: int = 20000, high: int = 65535) -> int:
    """A base port such that ``ports_needed`` consecutive TCP and UDP ports are free now.

    Picked outside the kernel's ephemeral range where there is room: a port inside it can be
    taken, between this check and a node's bind, as the source port of any outgoing connection
    (another node's, already running), and that node then fails to bind (seen in CI)."""
    import random

    eph_low, eph_high = ephemeral_ports()
    spans = [(a, b) for a, b in ((low, min(high, eph_low)), (max(low, eph_high + 1), high)) if b - a > ports_needed]
    if not spans:  # the whole range is ephemeral: checking, then binding, is all there is
        spans = [(low, high)]
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(200):
        a, b = rng.choices(spans, weights=[b - a for a, b in spans])[0]
        base = rng.randrange(a, b - ports_needed)
        if all(_port_free(base + i) for i in range(ports_needed)):
            return base
    raise RuntimeError(f"no {ports_needed} consecutive free ports in {spans}")


def ephemeral_ports() -> tuple[int, int]:
    """The kernel's range of source ports for outgoing connections (Linux; else its default)."""
    try:
        low, high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def _port_free(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


class LocalCluster:
    """Start, signal and observe a cluster of real ``ringrift-cluster run`` processes."""

    def __init__(
        self,
        n: int,
        root: str | os.PathLike[str],
        *,
        base_port: int | None = None,
        preset: str = "local",
        settings: Mapping[str, Any] | None = None,
        voters: Iterable[str] | None = None,
        env: Mapping[str, str] | None = None,
        prefix: str = "node",
        auth_token: str = "",
    ) -> None:
        if n < 1:
            raise ValueError("a cluster needs at least one node")
        self.n = n
        self.root = Path(root)
        self.base_port = base_port if base_port is not None else free_base_port(3 * n)
        if self.base_port + 3 * n > 65535:
            raise ValueError(f"base port {self.base_port} leaves no room for {n} nodes")
        width = len(str(n))
        self.nodes: dict[str, LocalNode] = {}
        for i in range(n):
            node_id = f"{prefix}-{i + 1:0{width}d}"
            self.nodes[node_id] = LocalNode(
                node_id=node_id,
                api_port=self.base_port + i,
                swim_port=self.base_port + n + i,
                raft_port=self.base_port + 2 * n + i,
                data_dir=self.root / node_id,
                log_path=self.root / node_id / "node.log",
            )
        self.voters = sorted(voters) if voters is not None else sorted(self.nodes)
        self.settings = {"preset": preset, **(settings or {})}
        self.auth_token = auth_token
        self.env = {**os.environ, **(env or {})}
        if auth_token:
            self.env["RINGRIFT_CLUSTER_AUTH_TOKEN"] = auth_token
        self.config_path = self.root / "cluster.yaml"

    # -- Config and processes ------------------------------------------------------------------

    def write_config(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        document = {
            "hosts": {
                node.node_id: {"p2p_host": "127.0.0.1", "p2p_port": node.api_port,
                               "swim_port": node.swim_port, "raft_port": node.raft_port, "role": "worker"}
                for node in self.nodes.values()
            },
            "p2p_voters": self.voters,
            "ringrift_cluster": self.settings,
        }
        self.config_path.write_text(yaml.safe_dump(document, sort_keys=False))
        return self.config_path

    def command(self, node_id: str) -> list[str]:
        node = self.nodes[node_id]
        return [sys.executable, "-m", "ringrift_cluster", "run", "--config", str(self.config_path),
                "--node-id", node_id, "--data-dir", str(node.data_dir), "--log-format", "json"]

    def start(self, node_id: str) -> LocalNode:
        node = self.nodes[node_id]
        if node.running:
            raise RuntimeError(f"{node_id} is already running")
        if not self.config_path.exists():
            self.write_config()
        node.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(node.log_path, "ab")
        try:
            node.proc = subprocess.Popen(self.command(node_id), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=self.env, start_new_session=True)
        finally:
            log.close()
        return node

    def start_all(self) -> None:
        self.write_config()
        for node_id in self.nodes:
            self.start(node_id)

    def signal(self, node_id: str, sig: int) -> None:
        node = self.nodes[node_id]
        if node.proc is None:
            raise RuntimeError(f"{node_id} was never started")
        node.proc.send_signal(sig)

    def kill(self, node_id: str) -> None:
        """SIGKILL: the node dies without a word to anyone."""
        self.signal(node_id, signal.SIGKILL)
        self.nodes[node_id].proc.wait(timeout=10)  # type: ignore[union-attr]

    def stop(self, node_id: str, timeout: float = 15.0) -> int | None:
        """SIGTERM and wait: the node leaves gracefully. Returns its exit code."""
        node = self.nodes[node_id]
        if not node.running:
            return node.proc.returncode if node.proc else None
        node.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        try:
            return node.proc.wait(timeout=timeout)  # type: ignore[union-attr]
        except subprocess.TimeoutExpired:
            node.proc.kill()  # type: ignore[union-attr]
            return node.proc.wait(timeout=10)  # type: ignore[union-attr]

    def shutdown(self) -> None:
        """Stop every node (gracefully, then by force); never leaves a process behind."""
        running = [n for n in self.nodes.values() if n.running]
        for node in running:
            try:
                os.kill(node.proc.pid, signal.SIGCONT)  # type: ignore[union-attr]
                node.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        for node in running:
            try:
                node.proc.wait(timeout=max(0.1, deadline - time.monotonic()))  # type: ignore[union-attr]
            except subprocess.TimeoutExpired:
                node.proc.kill()  # type: ignore[union-attr]
                node.proc.wait(timeout=10)  # type: ignore[union-attr]

    def __enter__(self) -> "LocalCluster":
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # -- Observing -----------------------------------------------------------------------------

    def get(self, node_id: str, path: str, timeout: float = 1.0) -> dict[str, Any] | None:
        """GET a node's JSON endpoint; None when it does not answer."""
        return get_json(self.nodes[node_id].url + path, timeout)

    def post(self, node_id: str, path: str, body: Any, timeout: float = 2.0,
             token: str | None = None, raw: bytes | None = None) -> tuple[int, Any]:
        """POST to a node; returns (status, parsed body or text)."""
        return post_json(self.nodes[node_id].url + path, body, timeout,
                         self.auth_token if token is None else token, raw)

    def status(self, node_id: str, timeout: float = 1.0) -> dict[str, Any] | None:
        return self.get(node_id, "/status", timeout)

    def statuses(self, node_ids: Iterable[str] | None = None) -> dict[str, dict[str, Any] | None]:
        ids = list(node_ids) if node_ids is not None else [n for n, node in self.nodes.items() if node.running]
        if not ids:
            return {}
        with ThreadPoolExecutor(max_workers=min(32, len(ids))) as pool:
            return dict(zip(ids, pool.map(self.status, ids)))

    def running(self) -> list[str]:
        return [n for n, node in self.nodes.items() if node.running]

    def log_tail(self, node_id: str, lines: int = 40) -> str:
        try:
            return "\n".join(self.nodes[node_id].log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def logs(self, lines: int = 40) -> str:
        return "\n".join(f"----- {n} -----\n{self.log_tail(n, lines)}" for n in self.nodes)

    # -- Common conditions ---------------------------------------------------------------------

    def leaders(self, statuses: Mapping[str, dict[str, Any] | None] | None = None) -> dict[str, str | None]:
        """Each running node's view of the leader."""
        statuses = self.statuses() if statuses is None else statuses
        return {n: (s or {}).get("leader_id") for n, s in statuses.items()}

    def agreed_leader(self, among: Iterable[str] | None = None) -> str | None:
        """The leader every given running node reports, when they all agree on one."""
        views = self.leaders(self.statuses(among))
        values = set(views.values())
        if len(values) == 1 and None not in values:
            return values.pop()
        return None

    def wait_for_leader(self, timeout: float, among: Iterable[str] | None = None) -> str:
        """One agreed leader, and (where nodes hold state) a state leader that serves: a new
        leader gathers the members' states before it takes writes."""
        among = list(among) if among is not None else None
        leader = wait_until(lambda: self.agreed_leader(among), timeout, what="one agreed leader",
                            describe=lambda: self.leaders(self.statuses(among)))
        wait_until(lambda: self.state_served(among), timeout, what="the state served by its leader",
                   describe=lambda: {n: (s or {}).get("state") for n, s in self.statuses(among).items()})
        return leader

    def state_served(self, among: Iterable[str] | None = None) -> bool:
        """Some node serves the state (or none of them holds any)."""
        states = [(s or {}).get("state") for s in self.statuses(among).values()]
        held = [st for st in states if st]
        return not held or any(st.get("serving") for st in held)

    def wait_converged(self, timeout: float, among: Iterable[str] | None = None) -> None:
        """Every given node sees every other given node alive."""
        ids = list(among) if among is not None else self.running()

        def converged() -> bool:
            statuses = self.statuses(ids)
            for node_id, status in statuses.items():
                if status is None:
                    return False
                peers = status.get("peers", {})
                if any(not peers.get(other, {}).get("is_alive") for other in ids if other != node_id):
                    return False
            return True

        wait_until(converged, timeout, what=f"{len(ids)} nodes see each other alive",
                   describe=lambda: {n: {p: v.get("state") for p, v in (s or {}).get("peers", {}).items()}
                                     for n, s in self.statuses(ids).items()})
