"""Retention bounds (``state.max_finished_work`` and the rest) on real node processes: the leader
puts the configured bounds into the replicated state, every replica keeps the same, finished
work past the bound is compacted, and a restart with other bounds changes them."""

from __future__ import annotations

import pytest

from ringrift_cluster.testing import LocalCluster, wait_until
from state_calls import START_S, ok

pytestmark = pytest.mark.integration


def digests(cluster: LocalCluster) -> dict[str, dict | None]:
    return {node_id: cluster.get(node_id, "/state/digest") for node_id in cluster.nodes}


def wait_for_limit(cluster: LocalCluster, holders: list[str], bound: int) -> None:
    """Every node that holds a copy has ``max_finished_work == bound``."""
    wait_until(lambda: all((d := cluster.get(n, "/state/digest")) and d["limits"]["max_finished_work"] == bound
                           for n in holders), 20, what=f"max_finished_work {bound} on {holders}",
               describe=lambda: digests(cluster))


def finish(cluster: LocalCluster, work_ids: list[str]) -> None:
    for work_id in work_ids:
        ok(cluster.post("node-1", "/raft/work", {"work_id": work_id, "work_type": "t"}))
        claim = ok(cluster.post("node-2", "/raft/work/claim", {"node_id": "gpu-1"}))
        assert claim["item"]["work_id"] == work_id, claim
        ok(cluster.post("node-3", f"/raft/work/{work_id}/complete", {"claim_token": claim["claim_token"]}))


@pytest.mark.parametrize("mode", ["raft", "bully"])
def test_configured_retention_reaches_every_replica_and_a_restart_changes_it(make_cluster, mode: str) -> None:
    cluster = make_cluster(3, settings={"consensus_mode": mode, "state": {"max_finished_work": 3}})
    cluster.start_all()
    cluster.wait_converged(START_S)
    leader = cluster.wait_for_leader(START_S)
    # Raft: every replica holds the state; bully: the leader alone.
    holders = list(cluster.nodes) if mode == "raft" else [leader]
    wait_for_limit(cluster, holders, 3)

    finish(cluster, [f"w{i}" for i in range(5)])
    stats = ok((200, cluster.get("node-1", "/raft/work?consistent=true")))["stats"]
    assert stats["total"] == 3 and stats["completed"] == 3, stats
    assert cluster.get("node-1", "/raft/work/w0?consistent=true") is None  # the oldest finished went
    assert cluster.get("node-1", "/raft/work/w4?consistent=true")["item"]["status"] == "completed"
    if mode == "raft":
        wait_until(lambda: len({(d or {}).get("digest") for d in digests(cluster).values()}) == 1, 20,
                   what="equal replicas", describe=lambda: digests(cluster))

    for node_id in cluster.nodes:
        assert cluster.stop(node_id) == 0
    cluster.settings["state"] = {"max_finished_work": 1}
    cluster.start_all()
    cluster.wait_converged(START_S)
    leader = cluster.wait_for_leader(START_S)
    wait_for_limit(cluster, list(cluster.nodes) if mode == "raft" else [leader], 1)
    # A bound applies at the next command: one more finished item leaves just that one.
    finish(cluster, ["after"])
    stats = cluster.get("node-1", "/raft/work?consistent=true")["stats"]
    assert stats["total"] == 1 and cluster.get("node-1", "/raft/work/after?consistent=true"), stats
