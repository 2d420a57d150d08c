"""A real etcd cluster on loopback (Debian's ``etcd-server``), for the benchmarks that set our
figures beside etcd's: start, kill, restart members, find the leader, write through the v3 HTTP
gateway. Every process it starts is SIGKILLed by ``stop()``.
"""

from __future__ import annotations

import base64
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

from .api_client import JsonClient
from .local_cluster import free_base_port
from .wait import wait_until

# etcd's tuning guide: the heartbeat near the members' round-trip time, the election timeout a
# few heartbeats. On loopback that is well below the defaults (100 ms / 1,000 ms).
LOW_LATENCY = {"heartbeat_ms": 50, "election_ms": 250}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class EtcdClient(JsonClient):
    """One kept-alive HTTP connection to a member's v3 gateway (no reconnect cost per call)."""

    def put(self, key: str, value: str = "v", timeout: float | None = None) -> bool:
        return self.call("POST", "/v3/kv/put", {"key": b64(key), "value": b64(value)}, timeout)[0] == 200


class EtcdCluster:
    """``n`` etcd members on loopback; member i is ``e{i}``."""

    def __init__(self, n: int, root: Path, *, heartbeat_ms: int | None = None, election_ms: int | None = None) -> None:
        base = free_base_port(2 * n)
        self.n = n
        self.clients = [f"http://127.0.0.1:{base + i}" for i in range(n)]
        self.peers = [f"http://127.0.0.1:{base + n + i}" for i in range(n)]
        self.initial = ",".join(f"e{i}={p}" for i, p in enumerate(self.peers))
        self.root = root
        self.timings = (heartbeat_ms, election_ms)
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    @staticmethod
    def available() -> bool:
        return shutil.which("etcd") is not None

    def command(self, i: int, state: str) -> list[str]:
        cmd = [shutil.which("etcd") or "etcd", "--name", f"e{i}", "--data-dir", str(self.root / f"e{i}"),
               "--listen-client-urls", self.clients[i], "--advertise-client-urls", self.clients[i],
               "--listen-peer-urls", self.peers[i], "--initial-advertise-peer-urls", self.peers[i],
               "--initial-cluster", self.initial, "--initial-cluster-state", state, "--logger", "zap",
               "--log-outputs", str(self.root / f"e{i}.log")]
        heartbeat, election = self.timings
        if heartbeat:
            cmd += ["--heartbeat-interval", str(heartbeat)]
        if election:
            cmd += ["--election-timeout", str(election)]
        return cmd

    def start(self, i: int, state: str = "new") -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.procs[i] = subprocess.Popen(self.command(i, state), stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)

    def start_all(self) -> None:
        for i in range(self.n):
            self.start(i)

    def running(self, i: int) -> bool:
        return i in self.procs and self.procs[i].poll() is None

    def status(self, i: int) -> dict[str, Any] | None:
        status, body = EtcdClient(self.clients[i], timeout=2.0).call("POST", "/v3/maintenance/status", {})
        return body if status == 200 else None

    def leader(self, timeout: float = 60.0) -> int:
        """The member that says it leads (waits for one)."""
        def find() -> tuple[int] | None:  # a tuple: member 0 must not read as "not yet"
            for i in range(self.n):
                body = self.status(i) if self.running(i) else None
                if body and body.get("leader") == body.get("header", {}).get("member_id"):
                    return (i,)
            return None
        return wait_until(find, timeout, what="an etcd leader")[0]

    def term(self, i: int) -> int | None:
        body = self.status(i)
        return int(body["raftTerm"]) if body and "raftTerm" in body else None

    def kill(self, i: int) -> None:
        self.procs[i].send_signal(signal.SIGKILL)
        self.procs[i].wait()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
