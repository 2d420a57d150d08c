"""Harnesses for engine-level tests and benchmarks: clusters of driver processes on loopback.

:class:`RaftCluster` writes the YAML (free ports picked at runtime), spawns and kills Raft driver
processes (:mod:`ringrift_cluster.testing.drivers.raft`), and :func:`poll_until` waits on
conditions with a deadline, printing what it last saw when the deadline passes (no fixed sleeps).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import aiohttp

from .local_cluster import free_base_port

# The directory holding the package: the drivers run from there, whatever the caller's cwd.
ROOT = Path(__file__).resolve().parents[2]
RAFT_DRIVER = [sys.executable, "-m", "ringrift_cluster.testing.drivers.raft", "node"]


# Answers a client retries under the same rid: no leader yet, a stale one, or no answer in time.
_RETRIED_ERRORS = {"NoLeader", "NotLeader", "ClusterTimeout", "ClientConnectorError", "ServerDisconnectedError",
                   "TimeoutError", "ClientOSError"}


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports, outside the kernel's ephemeral range (``free_base_port``)."""
    base = free_base_port(count)
    return list(range(base, base + count))


async def poll_until(check: Callable[[], Awaitable[tuple[bool, Any]]], timeout: float, what: str,
                     interval: float = 0.05) -> Any:
    """Await ``check()`` -> (done, seen) until done; AssertionError with the last ``seen`` at the deadline."""
    deadline = time.monotonic() + timeout
    seen: Any = None
    while True:
        try:
            done, seen = await check()
        except Exception as e:  # a node restarting, a refused connection: keep polling
            done, seen = False, f"{type(e).__name__}: {e}"
        if done:
            return seen
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}; last seen: {seen!r}")
        await asyncio.sleep(interval)


