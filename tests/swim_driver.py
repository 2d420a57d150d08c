"""Run one SWIM node per process, and a harness that runs a cluster of them on loopback.

As a program (one node)::

    python tests/swim_driver.py --config cluster.yaml --node-id n01 [--engine ours|raw]

prints JSON lines on stdout: ``{"type": "event", ...}`` per membership event and
``{"type": "status", ...}`` (``describe()``) twice a second. Commands on stdin: ``stop`` (graceful),
``stop-hard``, ``status``, ``block <seconds>`` (block the node's main loop: the isolation check),
``kill-task`` (cancel the library's protocol task: the supervisor must restart it).

``--engine raw`` runs swim-p2p as it comes (its UDP transport, its default config, on the main
loop) and prints the library's raw transitions mapped to node ids: the baseline for benchmarks.

As a module: ``SwimCluster`` (spawn, signal, stop, restart nodes; read what each one saw) and
``wait_for`` (poll a condition with a deadline; on timeout say what was seen).
"""

from __future__ import annotations

import argparse
import asyncio
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

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------------------------
# The node process


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


def _configure_logging(level: str) -> None:
    import logging

    import structlog

    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso"),
                    structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)


async def _stdin_commands() -> "asyncio.Queue[str]":
    queue: asyncio.Queue[str] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def reader() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(queue.put_nowait, line.strip())
        loop.call_soon_threadsafe(queue.put_nowait, "eof")

    threading.Thread(target=reader, daemon=True).start()
    return queue


async def _run_ours(args: argparse.Namespace) -> int:
    from ringrift_cluster.config import load_config
    from ringrift_cluster.errors import BackendUnavailable
    from ringrift_cluster.membership.swim import SwimMembership

    config = load_config(args.config, env={}, overrides={"node_id": args.node_id})
    membership = SwimMembership(config)
    subscription = membership.subscribe()
    try:
        await membership.start()
    except BackendUnavailable as e:
        _emit({"type": "error", "error": str(e), "describe": membership.describe()})
        return 3
    _emit({"type": "started", "node_id": config.node_id, "pid": os.getpid()})

    async def pump_events() -> None:
        async for event in subscription:
            _emit({"type": "event", "kind": event.kind.value, "node_id": event.node_id,
                   "after_s": event.after_s, "at": event.at, "mono": time.monotonic()})

    def status() -> dict[str, Any]:
        members = [
            {"node_id": m.node_id, "state": m.state.value, "host": m.host, "api_port": m.api_port,
             "role": m.role, "raft_address": m.raft_address, "capabilities": list(m.capabilities),
             "has_gpu": m.has_gpu, "gpu_name": m.gpu_name, "source": m.source, "meta": dict(m.meta)}
            for m in membership.members().values()
        ]
        return {"type": "status", "at": time.time(), "describe": membership.describe(), "members": members}

    async def pump_status() -> None:
        while True:
            _emit(status())
            await asyncio.sleep(0.5)

    tasks = [asyncio.create_task(pump_events()), asyncio.create_task(pump_status())]
    commands = await _stdin_commands()
    code = 0
    while True:
        command = await commands.get()
        if command == "status":
            _emit(status())
        elif command.startswith("block"):
            seconds = float(command.split()[1])
            time.sleep(seconds)  # deliberately blocks this (the node's) loop
            _emit({"type": "unblocked", "seconds": seconds})
        elif command == "kill-task":
            await _kill_protocol_task(membership)
        elif command in ("stop", "stop-hard", "eof"):
            await membership.stop(graceful=command != "stop-hard")
            _emit({"type": "stopped", "graceful": command != "stop-hard",
                   "describe": membership.describe()})
            break
    for task in tasks:
        task.cancel()
    return code


async def _kill_protocol_task(membership: Any) -> None:
    """Test hook: cancel the library's protocol task on the SWIM loop (simulates it dying)."""

    def kill(engine: Any) -> None:
        for task in list(engine.node.tasks):
            if "_protocol_loop" in task.get_coro().__qualname__:
                task.cancel()

    membership.on_engine_loop(kill)


async def _run_raw(args: argparse.Namespace) -> int:
    """swim-p2p exactly as it comes: its transport and defaults, on this (the main) loop."""
    import contextlib
    import io

    from ringrift_cluster.config import load_config

    config = load_config(args.config, env={}, overrides={"node_id": args.node_id})
    with contextlib.redirect_stdout(io.StringIO()):
        from swim.config import get_config
        from swim.protocol.node import Node
        from swim.transport.udp import UDPTransport
    import logging

    logging.getLogger("swim").setLevel(logging.CRITICAL)
    addr_to_id = {(h.address, h.swim_port): h.node_id for h in config.hosts.values()}
    me = config.me
    seeds = [(h.address, h.swim_port) for h in config.peers]
    node = await Node.create(bind_addr=(me.address, me.swim_port), transport=UDPTransport(),
                             seed_addrs=seeds, config=get_config())
    await node.start()
    _emit({"type": "started", "node_id": me.node_id, "pid": os.getpid()})
    names = {"ALIVE": "alive", "SUSPECT": "suspect", "DEAD": "failed"}
    seen: dict[str, str] = {}
    commands = await _stdin_commands()
    last_status = 0.0
    while True:
        try:
            command = commands.get_nowait()
        except asyncio.QueueEmpty:
            command = None
        if command in ("stop", "stop-hard", "eof"):
            await node.stop()
            break
        for m in node.members.get_all_members(exclude_self=True):
            node_id = addr_to_id.get(m.addr, f"?{m.addr}")
            state = names[m.state.name]
            if seen.get(node_id) != state:
                kind = "joined" if node_id not in seen else state
                seen[node_id] = state
                _emit({"type": "event", "kind": kind, "node_id": node_id, "at": time.time(),
                       "mono": time.monotonic()})
        if time.monotonic() - last_status > 0.5:
            last_status = time.monotonic()
            members = [{"id": n, "state": s, "address": ""} for n, s in sorted(seen.items())]
            transport = node.transport
            _emit({"type": "status", "at": time.time(), "describe": {
                "members": members, "raw_flaps": 0, "restarts": 0,
                "alive_count": sum(1 for _, s in seen.items() if s == "alive")}})
        await asyncio.sleep(0.05)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--node-id", required=True)
    parser.add_argument("--engine", choices=("ours", "raw"), default="ours")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    _configure_logging(args.log_level)
    runner = _run_ours if args.engine == "ours" else _run_raw
    return asyncio.run(runner(args))


# ------------------------------------------------------------------------------------------------
# The harness


def free_ports(count: int) -> list[int]:
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

    ports = free_ports(3 * len(ids))
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
    """N node processes on loopback, each running ``swim_driver.py`` from one cluster YAML."""

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
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "swim_driver.py"), "--config", str(self.config_path),
             "--node-id", node_id, "--engine", self.engine],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, env=env, bufsize=1,
        )
        log.close()
        node = NodeProc(node_id, proc)
        node.reader = threading.Thread(target=self._read, args=(node,), daemon=True)
        node.reader.start()
        self.nodes[node_id] = node
        self.generations.setdefault(node_id, []).append(node)
        return node

    def _read(self, node: NodeProc) -> None:
        assert node.proc.stdout is not None
        for line in node.proc.stdout:
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            kind = obj.get("type")
            with self._lock:
                if kind == "status":
                    node.status = obj["describe"]
                    node.members = obj.get("members", [])
                    continue
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


if __name__ == "__main__":
    sys.exit(main())
