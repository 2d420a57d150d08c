"""SWIM clusters on loopback for tests and benchmarks, driving real ``SwimMembership`` nodes
(:mod:`ringrift_cluster.testing.drivers.swim`) in processes of their own and reading what they
print: ``SwimCluster`` (one node a process: spawn, signal, stop, restart; what each one saw) and
``PackCluster`` (many nodes a process, for 40-300+ nodes on a small machine). ``wait_for`` polls a
condition with a deadline and, on timeout, says what was seen."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

# The directory holding the package: the drivers run from there, whatever the caller's cwd.
ROOT = Path(__file__).resolve().parents[2]
SWIM_DRIVER = [sys.executable, "-m", "ringrift_cluster.testing.drivers.swim"]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONUNBUFFERED="1")


def _follow(proc: subprocess.Popen[str], lock: threading.Lock, take: Callable[[dict[str, Any]], None]) -> None:
    """A driver's stdout, one JSON object a line, each handed to ``take`` under ``lock``."""
    assert proc.stdout is not None
    for line in proc.stdout:
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        with lock:
            take(obj)


def free_swim_ports(count: int) -> list[int]:
    """Ports free for both TCP and UDP right now (held until all are found, then released)."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            port = random.randint(20000, 29999)
            if port in ports:
                continue
            pair = []
            try:
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    s = socket.socket(socket.AF_INET, kind)
                    pair.append(s)
                    s.bind(("127.0.0.1", port))
            except OSError:
                for s in pair:
                    s.close()
                continue
            held.extend(pair)
            ports.append(port)
    finally:
        for s in held:
            s.close()
    return ports


def write_cluster_yaml(path: Path, ids: list[str], *, preset: str = "local",
                       swim: Optional[dict[str, Any]] = None) -> dict[str, int]:
    """A host-file-compatible cluster YAML on loopback; returns node id -> swim port."""
    import yaml

    ports = free_swim_ports(3 * len(ids))
    hosts: dict[str, Any] = {}
    swim_ports: dict[str, int] = {}
    for i, node_id in enumerate(ids):
        api, swim_port, raft = ports[3 * i: 3 * i + 3]
        swim_ports[node_id] = swim_port
        hosts[node_id] = {
            "p2p_host": "127.0.0.1", "p2p_port": api, "swim_port": swim_port, "raft_port": raft,
            "role": "coordinator" if i == 0 else "worker",
            "capabilities": ["selfplay", "training"] if i % 2 else ["selfplay"],
            "gpu": "RTX 4090" if i % 3 == 0 else "",
            "ssh_user": "ubuntu",  # a host-file key that is not ours
        }
    section: dict[str, Any] = {"preset": preset, "membership_mode": "swim"}
    if swim:
        section["swim"] = dict(swim)
    path.write_text(yaml.safe_dump({"hosts": hosts, "ringrift_cluster": section}, sort_keys=True))
    return swim_ports


@dataclass
class NodeProc:
    node_id: str
    proc: subprocess.Popen[str]
    events: list[dict[str, Any]] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    members: list[dict[str, Any]] = field(default_factory=list)  # members() with metadata
    lines: list[dict[str, Any]] = field(default_factory=list)  # everything but status
    started: bool = False
    error: Optional[str] = None
    reader: Optional[threading.Thread] = None


class SwimCluster:
    """N node processes on loopback, each running the driver's ``node`` from one cluster YAML."""

    def __init__(self, workdir: Path, n: int, *, preset: str = "local",
                 swim: Optional[dict[str, Any]] = None, engine: str = "ours", prefix: str = "n") -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ids = [f"{prefix}{i:02d}" for i in range(1, n + 1)]
        self.config_path = self.workdir / "cluster.yaml"
        self.swim_ports = write_cluster_yaml(self.config_path, self.ids, preset=preset, swim=swim)
        self.engine = engine
        self.nodes: dict[str, NodeProc] = {}
        self.generations: dict[str, list[NodeProc]] = {}
        self._lock = threading.Lock()

    # -- processes ----------------------------------------------------------------------------------

    def spawn(self, node_id: str) -> NodeProc:
        log = open(self.workdir / f"{node_id}.stderr.log", "a")
        proc = subprocess.Popen(
            [*SWIM_DRIVER, "node", "--config", str(self.config_path), "--node-id", node_id, "--engine", self.engine],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, env=_env(), bufsize=1, cwd=ROOT,
        )
        log.close()
        node = NodeProc(node_id, proc)
        node.reader = threading.Thread(target=_follow, args=(proc, self._lock, lambda obj: self._take(node, obj)),
                                       daemon=True)
        node.reader.start()
        self.nodes[node_id] = node
        self.generations.setdefault(node_id, []).append(node)
        return node

    @staticmethod
    def _take(node: NodeProc, obj: dict[str, Any]) -> None:
        kind = obj.get("type")
        if kind == "status":
            node.status = obj["describe"]
            node.members = obj.get("members", [])
            return
        obj["seen_mono"] = time.monotonic()
        node.lines.append(obj)
        if kind == "event":
            node.events.append(obj)
        elif kind == "started":
            node.started = True
        elif kind == "error":
            node.error = obj["error"]

    def start(self, ids: Optional[list[str]] = None) -> None:
        for node_id in ids or self.ids:
            self.spawn(node_id)

    def send(self, node_id: str, command: str) -> None:
        proc = self.nodes[node_id].proc
        assert proc.stdin is not None
        proc.stdin.write(command + "\n")
        proc.stdin.flush()

    def signal(self, node_id: str, sig: int) -> None:
        self.nodes[node_id].proc.send_signal(sig)

    def stop(self, node_id: str, graceful: bool = True, timeout: float = 15.0) -> None:
        node = self.nodes[node_id]
        if node.proc.poll() is None:
            try:
                self.send(node_id, "stop" if graceful else "stop-hard")
                node.proc.wait(timeout)
            except (OSError, subprocess.TimeoutExpired):
                node.proc.kill()
                node.proc.wait(5)

    def close(self) -> None:
        for node in self.nodes.values():
            if node.proc.poll() is None:
                try:
                    node.proc.send_signal(signal.SIGCONT)
                    node.proc.kill()
                except OSError:
                    pass
        for node in self.nodes.values():
            try:
                node.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
            if node.proc.stdin:
                try:
                    node.proc.stdin.close()
                except OSError:
                    pass

    def alive_ids(self) -> list[str]:
        return [n for n, p in self.nodes.items() if p.proc.poll() is None]

    # -- what the nodes saw ---------------------------------------------------------------------------

    def view(self, node_id: str) -> dict[str, str]:
        """node id -> state, as ``node_id`` currently reports its members."""
        with self._lock:
            members = self.nodes[node_id].status.get("members", [])
        return {m["id"]: m["state"] for m in members}

    def members(self, node_id: str) -> dict[str, dict[str, Any]]:
        """``members()`` of ``node_id`` with metadata, by node id."""
        with self._lock:
            return {m["node_id"]: m for m in self.nodes[node_id].members}

    def lines_of(self, node_id: str, kind: str) -> list[dict[str, Any]]:
        """Non-status lines of one type (``started``, ``unblocked``, ``stopped``, ``error``)."""
        with self._lock:
            return [line for line in self.nodes[node_id].lines if line.get("type") == kind]

    def events(self, node_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.nodes[node_id].events)

    def all_events(self, node_id: str) -> list[dict[str, Any]]:
        """Events of every process that ran as ``node_id`` (all restarts)."""
        with self._lock:
            return [e for p in self.generations.get(node_id, []) for e in p.events]

    def status(self, node_id: str) -> dict[str, Any]:
        with self._lock:
            return dict(self.nodes[node_id].status)

    def sees_all_alive(self, observers: list[str], members: list[str]) -> bool:
        for observer in observers:
            view = self.view(observer)
            if any(view.get(m) != "alive" for m in members if m != observer):
                return False
        return True

    def summary(self, observers: Optional[list[str]] = None) -> str:
        out = []
        for node_id in observers or list(self.nodes):
            node = self.nodes[node_id]
            view = self.view(node_id)
            states: dict[str, list[str]] = {}
            for member, state in sorted(view.items()):
                states.setdefault(state, []).append(member)
            st = self.status(node_id)
            code = node.proc.poll()
            out.append(f"  {node_id} (exit={code}, error={node.error}) sees {states} "
                       f"flaps={st.get('raw_flaps')} restarts={st.get('restarts')} "
                       f"last_error={st.get('last_error')} events={[(e['kind'], e['node_id']) for e in node.events[-12:]]}")
        return "\n".join(out)