class RaftCluster:
    """N voters on loopback, each a process running ``node_cmd`` (the driver by default)."""

    def __init__(self, n: int, base_dir: Path, *, raft: dict[str, Any] | None = None,
                 node_cmd: list[str] | None = None, prefix: str = "n") -> None:
        self.ids = [f"{prefix}{i + 1}" for i in range(n)]
        self.base_dir = Path(base_dir)
        self.base_dir.mkdir(parents=True, exist_ok=True)
        ports = free_ports(3 * n)
        self.api_port = {nid: ports[3 * i] for i, nid in enumerate(self.ids)}
        hosts = {
            nid: {"p2p_host": "127.0.0.1", "p2p_port": ports[3 * i], "swim_port": ports[3 * i + 1],
                  "raft_port": ports[3 * i + 2]}
            for i, nid in enumerate(self.ids)
        }
        section: dict[str, Any] = {"preset": "local", "consensus_mode": "raft",
                                   "data_dir": str(self.base_dir / "data")}
        if raft:
            section["raft"] = dict(raft)
        document = {"hosts": hosts, "raft_members": list(self.ids), "ringrift_cluster": section}
        self.config_path = self.base_dir / "cluster.yaml"
        self.config_path.write_text(json.dumps(document, indent=2))  # JSON is YAML
        self.node_cmd = node_cmd or list(RAFT_DRIVER)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.session: aiohttp.ClientSession | None = None

    # processes

    def data_dir(self, nid: str) -> Path:
        return self.base_dir / "data" / nid

    def spawn(self, nid: str) -> None:
        assert nid not in self.procs or self.procs[nid].poll() is not None, f"{nid} already running"
        log = open(self.base_dir / f"{nid}.log", "ab")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("RINGRIFT_CONFIG", None)
        self.procs[nid] = subprocess.Popen(
            [*self.node_cmd, "--config", str(self.config_path), "--node-id", nid, "--data-dir", str(self.data_dir(nid))],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT),
        )
        log.close()

    def kill(self, nid: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[nid]
        if proc.poll() is None:
            proc.send_signal(sig)
            proc.wait(timeout=10)

    def alive(self) -> list[str]:
        return [nid for nid, p in self.procs.items() if p.poll() is None]

    def log_tail(self, nid: str, lines: int = 30) -> str:
        path = self.base_dir / f"{nid}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    async def __aenter__(self) -> "RaftCluster":
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        for nid in list(self.procs):
            self.kill(nid, signal.SIGKILL)
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def start_all(self, timeout: float = 20.0) -> None:
        for nid in self.ids:
            self.spawn(nid)
        for nid in self.ids:
            await self.wait_serving(nid, timeout)

    async def wait_serving(self, nid: str, timeout: float = 20.0) -> None:
        async def check() -> tuple[bool, Any]:
            if self.procs[nid].poll() is not None:
                raise AssertionError(f"{nid} exited with {self.procs[nid].returncode}:\n{self.log_tail(nid)}")
            return True, await self.get(nid, "/leadership", timeout=1.0)

        try:
            await poll_until(check, timeout, f"{nid} serving")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.log_tail(nid)}") from None

    # control API

    def url(self, nid: str, path: str) -> str:
        return f"http://127.0.0.1:{self.api_port[nid]}{path}"

    async def get(self, nid: str, path: str, timeout: float = 5.0) -> Any:
        assert self.session is not None
        async with self.session.get(self.url(nid, path), timeout=aiohttp.ClientTimeout(total=timeout)) as r:
            return await r.json()

    async def post(self, nid: str, path: str, body: Any, timeout: float = 30.0) -> Any:
        assert self.session is not None
        async with self.session.post(self.url(nid, path), json=body, timeout=aiohttp.ClientTimeout(total=timeout)) as r:
            return await r.json()

    async def submit(self, nid: str, command: dict[str, Any], timeout: float | None = None,
                     http_timeout: float = 30.0) -> dict[str, Any]:
        return await self.post(nid, "/submit", {"command": command, "timeout": timeout}, timeout=http_timeout)

    async def submit_acknowledged(self, nid: str, command: dict[str, Any], within: float = 15.0,
                                  timeout: float = 2.0) -> dict[str, Any]:
        """Submit as a client should: retry under the command's rid (deduplicated, so a retry of a
        write that did commit is not applied twice) until a definite answer or ``within`` seconds.
        A leader change under load answers NoLeader/NotLeader or times out; both are retried."""
        assert "rid" in command, "a retried write needs a rid"
        deadline = time.monotonic() + within
        answers: list[Any] = []
        while True:
            try:
                answer: Any = await self.submit(nid, command, timeout=timeout, http_timeout=timeout + 5.0)
            except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                answer = {"ok": False, "error": type(e).__name__}
            if answer.get("ok") or answer.get("error") not in _RETRIED_ERRORS:
                return answer
            answers.append(answer.get("error"))
            if time.monotonic() >= deadline:
                raise AssertionError(f"{command.get('rid')}: no definite answer in {within:.0f} s: {answers}")
            await asyncio.sleep(0.1)

    async def leaderships(self, nodes: list[str] | None = None) -> dict[str, Any]:
        nodes = nodes if nodes is not None else self.alive()

        async def one(nid: str) -> Any:
            try:
                return await self.get(nid, "/leadership", timeout=1.0)
            except Exception as e:
                return f"{type(e).__name__}"

        results = await asyncio.gather(*(one(n) for n in nodes))
        return dict(zip(nodes, results))

    async def wait_agreed_leader(self, timeout: float, nodes: list[str] | None = None,
                                 exclude: str | None = None) -> tuple[str, int]:
        """Every given node reports the same leader (not ``exclude``) and term; that leader says is_self."""

        async def check() -> tuple[bool, Any]:
            views = await self.leaderships(nodes)
            leaders = {(v.get("leader"), v.get("term")) if isinstance(v, dict) else None for v in views.values()}
            if len(leaders) != 1:
                return False, views
            only = next(iter(leaders))
            if only is None or only[0] is None or only[0] == exclude or only[0] not in views:
                return False, views
            return bool(views[only[0]].get("is_self")), views

        views = await poll_until(check, timeout, "one agreed leader")
        first = next(iter(views.values()))
        return first["leader"], first["term"]

    async def wait_full_mesh(self, timeout: float) -> None:
        async def check() -> tuple[bool, Any]:
            seen = {}
            for nid in self.ids:
                d = await self.get(nid, "/describe", timeout=1.0)
                seen[nid] = (d["cluster_health"], d["members"])
            return all(h == "healthy" for h, _ in seen.values()), seen

        await poll_until(check, timeout, "every member connected to every other (healthy)")


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Benchmarks' ``--raft key=value ...``: true/false, integers, numbers, else words."""
    out: dict[str, Any] = {}
    for item in items:
        key, _, value = item.partition("=")
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            out[key] = lowered == "true"
        elif value.isdigit():
            out[key] = int(value)
        else:
            try:
                out[key] = float(value)
            except ValueError:
                out[key] = value  # durability=none
    return out


__all__ = ["RAFT_DRIVER", "RaftCluster", "free_ports", "parse_overrides", "poll_until"]
