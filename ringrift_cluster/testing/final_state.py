"""After a fault run, from the test process: the replicated state as the leader holds it (every
read linearizable) and whether every replica converged on one digest. Used by
:class:`~ringrift_cluster.testing.workload.StateWorkload`; the judging is ``checks/``'s."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .api_client import OPENER as _OPENER
from .checks.calls import FinalState
from .netns import NetnsCluster


class ClusterReader:
    """Reads over the nodes' HTTP API; ``stopping`` cuts its waits short."""

    def __init__(self, cluster: NetnsCluster, stopping: threading.Event) -> None:
        self.cluster = cluster
        self._stopping = stopping

    def get(self, node: str, path: str, timeout: float = 5.0) -> tuple[int | None, Any]:
        try:
            with _OPENER.open(self.cluster.nodes[node].url + path, timeout=timeout) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as e:
            try:
                return e.code, json.loads(e.read())
            except (ValueError, OSError):
                return e.code, None
        except (OSError, ValueError):
            return None, None

    def count_items(self, timeout: float = 5.0) -> int | None:
        """How many work items the cluster holds (linearizable), or None if nobody answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node in self.cluster.running():
                status, body = self.get(node, "/raft/work?consistent=true", timeout=2.0)
                if status == 200 and isinstance((body or {}).get("stats"), dict):
                    return int(body["stats"].get("total", 0))
            time.sleep(0.2)
        return None

    def leader(self) -> str | None:
        for node in self.cluster.running():
            status, body = self.get(node, "/raft/work", timeout=2.0)
            if status == 200 and body.get("leader") in self.cluster.nodes:
                return body["leader"]
        return None

    def read_final(self, work_ids: list[str], model_names: list[str], baseline_items: int | None,
                   timeout: float = 30.0) -> FinalState:
        """The state as the leader holds it, every read linearizable (``?consistent=true``);
        ``total_items`` counts from ``baseline_items`` (None: not known)."""
        deadline = time.monotonic() + timeout
        last = "no leader"
        while time.monotonic() < deadline:
            leader = self.leader()
            if leader is None:
                self._stopping.wait(0.2)
                continue
            try:
                return self._read_from(leader, work_ids, model_names, baseline_items)
            except (RuntimeError, KeyError, TypeError, AttributeError) as e:
                last = f"{leader}: {e}"
                time.sleep(0.2)
        raise RuntimeError(f"no consistent read within {timeout:.0f}s; last: {last}")

    def _read_from(self, leader: str, work_ids: list[str], model_names: list[str],
                   baseline_items: int | None) -> FinalState:
        def read(path: str, allow_404: bool = False) -> Any:
            status, body = self.get(leader, path + ("&" if "?" in path else "?") + "consistent=true")
            if status == 404 and allow_404:
                return None
            if status != 200:
                raise RuntimeError(f"GET {path}: {status} {body}")
            return body

        clock = time.time()
        stats = read("/raft/work")["stats"]
        with ThreadPoolExecutor(max_workers=8) as pool:
            items = dict(zip(work_ids, pool.map(lambda w: read(f"/raft/work/{urllib.parse.quote(w)}", True), work_ids)))
            models = dict(zip(model_names, pool.map(lambda n: read(f"/raft/models/{urllib.parse.quote(n)}", True),
                                                    model_names)))
        locks = read("/raft/locks")["locks"]
        locks_clock = time.time()  # the read took effect before this: a lock valid past it was held
        return FinalState(items={w: (b or {}).get("item") for w, b in items.items()},
                          locks={lock["name"]: lock for lock in locks},
                          models={n: (b or {}).get("versions", []) for n, b in models.items()},
                          total_items=None if baseline_items is None else stats.get("total", 0) - baseline_items,
                          clock=clock, locks_clock=locks_clock)

    def check_convergence(self, converge_s: float, durable: bool) -> list[str]:
        """(d) every node holding a copy of the state has the same digest (polled, bounded)."""
        nodes = list(self.cluster.nodes)
        deadline = time.monotonic() + converge_s
        seen: dict[str, Any] = {}
        while True:
            with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
                answers = dict(zip(nodes, pool.map(lambda n: self.get(n, "/state/digest", 2.0), nodes)))
            seen = {n: (b or {}).get("digest", f"{s} {(b or {}).get('error')}")[:16] + f"@{(b or {}).get('changes')}"
                    for n, (s, b) in answers.items()}
            holders = {n: b["digest"] for n, (s, b) in answers.items() if s == 200 and b and "digest" in b}
            if durable:
                done = len(holders) == len(nodes) and len(set(holders.values())) == 1
            else:
                done = len(set(holders.values())) <= 1 and all(s in (200, 409) for s, _ in answers.values())
            if done:
                return []
            if time.monotonic() >= deadline:
                return [f"replicas did not converge within {converge_s:.0f}s: digests {seen}"]
            self._stopping.wait(0.2)


__all__ = ["ClusterReader"]
