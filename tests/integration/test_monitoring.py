"""The Grafana dashboard and the Prometheus alert rules in config/, against the real tools.

``promtool`` checks and unit-tests the rules; a real Prometheus (Debian's ``prometheus``) scrapes
a real 3-node SWIM + Raft cluster with the rules loaded: every metric the dashboard and the rules
name is in a live node's ``/metrics``, every dashboard query evaluates (and returns data), and
killing a node puts the node-down and quorum alerts in motion.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from ringrift_cluster.testing import LocalCluster, free_base_port, wait_until

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "config" / "prometheus" / "ringrift-cluster-alerts.yml"
RULE_TESTS = ROOT / "config" / "prometheus" / "ringrift-cluster-alerts.test.yml"
SAMPLE_CONFIG = ROOT / "config" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "config" / "grafana" / "ringrift-cluster.json"
TOKEN = "monitoring-test-token"
METRIC = re.compile(r"\bringrift_[a-z0-9_]+\b")
# Dashboard queries allowed to be empty on a healthy cluster: they show failures that did not happen.
EMPTY_WHEN_HEALTHY = ('outcome=~"no_leader|timeout"',)


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed: .ci/run installs it (apt-get install prometheus)"
    return path


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    return [t["expr"] for p in panels for t in p["targets"]]


def rule_queries() -> dict[str, str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {r["alert"]: r["expr"] for g in groups for r in g["rules"]}


def concrete(expr: str) -> str:
    """A dashboard query as Grafana would send it: variables filled in."""
    return expr.replace("$__rate_interval", "15s").replace('"$job"', '".+"').replace('"$instance"', '".+"')


def exported_names(text: str) -> set[str]:
    return {line.split("{", 1)[0].split(" ", 1)[0] for line in text.splitlines() if line and not line.startswith("#")}


def test_alert_rules_pass_promtool_check_and_unit_tests() -> None:
    promtool = tool("promtool")
    for args in (["check", "rules", str(RULES)], ["test", "rules", RULE_TESTS.name], ["check", "config", SAMPLE_CONFIG.name]):
        done = subprocess.run([promtool, *args], capture_output=True, text=True, cwd=RULES.parent, timeout=60)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    names = set(rule_queries())
    assert {"RingRiftNoLeader", "RingRiftQuorumDegraded", "RingRiftQuorumLost", "RingRiftLeaderFlapping",
            "RingRiftMemberFlapping", "RingRiftDetectionSlow", "RingRiftStateCommandsFailing"} <= names
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    assert tested == names, f"rules without a promtool test: {names - tested}"


def test_dashboard_is_grafana_json_covering_every_area() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "ringrift-cluster" and dashboard["schemaVersion"] >= 36
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for p in panels:
        assert p["targets"] and p["datasource"]["uid"] == "${datasource}", p["title"]
        assert all(t["expr"] and t["refId"] for t in p["targets"]), p["title"]
    queried = set(METRIC.findall(" ".join(dashboard_queries())))
    for needed in ("ringrift_is_leader", "ringrift_leader_term", "ringrift_p2p_leader_changes_total",
                   "ringrift_quorum_health_level", "ringrift_p2p_peer_count", "ringrift_membership_detection_seconds_bucket",
                   "ringrift_swim_messages_total", "ringrift_swim_bytes_total", "ringrift_state_commands_total",
                   "ringrift_state_commit_latency_seconds_bucket", "ringrift_work_items", "ringrift_locks_held"):
        assert needed in queried, needed


class Prometheus:
    """A real Prometheus server scraping ``targets`` every second, with the alert rules loaded."""

    def __init__(self, workdir: Path, targets: list[str]) -> None:
        self.port = free_base_port(1)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "prometheus.log"
        config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "900ms"},
                  "rule_files": [str(RULES)],
                  "scrape_configs": [{"job_name": "ringrift-cluster", "static_configs": [{"targets": targets}]}]}
        config_path = workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config))
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [tool("prometheus"), f"--config.file={config_path}", f"--storage.tsdb.path={workdir / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def api(self, path: str, **params: str) -> Any:
        query = "?" + urllib.parse.urlencode(params) if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=5) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", (expr, data)
        return data["result"]

    def log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])
        except OSError:
            return "(no log)"

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    c = LocalCluster(3, tmp_path / "cluster", auth_token=TOKEN,
                     settings={"membership_mode": "swim", "consensus_mode": "raft"})
    try:
        yield c
    finally:
        c.shutdown()


def cli(cluster: LocalCluster, *args: str) -> None:
    env = {**os.environ, "RINGRIFT_URL": cluster.nodes["node-1"].url, "RINGRIFT_CLUSTER_AUTH_TOKEN": TOKEN}
    done = subprocess.run([sys.executable, "-m", "ringrift_cluster", *args], capture_output=True, text=True,
                          env=env, timeout=60)
    assert done.returncode == 0, done


def test_a_real_prometheus_scrapes_a_real_cluster_with_the_dashboard_and_the_rules(cluster: LocalCluster,
                                                                                   tmp_path: Path) -> None:
    cluster.start_all()
    prometheus = Prometheus(tmp_path, [f"127.0.0.1:{n.api_port}" for n in cluster.nodes.values()])
    try:
        cluster.wait_for_leader(60)
        cluster.wait_converged(30)
        cli(cluster, "work", "add", "W1", "--type", "selfplay")
        cli(cluster, "work", "claim", "--node", "gpu-1")
        cli(cluster, "lock", "acquire", "train-lock", "--holder", "gpu-1", "--ttl", "300")
        leader = cluster.wait_for_leader(30)
        victim = next(n for n in sorted(cluster.nodes, reverse=True) if n != leader)
        observer = next(n for n in sorted(cluster.nodes) if n not in (victim,))
        wait_until(lambda: len(prometheus.query('up{job="ringrift-cluster"} == 1')) == 3, 60,
                   what="prometheus scrapes all three nodes", describe=prometheus.log_tail)
        cluster.kill(victim)

        # Every metric the dashboard and the rules name, in the live node's exposition.
        named = set(METRIC.findall(" ".join(dashboard_queries() + list(rule_queries().values()))))

        def missing() -> set[str]:
            with urllib.request.urlopen(cluster.nodes[observer].url + "/metrics", timeout=5) as response:
                return named - exported_names(response.read().decode())

        wait_until(lambda: not missing(), 60, what="every named metric exported", describe=missing)

        # The rules loaded and evaluate; the dashboard's queries evaluate with data.
        groups = prometheus.api("rules")["groups"]
        loaded = {r["name"]: r for g in groups for r in g["rules"]}
        assert set(loaded) == set(rule_queries()), loaded.keys()

        def unhealthy_or_empty() -> list[str]:
            problems = [f"rule {n}: {r['health']} {r.get('lastError', '')}" for n, r in
                        {r["name"]: r for g in prometheus.api("rules")["groups"] for r in g["rules"]}.items()
                        if r["health"] != "ok"]
            for expr in dashboard_queries():
                result = prometheus.query(concrete(expr))
                if not result and not any(marker in expr for marker in EMPTY_WHEN_HEALTHY):
                    problems.append(f"no data: {expr}")
            return problems

        wait_until(lambda: not unhealthy_or_empty(), 90, interval=1.0, what="rules healthy and every query with data",
                   describe=unhealthy_or_empty)

        # The death sets the alerts in motion (pending until their `for:` runs out).
        def alerts() -> dict[str, set[str]]:
            found: dict[str, set[str]] = {}
            for alert in prometheus.api("alerts")["alerts"]:
                found.setdefault(alert["labels"]["alertname"], set()).add(alert["state"])
            return found

        wait_until(lambda: {"RingRiftNodeDown", "RingRiftQuorumDegraded"} <= set(alerts()), 60,
                   what="node-down and quorum-degraded alerts pending", describe=alerts)
        assert "RingRiftNoLeader" not in alerts() and "RingRiftQuorumLost" not in alerts(), alerts()
    except BaseException:
        print(f"\n===== prometheus log =====\n{prometheus.log_tail()}\n===== node logs =====\n{cluster.logs(30)}")
        raise
    finally:
        prometheus.close()


def test_the_systemd_unit_verifies_and_its_environment_is_understood(tmp_path: Path) -> None:
    unit = (ROOT / "config" / "systemd" / "ringrift-cluster.service").read_text()
    binary = Path(sys.executable).parent / "ringrift-cluster"
    assert "ExecStart=/opt/ringrift-cluster/.venv/bin/ringrift-cluster run" in unit
    local = tmp_path / "ringrift-cluster.service"
    local.write_text(unit.replace("/opt/ringrift-cluster/.venv/bin/ringrift-cluster", str(binary)))
    done = subprocess.run([tool("systemd-analyze"), "verify", str(local)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (done.stdout, done.stderr)
    # The environment it sets is what `run` reads: check-config resolves it.
    env = dict(re.findall(r"^Environment=(\w+)=(.*)$", unit, re.M))
    assert set(env) == {"RINGRIFT_CONFIG", "RINGRIFT_CLUSTER_AUTH_TOKEN_FILE", "RINGRIFT_DATA_DIR", "RINGRIFT_LOG_FORMAT"}
    config = tmp_path / "cluster.yaml"
    config.write_text(yaml.safe_dump({"hosts": {"gpu-1": {"p2p_host": "127.0.0.1", "p2p_port": 8770}}}))
    (tmp_path / "token").write_text("secret\n")
    env.update(RINGRIFT_CONFIG=str(config), RINGRIFT_CLUSTER_AUTH_TOKEN_FILE=str(tmp_path / "token"),
               RINGRIFT_DATA_DIR=str(tmp_path / "data"), RINGRIFT_NODE_ID="gpu-1")
    done = subprocess.run([str(binary), "check-config"], capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ.get("PATH", ""), **env})
    assert done.returncode == 0, done
    resolved = json.loads(done.stdout)
    assert resolved["node_id"] == "gpu-1" and resolved["data_dir"] == str(tmp_path / "data")
