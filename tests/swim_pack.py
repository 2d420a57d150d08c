"""Many real SWIM nodes per process, for tests and benchmarks at 40-300+ nodes on a small machine.

Each node is a full ``SwimMembership`` of our backend (its own sockets, its own engine thread and
loop, the same code path as a node process); only the interpreter is shared, so starting 300
nodes does not import the library 300 times. As a program::

    python tests/swim_pack.py --config cluster.yaml --nodes n001,n002,...

prints JSON lines: ``started`` per node, ``event`` per membership event (observer, kind, member,
monotonic time), ``status`` per node every 2 s (state counts and traffic counters). Commands
on stdin: ``kill <id>`` (stop without a leave: silent, like a crash), ``stop <id>`` (graceful),
``quit``.

As a module: ``PackCluster`` spawns the processes and collects what they print.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from swim_driver import write_cluster_yaml  # noqa: E402

_COUNTERS = ("messages_sent", "messages_received", "bytes_sent", "bytes_received", "largest_datagram",
             "oversize", "oversize_dropped", "send_errors", "compressed", "piggyback_depth", "syncs",
             "restarts", "raw_flaps", "library_members", "datagram_sizes", "by_type")


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")


async def _run(config_path: str, ids: list[str]) -> int:
    from ringrift_cluster.config import load_config
    from ringrift_cluster.membership.swim import SwimMembership

    nodes: dict[str, Any] = {}
    pumps: list[asyncio.Task[None]] = []

    async def pump(observer: str, membership: Any) -> None:
        async for event in membership.subscribe():
            _emit({"type": "event", "observer": observer, "kind": event.kind.value, "node_id": event.node_id,
                   "mono": time.monotonic()})

    async def start(node_id: str) -> None:
        config = await asyncio.to_thread(load_config, config_path, env={}, overrides={"node_id": node_id})
        membership = SwimMembership(config)
        pumps.append(asyncio.create_task(pump(node_id, membership)))
        await membership.start()
        nodes[node_id] = membership
        _emit({"type": "started", "node_id": node_id, "mono": time.monotonic()})

    await asyncio.gather(*(start(node_id) for node_id in ids))
    sys.stdout.flush()

    async def report() -> None:
        while True:
            for node_id, membership in list(nodes.items()):
                d = membership.describe()
                _emit({"type": "status", "observer": node_id, "mono": time.monotonic(),
                       "alive": d["alive_count"], "suspect": d["suspected_count"], "failed": d["failed_count"],
                       "left": d["left_count"], **{k: d.get(k) for k in _COUNTERS}})
            sys.stdout.flush()
            await asyncio.sleep(2.0)

    reporter = asyncio.create_task(report())
    queue: asyncio.Queue[str] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def read() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(queue.put_nowait, line.strip())
        loop.call_soon_threadsafe(queue.put_nowait, "quit")

    threading.Thread(target=read, daemon=True).start()
    while True:
        command, _, arg = (await queue.get()).partition(" ")
        if command in ("kill", "stop") and arg in nodes:
            await nodes.pop(arg).stop(graceful=command == "stop")
            _emit({"type": "stopped", "node_id": arg, "mono": time.monotonic()})
            sys.stdout.flush()
        elif command == "quit":
            break
    reporter.cancel()
    await asyncio.gather(*(m.stop(graceful=False) for m in nodes.values()), return_exceptions=True)
    for task in pumps:
        task.cancel()
    return 0


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
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        for index, group in enumerate(self.groups):
            log = open(self.workdir / f"pack{index}.stderr.log", "a")
            proc = subprocess.Popen(
                [sys.executable, str(ROOT / "tests" / "swim_pack.py"), "--config", str(self.config_path),
                 "--nodes", ",".join(group)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, env=env, bufsize=1)
            log.close()
            self.procs.append(proc)
            for node_id in group:
                self.home[node_id] = index
            threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            kind = obj.get("type")
            with self._lock:
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
        wait_until(lambda: node_id in self.stopped, 30, f"{node_id} stopped")
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


def wait_until(condition: Callable[[], Any], timeout: float, what: str,
               seen: Optional[Callable[[], Any]] = None, interval: float = 0.2) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for: {what}\n{seen() if seen else ''}")
        time.sleep(interval)
    return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--nodes", required=True)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
                        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    return asyncio.run(_run(args.config, args.nodes.split(",")))


if __name__ == "__main__":
    sys.exit(main())
