"""The CLI as a person uses it: the demo (its modes, a failover, a write with its token, the
comparison with the legacy system), and a lone node with no config."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from ringrift_cluster.discovery.prometheus import read_targets
from ringrift_cluster.discovery.base import DiscoveryError
from ringrift_cluster.testing import LocalCluster, free_base_port, wait_until


from demo_driver import Demo, alive

pytestmark = pytest.mark.integration


def _targets(path: Path) -> dict:
    """node id -> target in a file_sd file; empty while it is not there (yet)."""
    try:
        return read_targets(path)
    except DiscoveryError:
        return {}


def test_demo_shows_nodes_a_leader_and_a_failover(tmp_path) -> None:
    base = free_base_port(9)
    result = subprocess.run(
        [sys.executable, "-m", "ringrift_cluster", "demo", "--nodes", "3", "--base-port", str(base),
         "--kill-leader-after", "4", "--duration", "20", "--data-dir", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=120,
    )
    out = result.stdout
    assert result.returncode == 0, result.stderr
    assert out.startswith("ringrift-cluster demo: 3 nodes, membership swim, consensus raft"), out
    for i in range(3):
        assert f"node-{i + 1}  http://127.0.0.1:{base + i}" in out
    killed = re.search(r"SIGKILL leader (node-\d)", out)
    assert killed, out
    match = re.search(r"new leader (node-\d), ([\d.]+)s after the kill", out)
    assert match and match.group(1) != killed.group(1), out
    assert (tmp_path / "demo" / "cluster.yaml").exists() and (tmp_path / "demo" / "node-1" / "node.log").exists()
    pids = [int(p) for p in re.findall(r"pid (\d+)", out)]
    assert len(pids) == 3
    for pid in pids:  # every node was stopped
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_demo_legacy_modes_from_the_environment(tmp_path) -> None:
    env = {**os.environ, "RINGRIFT_MEMBERSHIP_MODE": "http", "RINGRIFT_CONSENSUS_MODE": "bully"}
    result = subprocess.run(
        [sys.executable, "-m", "ringrift_cluster", "demo", "--nodes", "1", "--base-port", str(free_base_port(3)),
         "--duration", "2", "--membership-mode", "HTTP"], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ringrift-cluster demo: 1 nodes, membership http, consensus bully (the legacy"), \
        result.stdout


def test_demo_takes_the_token_from_the_environment_and_shows_writes_and_locks(tmp_path) -> None:
    env = {**os.environ, "RINGRIFT_CLUSTER_AUTH_TOKEN": "secret-from-env"}
    base = free_base_port(9)
    demo = Demo(["--nodes", "3", "--base-port", str(base), "--duration", "120", "--data-dir", str(tmp_path / "demo"),
                 "--sd-file", str(tmp_path / "sd" / "targets.json")], tmp_path, env=env)
    try:
        nodes = demo.wait_nodes_up(3)
        demo.wait_for(lambda: sorted(_targets(tmp_path / "sd" / "targets.json")) == ["node-1", "node-2", "node-3"],
                      30, "every demo node in the --sd-file targets file")
        assert "secret-from-env" not in demo.text, demo.describe()  # a token it did not make, it never prints
        curl = re.search(r"try a write:  (curl .*)", demo.text)
        assert curl and "$RINGRIFT_CLUSTER_AUTH_TOKEN" in curl.group(1), demo.describe()
        pasted = subprocess.run(["sh", "-c", curl.group(1)], capture_output=True, text=True, timeout=30, env=env)
        assert '"ok": true' in pasted.stdout.replace('"ok":true', '"ok": true'), pasted
        cluster = LocalCluster(3, tmp_path / "client", base_port=base, auth_token="secret-from-env")
        status, body = cluster.post("node-1", "/raft/lock/train", {"holder": "gpu-1", "ttl_s": 300})
        assert status == 200, body
        demo.wait_for(lambda: re.search(r"work: pending 1 .*locks: train \(gpu-1, fence \d+\)", demo.text), 30,
                      "the work item and the lock on the demo's output")
        demo.proc.send_signal(signal.SIGTERM)
        assert demo.proc.wait(timeout=30) == 0, demo.describe()
        wait_until(lambda: not any(alive(pid) for _, pid in nodes.values()), 10, what="nodes stopped")
    finally:
        demo.close()


def test_a_generated_token_is_printed_with_a_curl_that_works(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RINGRIFT_CLUSTER_AUTH_TOKEN")}
    demo = Demo(["--nodes", "1", "--base-port", str(free_base_port(3)), "--duration", "120"], tmp_path, env=env)
    try:
        demo.wait_nodes_up(1)
        token = re.search(r"auth token \(generated\): ([0-9a-f]{32})", demo.text)
        curl = re.search(r"try a write:  (curl .*)", demo.text)
        assert token and curl and token.group(1) in curl.group(1), demo.describe()
        pasted = subprocess.run(["sh", "-c", curl.group(1)], capture_output=True, text=True, timeout=30, env=env)
        assert '"status": "pending"' in pasted.stdout.replace('"status":"pending"', '"status": "pending"'), pasted
        # The CLI line works pasted as printed (W1 exists now: the same line with W2).
        line = re.search(r"or the CLI:   (.*)", demo.text)
        assert line and token.group(1) in line.group(1), demo.describe()
        path = {**env, "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}"}
        pasted = subprocess.run(["sh", "-c", line.group(1).replace("W1", "W2")], capture_output=True, text=True,
                                timeout=30, env=path)
        assert pasted.returncode == 0 and "added W2 (pending)" in pasted.stdout, pasted
        page = re.search(r"status page:  (http://\S+/ui)", demo.text)
        assert page, demo.describe()
        with urllib.request.urlopen(page.group(1), timeout=5) as response:
            assert response.status == 200 and b"/ui/status.js" in response.read()
    finally:
        demo.close()


def test_compare_runs_to_its_table(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ringrift_cluster", "demo", "--compare", "--nodes", "3",
         "--base-port", str(free_base_port(18)), "--kill-leader-after", "4", "--duration", "90"],
        capture_output=True, text=True, timeout=180)
    seen = f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, seen
    assert re.search(r"^ +legacy \(http\+bully\) +swim\+raft", result.stdout, re.M), seen
    rows = {}
    for line in result.stdout.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) == 3:
            rows[cells[0]] = cells[1:]
    assert all(re.fullmatch(r"[\d.]+ s", v) for v in rows["detection (every survivor)"]), seen
    assert all(re.fullmatch(r"[\d.]+ s", v) for v in rows["failover (new leader agreed)"]), seen
    legacy_lost, raft_lost = rows["acknowledged writes lost"]
    assert re.fullmatch(r"\d+ of [1-9]\d*", legacy_lost), seen
    assert re.fullmatch(r"0 of [1-9]\d*", raft_lost), seen  # Raft loses no acknowledged write
    assert all(float(v) > 0 for v in rows["membership msgs/node/s"]), seen


def test_lone_node_without_config_leads_itself(tmp_path) -> None:
    port = free_base_port(1)
    cluster = LocalCluster(1, tmp_path)  # used only for its HTTP helpers
    cluster.nodes["node-1"].api_port = port
    proc = subprocess.Popen([sys.executable, "-m", "ringrift_cluster", "run", "--port", str(port),
                             "--data-dir", str(tmp_path / "lone"), "--sd-file", "targets.json"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        status = wait_until(lambda: (s := cluster.status("node-1")) and s.get("leader_id") and s, 30, what="lone leader")
        assert status["node_id"] == "local-node" and status["leader_id"] == "local-node" and status["role"] == "leader"
        assert status["quorum"]["total_voters"] == 1
        # --sd-file: relative to where it was typed, not to the data dir
        target = wait_until(lambda: _targets(tmp_path / "targets.json").get("local-node"), 30,
                            what="the lone node in its --sd-file targets file",
                            describe=lambda: sorted(p.name for p in tmp_path.iterdir()))
        assert target.endpoint == f"127.0.0.1:{port}", target
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0
