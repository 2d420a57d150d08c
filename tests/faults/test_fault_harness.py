"""The harness itself: hosts are really separate, faults are real silent drops, cleanup is total."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from ringrift_cluster.testing import wait_until
from ringrift_cluster.testing.netns import REGISTRY, NetnsCluster, NetnsNetwork, sweep_stale

PROBE = r"""
import json, socket, sys, time
mode, host, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "udp-recv":
    import select
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 9999))
    print("ready", flush=True); got = 0; done = False
    while True:  # count until stdin closes (the sender is done) and the socket stays quiet 0.2 s
        ready = select.select([s] + ([] if done else [sys.stdin]), [], [], 0.2)[0]
        if s in ready:
            s.recv(64); got += 1
        elif sys.stdin in ready:
            done = not sys.stdin.read(1)
        elif done:
            break
    print(json.dumps({"received": got}))
elif mode == "udp-send":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); errors = 0; gap = 0.001
    for _ in range(count):
        try:
            s.sendto(b"x", (host, 9999))
        except OSError:
            errors += 1
        time.sleep(gap)
    print(json.dumps({"send_errors": errors}))
elif mode == "tcp-connect":
    s = socket.socket(); s.settimeout(1.5); started = time.monotonic()
    try:
        s.connect((host, 9)); outcome = "connected"
    except socket.timeout:
        outcome = "timeout"
    except ConnectionRefusedError:
        outcome = "refused"
    print(json.dumps({"outcome": outcome, "after_s": round(time.monotonic() - started, 2)}))
