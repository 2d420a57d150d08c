"""A small write load on a cluster, and the check of which acknowledged writes survived."""

from __future__ import annotations

import http.client
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from .owned import OwnedCluster

RATE_PER_S = 10.0


class WriteLoad(threading.Thread):
    """Adds work items one at a time (``request_id`` = the work id, so a retry is safe), moving
    on to the next node when one fails to answer; a write counts once a node acknowledged it."""

    def __init__(self, cluster: OwnedCluster, prefix: str, rate_per_s: float = RATE_PER_S) -> None:
        super().__init__(name=f"load-{prefix}", daemon=True)
        self.cluster = cluster
        self.prefix = prefix
        self.pause_s = 1.0 / rate_per_s
        self.acked: list[str] = []
        self.attempts = 0
        self.failures = 0
        self._halt = threading.Event()
        self._target = 0

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)

    def run(self) -> None:
        seq = 0
        while not self._halt.is_set():
            work_id = f"{self.prefix}-{seq}"
            if self._write(work_id):
                self.acked.append(work_id)
                seq += 1
                self._halt.wait(self.pause_s)
            else:
                self.failures += 1
                self._target += 1
                self._halt.wait(0.1)

    def _write(self, work_id: str) -> bool:
        targets = [n for n in self.cluster.nodes if n not in self.cluster.killed and n not in self.cluster.failed]
        if not targets:
            return False
        node_id = targets[self._target % len(targets)]
        self.attempts += 1
        try:
            status, body = self.cluster.post(node_id, "/raft/work", {
                "work_id": work_id, "work_type": "demo", "request_id": work_id}, timeout=2.0)
        except (urllib.error.URLError, OSError, http.client.HTTPException):
            return False
        return status == 200 or (isinstance(body, dict) and body.get("error") == "already_exists")


def lost_writes(cluster: OwnedCluster, node_id: str, acked: list[str], timeout: float = 20.0) -> tuple[int, int]:
    """(lost, unknown): acknowledged work ids that ``node_id`` (consistent reads) does not hold,
    and those it could not answer for within ``timeout``."""
    deadline = time.monotonic() + timeout
    lost = unknown = 0
    for work_id in acked:
        while True:
            code = _get_code(cluster, node_id, f"/raft/work/{work_id}?consistent=true")
            if code in (200, 404) or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        lost += code == 404
        unknown += code not in (200, 404)
    return lost, unknown


def _get_code(cluster: OwnedCluster, node_id: str, path: str) -> int | None:
    try:
        with urllib.request.urlopen(cluster.nodes[node_id].url + path, timeout=2.0) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except (urllib.error.URLError, OSError, http.client.HTTPException):
        return None


def membership_messages(status: dict[str, Any] | None) -> int | None:
    """Membership messages this node has sent: SWIM datagrams, or heartbeat requests plus the
    responses it gave to its peers' heartbeats."""
    described = (status or {}).get("membership") or {}
    if isinstance(described.get("messages_sent"), int):
        return int(described["messages_sent"])
    sent, answered = described.get("heartbeats_sent"), described.get("heartbeats_received")
    if isinstance(sent, int) and isinstance(answered, int):
        return sent + answered
    return None
