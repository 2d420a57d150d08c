"""The replicated-state HTTP API in legacy (bully) mode, on real node processes: any node takes
a call and it is applied by the leader, which journals it before acknowledging."""

from __future__ import annotations

import pytest

from ringrift_cluster.testing import LocalCluster, wait_until
from state_calls import START_S, ok

pytestmark = pytest.mark.integration


def started(make_cluster, n: int = 3) -> tuple[LocalCluster, str]:
    cluster = make_cluster(n)
    cluster.start_all()
    cluster.wait_converged(START_S)
    return cluster, cluster.wait_for_leader(START_S)


def test_work_and_locks_through_any_node(make_cluster) -> None:
    cluster, leader = started(make_cluster)
    follower = "node-1"
    ok(cluster.post(follower, "/raft/work", {"work_id": "w1", "work_type": "selfplay", "priority": 5}))
    ok(cluster.post(follower, "/raft/work", {"work_id": "w2", "work_type": "train", "priority": 9,
                                            "capabilities": ["gpu"]}))
    # Highest priority that the claimer's capabilities allow.
    claim = ok(cluster.post("node-2", "/raft/work/claim", {"node_id": "node-2", "capabilities": []}))
    assert claim["item"]["work_id"] == "w1"
    token = claim["claim_token"]
    status, stale = cluster.post(follower, "/raft/work/w1/complete", {"claim_token": token + 100})
    assert status == 409 and stale["error"] == "stale_token"
    ok(cluster.post(follower, "/raft/work/w1/complete", {"claim_token": token, "result": {"games": 10}}))
    status, body = cluster.post(follower, "/raft/work", {"work_id": "w1", "work_type": "selfplay"})
    assert status == 409 and body["error"] == "already_exists"

    stats = cluster.get("node-2", "/raft/work")
    assert stats["stats"]["completed"] == 1 and stats["stats"]["pending"] == 1
    assert stats["leader"] == leader and stats["backend"] == "journal"
    assert cluster.get(follower, "/raft/work/w1")["item"]["status"] == "completed"

    lock = ok(cluster.post(follower, "/raft/lock/train-main", {"holder": "node-1", "ttl_s": 60}))
    assert lock["acquired"] and lock["lock_name"] == "train-main" and 59 <= lock["expires_in_s"] <= 60
    status, held = cluster.post("node-2", "/raft/lock/train-main", {"holder": "node-2", "ttl_s": 60})
    assert status == 409 and held["acquired"] is False and held["error"] == "lock_held"
    renewed = ok(cluster.post(follower, "/raft/lock/train-main/renew",
                              {"holder": "node-1", "fence_token": lock["fence_token"], "ttl_s": 60}))
    assert renewed["fence_token"] == lock["fence_token"]
    status, body = cluster.post(follower, "/raft/lock/train-main", None, raw=b'{"holder": "node-2", "ttl_s": "x"}')
    assert status == 400 and "ttl_s" in body["message"]
    released = ok(_delete(cluster, follower, "/raft/lock/train-main",
                          {"holder": "node-1", "fence_token": lock["fence_token"]}))
    assert released["released"] is True
    again = ok(cluster.post("node-2", "/raft/lock/train-main", {"holder": "node-2", "ttl_s": 60}))
    assert again["fence_token"] > lock["fence_token"]
    assert [l["name"] for l in cluster.get(follower, "/raft/locks")["locks"]] == ["train-main"]

    ok(cluster.post(follower, "/raft/models", {"name": "policy", "version": "1", "uri": "s3://m/1",
                                              "checksum": "sha256:aa", "metrics": {"elo": 1500}}))
    ok(cluster.post(follower, "/raft/models/policy/1/promote", {"stage": "production"}))
    model = cluster.get("node-2", "/raft/models/policy")
    assert model["latest"]["production"]["version"] == "1"
    assert cluster.get(follower, "/raft/models/nope") is None  # 404

    job = ok(cluster.post(follower, "/raft/jobs", {"job_id": "j1", "node_id": "node-2", "job_type": "train"}))
    assert (job["node_id"], job["served_by"]) == ("node-2", follower)  # the job's node, and who answered
    ok(cluster.post("node-2", "/raft/jobs/j1/start", {"node_id": "node-2"}))
    jobs = cluster.get(follower, "/raft/jobs?node_id=node-2")
    assert [j["job_id"] for j in jobs["jobs"]] == ["j1"] and jobs["jobs"][0]["status"] == "running"