def wait_for(condition: Callable[[], Any], timeout: float, what: str,
             seen: Optional[Callable[[], str]] = None, interval: float = 0.1) -> float:
    """Poll ``condition`` until true; returns the seconds it took. On timeout, fail with ``what``
    and whatever ``seen`` reports."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        if condition():
            return time.monotonic() - start
        if time.monotonic() > deadline:
            detail = seen() if seen else ""
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for: {what}\n{detail}")
        time.sleep(interval)


class PackCluster:
    """N nodes in ``ceil(N / per_process)`` processes on loopback, one cluster YAML."""

    def __init__(self, workdir: Path, n: int, *, per_process: int = 10, preset: str = "local",
                 swim: Optional[dict[str, Any]] = None) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        width = max(2, len(str(n)))
        self.ids = [f"n{i:0{width}d}" for i in range(1, n + 1)]
        self.config_path = self.workdir / "cluster.yaml"
        write_cluster_yaml(self.config_path, self.ids, preset=preset, swim=swim)
        self.groups = [self.ids[i:i + per_process] for i in range(0, n, per_process)]
        self.procs: list[subprocess.Popen[str]] = []
        self.home: dict[str, int] = {}  # node id -> index of its process
        self.events: list[dict[str, Any]] = []
        self.status: dict[str, dict[str, Any]] = {}
        self.started: dict[str, float] = {}
        self.stopped: dict[str, float] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        for index, group in enumerate(self.groups):
            log = open(self.workdir / f"pack{index}.stderr.log", "a")
            proc = subprocess.Popen(
                [*SWIM_DRIVER, "pack", "--config", str(self.config_path), "--nodes", ",".join(group)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, env=_env(), bufsize=1, cwd=ROOT)
            log.close()
            self.procs.append(proc)
            for node_id in group:
                self.home[node_id] = index
            threading.Thread(target=_follow, args=(proc, self._lock, self._take), daemon=True).start()

    def _take(self, obj: dict[str, Any]) -> None:
        kind = obj.get("type")
        if kind == "status":
            self.status[obj["observer"]] = obj
        elif kind == "event":
            self.events.append(obj)
        elif kind == "started":
            self.started[obj["node_id"]] = obj["mono"]
        elif kind == "stopped":
            self.stopped[obj["node_id"]] = obj["mono"]

    def send(self, node_id: str, command: str) -> None:
        proc = self.procs[self.home[node_id]]
        assert proc.stdin is not None
        proc.stdin.write(f"{command} {node_id}\n")
        proc.stdin.flush()

    def kill(self, node_id: str) -> float:
        """Stop ``node_id`` without a leave (silent, as a crash); returns when it stopped."""
        self.send(node_id, "kill")
        wait_for(lambda: node_id in self.stopped, 30, f"{node_id} stopped", interval=0.2)
        with self._lock:
            self.status.pop(node_id, None)
            return self.stopped[node_id]

    def live(self) -> list[str]:
        return [n for n in self.ids if n not in self.stopped]

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {k: dict(v) for k, v in self.status.items()}

    def events_about(self, member: str, kind: str, since: float = 0.0) -> dict[str, float]:
        """observer -> first time it reported ``kind`` about ``member`` after ``since``."""
        out: dict[str, float] = {}
        with self._lock:
            for e in self.events:
                if e["node_id"] == member and e["kind"] == kind and e["mono"] >= since:
                    out.setdefault(e["observer"], e["mono"])
        return out

    def converged(self) -> bool:
        live = self.live()
        status = self.snapshot()
        return all(n in status and status[n]["alive"] == len(live) - 1 for n in live)

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.poll() is None]

    def close(self) -> None:
        for proc in self.procs:
            try:
                if proc.stdin:
                    proc.stdin.write("quit\n")
                    proc.stdin.flush()
            except OSError:
                pass
        deadline = time.monotonic() + 15
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


__all__ = ["NodeProc", "PackCluster", "SwimCluster", "free_swim_ports", "wait_for", "write_cluster_yaml"]