"""


def in_ns(network: NetnsNetwork, host: str, *args: str) -> list[str]:
    return network.exec_command(host, [sys.executable, "-c", PROBE, *args])


def udp_delivered(network: NetnsNetwork, src: str, dst: str, count: int = 300) -> tuple[int, int]:
    """Send ``count`` UDP datagrams from src to dst: (received at dst, send errors at src)."""
    receiver = subprocess.Popen(in_ns(network, dst, "udp-recv", "-", "0"), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
    try:
        assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
        sender = subprocess.run(in_ns(network, src, "udp-send", network.addresses[dst], str(count)),
                                capture_output=True, text=True, timeout=30, check=True)
        received = json.loads(receiver.communicate(timeout=30)[0])["received"]
    finally:
        receiver.kill()
        receiver.wait()
    return received, json.loads(sender.stdout)["send_errors"]


def tcp_connect(network: NetnsNetwork, src: str, dst: str) -> str:
    result = subprocess.run(in_ns(network, src, "tcp-connect", network.addresses[dst], "0"),
                            capture_output=True, text=True, timeout=30, check=True)
    return json.loads(result.stdout)["outcome"]


@pytest.fixture
def network(make_netns_cluster) -> NetnsNetwork:
    return make_netns_cluster(3).network


def test_each_host_has_its_own_address_and_the_observer_reaches_all(make_netns_cluster) -> None:
    cluster = make_netns_cluster(3)
    net = cluster.network
    assert len(set(net.addresses.values())) == 3 and net.gateway not in net.addresses.values()
    assert all(n.url == f"http://{net.addresses[i]}:8770" for i, n in cluster.nodes.items())
    cluster.start_all()
    cluster.wait_converged(30)
    assert cluster.wait_for_leader(30) in cluster.nodes
    status = cluster.status("node-1")
    assert status["peers"]["node-2"]["host"] == net.addresses["node-2"]  # real per-host addresses
    assert status["node_id"] == "node-1" and net.tag in cluster.nodes["node-1"].namespace


def test_a_one_way_drop_loses_one_direction_silently(network: NetnsNetwork) -> None:
    assert udp_delivered(network, "node-1", "node-2") == (300, 0)
    assert tcp_connect(network, "node-1", "node-2") == "refused"  # nobody listens on port 9: RST
    network.drop("node-1", "node-2")
    assert udp_delivered(network, "node-1", "node-2") == (0, 0)  # lost, and no error at the sender
    assert udp_delivered(network, "node-2", "node-1") == (300, 0)  # the other way still flows
    assert udp_delivered(network, "node-1", "node-3")[0] == 300
    assert tcp_connect(network, "node-1", "node-2") == "timeout"  # no RST, no ICMP: silence
    network.heal()
    assert udp_delivered(network, "node-1", "node-2") == (300, 0)


def test_partition_isolate_and_heal(network: NetnsNetwork) -> None:
    network.partition([["node-1"], ["node-2", "node-3"]])
    assert udp_delivered(network, "node-1", "node-2")[0] == 0
    assert udp_delivered(network, "node-3", "node-1")[0] == 0
    assert udp_delivered(network, "node-2", "node-3")[0] == 300
    network.heal()
    network.isolate("node-3")
    assert udp_delivered(network, "node-1", "node-3")[0] == 0
    assert udp_delivered(network, "node-3", "node-2")[0] == 0
    assert udp_delivered(network, "node-1", "node-2")[0] == 300
    network.heal()
    assert network.faults() == {"blocked": [], "loss": {}}
    assert "rrfault" not in network.rules("node-3")


def test_loss_drops_about_the_given_share(network: NetnsNetwork) -> None:
    network.loss_all(30)
    received, errors = udp_delivered(network, "node-1", "node-2", count=1000)
    assert errors == 0 and 600 <= received <= 800, received  # 30 % of each directed path, once
    network.heal()
    network.loss("node-3", 100, direction="in")
    assert udp_delivered(network, "node-1", "node-3")[0] == 0
    assert udp_delivered(network, "node-3", "node-1")[0] == 300


def test_shutdown_removes_everything_and_the_sweep_spares_live_runs(make_netns_cluster) -> None:
    live = make_netns_cluster(2)
    live.start_all()
    wait_until(lambda: live.status("node-1"), 30, what="node-1 up")

    # Another run (its own sweep spares ours) dies by SIGKILL and leaves namespaces and links behind.
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom ringrift_cluster.testing.netns import NetnsNetwork\n"
         "n = NetnsNetwork(['a', 'b']).create()\nprint(n.tag, flush=True)\nsys.stdin.read()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ})
    assert child.stdout is not None
    stale_tag = child.stdout.readline().strip()
    child.send_signal(signal.SIGKILL)
    child.wait()
    leftovers = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"{stale_tag}-a" in leftovers and (REGISTRY / f"{stale_tag}.json").exists()
    assert live.status("node-1") is not None

    removed = sweep_stale()
    assert f"netns {stale_tag}-a" in removed and f"link {stale_tag}br" in removed
    assert not any(live.network.tag in r for r in removed)
    leftovers = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert stale_tag not in leftovers and live.status("node-1") is not None

    pids = [n.proc.pid for n in live.nodes.values()]
    live.shutdown()
    assert wait_until(lambda: not live.network.resources(), 10, what="nothing left",
                      describe=live.network.resources) is True
    assert not any(os.path.exists(f"/proc/{pid}") for pid in pids)
    with pytest.raises(RuntimeError):
        live.start("node-1")


def test_process_faults_pause_kill_restart(make_netns_cluster) -> None:
    cluster: NetnsCluster = make_netns_cluster(3)
    cluster.start_all()
    cluster.wait_converged(30)
    cluster.pause("node-1")
    wait_until(lambda: cluster.status("node-1", timeout=0.3) is None, 10, what="paused node silent")
    cluster.resume("node-1")
    wait_until(lambda: cluster.status("node-1"), 10, what="resumed node answers")
    before = cluster.nodes["node-2"].proc.pid
    cluster.restart("node-2")
    assert cluster.nodes["node-2"].proc.pid != before
    cluster.kill_many(["node-1", "node-3"])
    assert cluster.running() == ["node-2"]
    cluster.start("node-1")
    cluster.start("node-3")
    cluster.wait_converged(30)
    started = time.monotonic()
    assert cluster.stop("node-3") == 0 and time.monotonic() - started < 15
