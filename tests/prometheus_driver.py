"""A real Prometheus server for tests: its own config, a temporary storage directory, a free
loopback port; started and stopped by the test that uses it."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from ringrift_cluster.testing import wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    """``prometheus`` scraping the jobs given, at a 1 s interval, with 1 s discovery refresh."""

    def __init__(self, root: Path, jobs: list[dict[str, Any]]) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("the prometheus binary is not installed (.ci/run installs Debian's prometheus)")
        self.binary = binary
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = root / "prometheus.yml"
        self.log_path = root / "prometheus.log"
        root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "scrape_configs": jobs,
        }, sort_keys=False))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> "Prometheus":
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [self.binary, f"--config.file={self.config_path}", f"--storage.tsdb.path={self.root / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=info"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            log.close()
        wait_until(self._ready, timeout, what="prometheus ready", describe=self.log_tail)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"prometheus exited with {self.proc.returncode}: {self.log_tail()}")
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def active_targets(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(self.url + "/api/v1/targets?state=active", timeout=2) as response:
            return json.loads(response.read())["data"]["activeTargets"]

    def by_job(self) -> dict[str, dict[str, str]]:
        """job -> node_id -> scrape health ("up", "down", "unknown") / discovery health; a node
        listed twice in one job shows both, joined by a comma."""
        out: dict[str, dict[str, str]] = {}
        for target in self.active_targets():
            labels = target["labels"]
            job = out.setdefault(labels["job"], {})
            seen = f"{target['health']}/{labels['health']}"
            job[labels["node_id"]] = f"{job[labels['node_id']]},{seen}" if labels["node_id"] in job else seen
        return out

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