def test_mutations_need_the_token_and_retries_apply_once(make_cluster) -> None:
    cluster, _ = started(make_cluster)
    status, body = cluster.post("node-1", "/raft/work", {"work_id": "w", "work_type": "t"}, token="wrong")
    assert status == 401 and body == {"error": "unauthorized"}
    first = ok(cluster.post("node-1", "/raft/work", {"work_id": "w", "work_type": "t", "request_id": "client-42"}))
    retry = ok(cluster.post("node-2", "/raft/work", {"work_id": "w", "work_type": "t", "request_id": "client-42"}))
    drop = ("node_id", "served_by", "timestamp")  # who answered, and when
    assert {k: v for k, v in retry.items() if k not in drop} == {k: v for k, v in first.items() if k not in drop}
    assert cluster.get("node-1", "/raft/work")["stats"]["total"] == 1


def test_a_failed_member_loses_its_claims_and_locks(make_cluster) -> None:
    cluster, leader = started(make_cluster)
    victim = "node-1" if leader != "node-1" else "node-2"
    ok(cluster.post(leader, "/raft/work", {"work_id": "w1", "work_type": "t"}))
    claim = ok(cluster.post(victim, "/raft/work/claim", {"node_id": victim}))
    assert claim["item"]["work_id"] == "w1"
    ok(cluster.post(victim, "/raft/lock/ckpt", {"holder": victim, "ttl_s": 600}))
    cluster.kill(victim)
    survivor = next(n for n in cluster.nodes if n not in (victim, leader))
    wait_until(lambda: cluster.get(survivor, "/raft/work/w1")["item"]["status"] == "pending", 20,
               what="the dead node's claim requeued")
    assert cluster.get(survivor, "/raft/locks")["locks"] == []


def test_full_cluster_crash_and_restart_keeps_acknowledged_writes(make_cluster) -> None:
    cluster, leader = started(make_cluster)
    for i in range(20):
        ok(cluster.post("node-1", "/raft/work", {"work_id": f"w{i}", "work_type": "t"}))
    lock = ok(cluster.post("node-2", "/raft/lock/L", {"holder": "node-2", "ttl_s": 600}))
    for node_id in list(cluster.nodes):
        cluster.kill(node_id)
    cluster.start_all()
    cluster.wait_converged(START_S)
    # Whoever leads now (the greatest voter, unless it came back late) first gathers the state
    # the old leader journaled, so nothing acknowledged is missing.
    cluster.wait_for_leader(START_S)
    stats = wait_until(lambda: (cluster.get("node-1", "/raft/work") or {}).get("stats"), 20, what="stats")
    assert stats["pending"] == 20
    locks = cluster.get("node-1", "/raft/locks")["locks"]
    assert [(l["name"], l["holder"], l["fence_token"]) for l in locks] == [("L", "node-2", lock["fence_token"])]


def _delete(cluster: LocalCluster, node_id: str, path: str, body: dict) -> tuple[int, dict]:
    """(status, parsed body) of a DELETE, errors included (``ok()`` judges the status)."""
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(cluster.nodes[node_id].url + path, data=json.dumps(body).encode(),
                                     method="DELETE", headers={"Content-Type": "application/json",
                                                               "Authorization": f"Bearer {cluster.auth_token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def test_graceful_leader_stop_hands_the_state_to_the_next_leader(make_cluster) -> None:
    cluster, leader = started(make_cluster)  # the greatest voter, unless it started late
    for i in range(5):
        ok(cluster.post("node-1", "/raft/work", {"work_id": f"w{i}", "work_type": "t"}))
    lock = ok(cluster.post("node-1", "/raft/lock/L", {"holder": "node-1", "ttl_s": 600}))
    assert cluster.stop(leader) == 0
    others = [n for n in cluster.nodes if n != leader]
    new = wait_until(lambda: (l := cluster.agreed_leader(others)) != leader and l, 15, what="new leader")
    assert new in others
    stats = wait_until(lambda: (cluster.get("node-1", "/raft/work") or {}).get("stats"), 10, what="stats")
    assert stats["pending"] == 5
    assert cluster.get("node-1", "/raft/locks")["locks"][0]["fence_token"] == lock["fence_token"]
    # And the next lock token still grows past everything handed over.
    assert ok(_delete_lock(cluster, lock))["released"] is True
    assert ok(cluster.post(new, "/raft/lock/L", {"holder": new, "ttl_s": 60}))["fence_token"] > lock["fence_token"]


def _delete_lock(cluster: LocalCluster, lock: dict) -> tuple[int, dict]:
    return _delete(cluster, "node-1", "/raft/lock/L", {"holder": "node-1", "fence_token": lock["fence_token"]})
