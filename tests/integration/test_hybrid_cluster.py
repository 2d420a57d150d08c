"""Hybrid membership on real processes: SWIM and heartbeats on one failure timeline."""

from __future__ import annotations

import socket
import urllib.request

import pytest

from ringrift_cluster.testing import LocalCluster, wait_until

pytestmark = pytest.mark.integration
START_S = 30.0
HYBRID = {"membership_mode": "hybrid"}


def states(cluster: LocalCluster, observer: str) -> dict[str, str]:
    return {p: v["state"] for p, v in (cluster.status(observer) or {}).get("peers", {}).items()}


def metrics_text(cluster: LocalCluster, node_id: str) -> str:
    with urllib.request.urlopen(cluster.nodes[node_id].url + "/metrics", timeout=2) as response:
        return response.read().decode()


def failed_events(cluster: LocalCluster, node_id: str) -> float:
    for line in metrics_text(cluster, node_id).splitlines():
        if line.startswith('ringrift_membership_events_total{kind="failed",source="hybrid"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_swim_port_blocked_on_one_node_and_a_death_seen_by_both_sources(make_cluster) -> None:
    cluster = make_cluster(4, settings=HYBRID)
    blocked = cluster.nodes["node-2"]
    # Something else holds node-2's SWIM port (UDP and TCP): its SWIM cannot start.
    squatters = []
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        s.bind(("127.0.0.1", blocked.swim_port))
        squatters.append(s)
    try:
        cluster.start_all()
        cluster.wait_converged(START_S)
        swim = cluster.get("node-2", "/swim/status")
        assert swim["swim_started"] is False and swim["swim_enabled"] is True
        sources = cluster.status("node-2")["membership"]["sources"]
        assert sources["swim"]["active"] is False and sources["heartbeat"]["active"] is True
        assert states(cluster, "node-1")["node-2"] == "alive"  # heard over HTTP only

        # The cluster converges on heartbeats alone; SWIM must know node-4 alive too before it
        # dies, or it has no death of node-4 to report (a member never seen alive is not failed).
        wait_until(lambda: all({m["id"]: m["state"] for m in (cluster.get(n, "/swim/members") or {}).get("members", [])}
                               .get("node-4") == "alive" for n in ("node-1", "node-3")), 20,
                   what="node-4 alive in SWIM on node-1 and node-3",
                   describe=lambda: {n: (cluster.get(n, "/swim/members") or {}).get("members") for n in ("node-1", "node-3")})
        cluster.kill("node-4")
        survivors = ["node-1", "node-2", "node-3"]
        wait_until(lambda: all(states(cluster, n).get("node-4") == "failed" for n in survivors), 20,
                   what="node-4 failed everywhere", describe=lambda: {n: states(cluster, n) for n in survivors})
        # node-4's death: the list may also hold node-2, dead to SWIM only (its port is taken).
        def death_of_node_4(c: dict | None) -> dict | None:
            return next((d for d in (c or {}).get("deaths") or [] if d["node_id"] == "node-4"), None)

        compare = wait_until(lambda: (c := cluster.get("node-1", "/swim/compare"))
                             and len((death_of_node_4(c) or {}).get("sources") or {}) == 2 and c, 20,
                             what="both sources noticed node-4's death",
                             describe=lambda: cluster.get("node-1", "/swim/compare"))
        death = death_of_node_4(compare)
        assert death["node_id"] == "node-4" and death["declared_failed_at"] is not None
        assert set(death["sources"]) == {"swim", "heartbeat"}
        assert failed_events(cluster, "node-1") == 1  # reported once, not once per source
        text = metrics_text(cluster, "node-1")
        assert 'ringrift_membership_detection_seconds_count{source="hybrid"} 1.0' in text
        sent = [line for line in text.splitlines() if line.startswith('ringrift_swim_messages_total{direction="sent"}')]
        assert sent and float(sent[0].rsplit(" ", 1)[1]) > 0
        assert all(states(cluster, n).get(o) == "alive" for n in survivors for o in survivors if o != n)
    finally:
        for s in squatters:
            s.close()
