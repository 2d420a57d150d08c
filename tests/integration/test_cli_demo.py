"""The CLI as a person uses it: the demo with a failover, and a lone node with no config."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from ringrift_cluster.testing import LocalCluster, free_base_port, wait_until

pytestmark = pytest.mark.integration


def test_demo_shows_nodes_a_leader_and_a_failover(tmp_path) -> None:
    base = free_base_port(9)
    result = subprocess.run(
        [sys.executable, "-m", "ringrift_cluster", "demo", "--nodes", "3", "--base-port", str(base),
         "--kill-leader-after", "4", "--duration", "20", "--data-dir", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=120,
    )
    out = result.stdout
    assert result.returncode == 0, result.stderr
    for i in range(3):
        assert f"node-{i + 1}  http://127.0.0.1:{base + i}" in out
    assert "SIGKILL leader node-3" in out, out
    match = re.search(r"new leader (node-\d), ([\d.]+)s after the kill", out)
    assert match and match.group(1) in ("node-1", "node-2"), out
    assert (tmp_path / "demo" / "cluster.yaml").exists() and (tmp_path / "demo" / "node-1" / "node.log").exists()
    pids = [int(p) for p in re.findall(r"pid (\d+)", out)]
    assert len(pids) == 3
    for pid in pids:  # every node was stopped
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_lone_node_without_config_leads_itself(tmp_path) -> None:
    port = free_base_port(1)
    cluster = LocalCluster(1, tmp_path)  # used only for its HTTP helpers
    cluster.nodes["node-1"].api_port = port
    proc = subprocess.Popen([sys.executable, "-m", "ringrift_cluster", "run", "--port", str(port),
                             "--data-dir", str(tmp_path / "lone")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        status = wait_until(lambda: (s := cluster.status("node-1")) and s.get("leader_id") and s, 30, what="lone leader")
        assert status["node_id"] == "local-node" and status["leader_id"] == "local-node" and status["role"] == "leader"
        assert status["quorum"]["total_voters"] == 1
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0
