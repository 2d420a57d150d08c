"""SWIM backend: 3-node clusters over UDP and TCP, a second process on a used port, bad seeds."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest
import yaml


from ringrift_cluster.testing.swim_clusters import SwimCluster, free_swim_ports, wait_for

from ringrift_cluster.config import load_config
from ringrift_cluster.errors import BackendUnavailable
from ringrift_cluster.membership.base import Membership
from ringrift_cluster.membership.swim import SwimMembership, failure_bound_s
from ringrift_cluster.testing import stays_true

pytestmark = pytest.mark.integration


def _bound(cluster: SwimCluster) -> float:
    return failure_bound_s(load_config(cluster.config_path, env={}, overrides={"node_id": cluster.ids[0]}).swim)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_three_nodes_converge_detect_a_kill_and_a_leave(tmp_path: Path, transport: str) -> None:
    cluster = SwimCluster(tmp_path, 3, swim={"transport": transport})
    cluster.start()
    try:
        wait_for(lambda: cluster.sees_all_alive(cluster.ids, cluster.ids), 20, "3 nodes converge", cluster.summary)
        for observer in cluster.ids:
            assert set(cluster.members(observer)) == set(cluster.ids) - {observer}
            assert cluster.status(observer)["config"]["transport"] == transport
        bound = _bound(cluster)
        t_kill = time.monotonic()
        cluster.signal("n03", signal.SIGKILL)
        wait_for(lambda: all(cluster.view(n).get("n03") == "failed" for n in ("n01", "n02")), bound + 5,
                 "n03 failed on both survivors", cluster.summary)
        latest = max(e["mono"] for n in ("n01", "n02") for e in cluster.events(n)
                     if e["node_id"] == "n03" and e["kind"] == "failed")
        assert latest - t_kill <= bound
        cluster.stop("n02", graceful=True)
        wait_for(lambda: cluster.view("n01").get("n02") == "left", 5, "n02 left on n01", cluster.summary)
        assert "failed" not in [e["kind"] for e in cluster.events("n01") if e["node_id"] == "n02"]
        assert cluster.view("n01").get("n03") == "failed"
    finally:
        cluster.close()


def test_second_process_on_a_used_port_fails_fast_without_disturbing(tmp_path: Path) -> None:
    cluster = SwimCluster(tmp_path, 2)
    cluster.start()
    try:
        wait_for(lambda: cluster.sees_all_alive(cluster.ids, cluster.ids), 20, "2 nodes converge", cluster.summary)
        events_before = cluster.events("n02")
        first = cluster.nodes["n01"]
        started = time.monotonic()
        duplicate = cluster.spawn("n01")  # same config, same node id, same ports
        duplicate.proc.wait(20)
        took = time.monotonic() - started
        assert duplicate.proc.returncode == 3
        port = cluster.swim_ports["n01"]
        assert duplicate.error is not None and f"SWIM port {port} on 127.0.0.1 is in use" in duplicate.error
        assert took < 10  # process start included; the bind itself fails at once
        cluster.nodes["n01"] = first
        stays_true(lambda: cluster.events("n02") == events_before, 1.0, what="no disturbance from the duplicate")
        assert cluster.view("n02") == {"n01": "alive"} and cluster.view("n01") == {"n02": "alive"}
        assert cluster.status("n02")["raw_flaps"] == 0
    finally:
        cluster.close()


def _write(path: Path, hosts: dict[str, dict[str, object]]) -> Path:
    path.write_text(yaml.safe_dump({"hosts": hosts, "ringrift_cluster": {"preset": "local", "membership_mode": "swim"}}))
    return path


async def test_in_process_start_stop_bad_seed_and_port_in_use(tmp_path: Path) -> None:
    api, swim_port, raft, api2, swim2, raft2 = free_swim_ports(6)
    path = _write(tmp_path / "cluster.yaml", {
        "me": {"p2p_host": "127.0.0.1", "p2p_port": api, "swim_port": swim_port, "raft_port": raft},
        "ghost": {"p2p_host": "no-such-host.invalid", "p2p_port": api2, "swim_port": swim2, "raft_port": raft2},
    })
    config = load_config(path, env={}, overrides={"node_id": "me"})
    membership = SwimMembership(config)
    assert isinstance(membership, Membership) and membership.name == "swim"
    loop = asyncio.get_running_loop()
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    ticking = asyncio.create_task(ticker())
    await membership.start()
    try:
        assert membership.ready
        d = membership.describe()
        assert d["swim_started"] and d["members"] == [] and d["last_error"] is None
        assert any("no-such-host.invalid" in e and "hosts.ghost" in e for e in d["seed_errors"])
        # A second backend on the same port: a clear error, and the first one keeps running.
        with pytest.raises(BackendUnavailable, match=f"SWIM port {swim_port} on 127.0.0.1 is in use"):
            await SwimMembership(config).start()
        assert membership.describe()["engine_running"]
    finally:
        await membership.stop()
    ticking.cancel()
    # The caller's loop kept running throughout start and stop: no gap between two ticks (10 ms
    # apart when nothing blocks) comes near a blocking start (DNS of the bad seed, a bind retry).
    gap = max(b - a for a, b in zip(ticks, ticks[1:]))
    assert len(ticks) > 5 and gap < 0.5, f"the loop stalled for {gap:.3f}s during start/stop"
    assert not membership.ready and loop.is_running()
    # Stopped: the port is free again.
    again = SwimMembership(config)
    await again.start()
    await again.stop(graceful=False)
