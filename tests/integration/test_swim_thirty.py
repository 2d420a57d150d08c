"""Thirty real nodes in SWIM mode converge: everyone sees everyone alive, by node id, with the
metadata from the cluster file (never an address as an id)."""

from __future__ import annotations

import pytest

from ringrift_cluster.testing import wait_until

pytestmark = pytest.mark.integration
N = 30


def test_thirty_nodes_converge_with_node_ids_and_metadata(make_cluster) -> None:
    # Three voters keep the (legacy) election light; membership is what is under test.
    cluster = make_cluster(N, settings={"membership_mode": "swim"}, voters=["node-01", "node-02", "node-03"])
    cluster.start_all()
    ids = set(cluster.nodes)

    def swim_views() -> dict[str, set[str]]:
        views = {}
        for node_id in cluster.nodes:
            members = (cluster.get(node_id, "/swim/members", timeout=3) or {}).get("members", [])
            views[node_id] = {m["id"] for m in members if m["state"] == "alive"}
        return views

    wait_until(lambda: all(alive == ids - {n} for n, alive in swim_views().items()), 120, interval=1.0,
               what=f"{N} nodes see each other alive over SWIM",
               describe=lambda: {n: len(alive) for n, alive in swim_views().items()})
    for node_id in ("node-01", "node-15", "node-30"):
        status = cluster.status(node_id, timeout=3)
        peers = status["peers"]
        assert set(peers) == ids - {node_id} and all(":" not in p for p in peers)
        assert all(p["is_alive"] and p["role"] == "worker" for p in peers.values())
        members = cluster.get(node_id, "/swim/members", timeout=3)["members"]
        assert all(m["id"] in ids and m["address"].startswith("127.0.0.1:") for m in members)
