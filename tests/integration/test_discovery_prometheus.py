"""Discovery against a real Prometheus server and a real 5-node cluster, in every membership mode:
Prometheus reads node-1's file_sd file and the /sd/targets of node-2 and node-3; it scrapes the
5 nodes; a SIGKILLed node leaves its active targets within detection plus Prometheus's refresh;
it comes back after a restart; a truncated targets file is repaired by the validator."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest


from prometheus_driver import Prometheus

from ringrift_cluster.config import load_config
from ringrift_cluster.discovery import read_targets
from ringrift_cluster.membership.swim import failure_bound_s
from ringrift_cluster.testing import wait_until

pytestmark = pytest.mark.integration

JOBS = ("ringrift-file", "ringrift-http")
# Prometheus's own delay after discovery changes: the 1 s refresh configured here, its discovery
# manager's 5 s update throttle, and a scrape interval; plus slack for two busy cores.
PROMETHEUS_S = 1 + 5 + 1 + 5


def _detection_bound_s(config_path: Path, mode: str) -> float:
    config = load_config(config_path, env={}, overrides={"node_id": "node-1"})
    hb = config.heartbeat
    heartbeat = hb.peer_timeout_s * (1 + hb.jitter_fraction) + hb.interval_s + hb.request_timeout_s
    return {"swim": failure_bound_s(config.swim), "http": heartbeat,  # hybrid: at worst the slower one
            "hybrid": max(failure_bound_s(config.swim), heartbeat)}[mode]


@pytest.mark.parametrize("mode", ["swim", "http", "hybrid"])
def test_prometheus_follows_the_cluster(make_cluster, tmp_path: Path, mode: str) -> None:
    cluster = make_cluster(5, settings={"membership_mode": mode, "discovery": {
        "file_path": "sd/targets.json", "validate_interval_s": 1.0}})
    cluster.start_all()
    ids = list(cluster.nodes)
    victim = ids[-1]
    sd_file = cluster.nodes[ids[0]].data_dir / "sd" / "targets.json"
    prometheus = Prometheus(tmp_path / "prometheus", [
        {"job_name": "ringrift-file", "file_sd_configs": [{"files": [str(sd_file)], "refresh_interval": "1s"}]},
        # Two nodes' /sd/targets: Prometheus merges their identical targets into one each.
        {"job_name": "ringrift-http", "http_sd_configs": [
            {"url": f"{cluster.nodes[n].url}/sd/targets", "refresh_interval": "1s"} for n in ids[1:3]]},
    ])
    try:
        cluster.wait_converged(40)
        prometheus.start()

        def all_up(expected: list[str]):  # type: ignore[no-untyped-def]
            jobs = prometheus.by_job()
            return all(jobs.get(job) == {n: "up/healthy" for n in expected} for job in JOBS)

        wait_until(lambda: all_up(ids), 60, what="Prometheus scrapes the 5 nodes, up, from both discoveries",
                   describe=prometheus.by_job)

        t_kill = time.monotonic()
        cluster.kill(victim)
        # Membership's detection is its own (bounded in its tests; slower on a loaded machine):
        # from the moment every discovery source has dropped the victim, Prometheus has
        # PROMETHEUS_S to follow.
        def sources() -> dict[str, list[str]]:
            served = {n: sorted(g["labels"]["node_id"] for g in cluster.get(n, "/sd/targets") or []) for n in ids[1:3]}
            return {"file": sorted(read_targets(sd_file)), **served}

        wait_until(lambda: all(l and victim not in l for l in sources().values()), 60, interval=0.05,
                   what=f"{victim} leaves the file and both /sd/targets", describe=sources)
        dropped = time.monotonic() - t_kill
        wait_until(lambda: all(victim not in prometheus.by_job().get(job, {}) for job in JOBS), PROMETHEUS_S,
                   interval=0.05, what=f"{victim} leaves Prometheus's active targets", describe=prometheus.by_job)
        took = time.monotonic() - t_kill
        print(f"\n[{mode}] kill -> out of discovery {dropped:.2f} s (membership bound "
              f"{_detection_bound_s(cluster.config_path, mode):.1f} s), out of Prometheus {took:.2f} s")
        assert set(read_targets(sd_file)) == set(ids) - {victim}

        cluster.start(victim)
        wait_until(lambda: all_up(ids), 60, what=f"{victim} back in Prometheus, up", describe=prometheus.by_job)

        text = sd_file.read_text()
        sd_file.write_text(text[: len(text) // 3])  # a hand truncation: not JSON any more
        wait_until(lambda: set(read_targets(sd_file)) == set(ids), 15, interval=0.05,
                   what="the validator repairs the truncated file", describe=lambda: sd_file.read_text()[:200])
        status = cluster.get(ids[0], "/sd/status")
        assert status is not None and status["reconciliations"] >= 1
        wait_until(lambda: all_up(ids), 15, what="all 5 still up in Prometheus", describe=prometheus.by_job)
        metrics = _metrics(cluster.nodes[ids[0]].url)
        assert 'ringrift_discovery_targets{health="healthy"} 5.0' in metrics
        assert "ringrift_discovery_reconciliations_total" in metrics
    finally:
        prometheus.stop()
        if prometheus.proc is not None and prometheus.proc.returncode not in (0, -signal.SIGTERM):
            print(prometheus.log_tail())


def _metrics(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url + "/metrics", timeout=2) as response:
        return response.read().decode()
