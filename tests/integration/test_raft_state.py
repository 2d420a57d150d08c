"""Raft consensus mode on real node processes: the replicated state survives leader kills and
full-cluster crashes, non-members go through members, and mode switches lose nothing."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest

from ringrift_cluster.testing import LocalCluster, wait_until
from state_calls import START_S, ok

pytestmark = pytest.mark.integration
RAFT = {"consensus_mode": "raft"}


def digests(cluster: LocalCluster, nodes: list[str]) -> dict[str, str | None]:
    return {n: (cluster.get(n, "/state/digest") or {}).get("digest") for n in nodes}


def converged(cluster: LocalCluster, nodes: list[str]) -> bool:
    values = set(digests(cluster, nodes).values())
    return len(values) == 1 and None not in values


class ClaimStream:
    """Clients claiming work through random nodes while faults happen; keeps every answer."""

    def __init__(self, cluster: LocalCluster, seed: int) -> None:
        self.cluster = cluster
        self.rng = random.Random(seed)
        self.acked: list[tuple[str, int]] = []  # (work_id, claim_token) acknowledged
        self.unknown = 0
        self.lock_tokens: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "ClaimStream":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            target = self.rng.choice(self.cluster.running())
            i += 1
            try:
                status, body = self.cluster.post(target, "/raft/work/claim",
                                                 {"node_id": f"worker-{i % 7}", "request_id": f"claim-{i}"}, timeout=5)
                if status == 200 and body.get("item"):
                    self.acked.append((body["item"]["work_id"], body["claim_token"]))
                elif status == 503:
                    self.unknown += 1
                status, body = self.cluster.post(target, "/raft/lock/ckpt", {"holder": f"worker-{i}", "ttl_s": 0.2,
                                                                             "request_id": f"lock-{i}"}, timeout=5)
                if status == 200:
                    self.lock_tokens.append(body["fence_token"])
            except OSError:
                self.unknown += 1


@pytest.mark.parametrize("voters", [3, 5])
def test_leader_killed_under_claims_loses_nothing(make_cluster, voters: int) -> None:
    cluster = make_cluster(voters, settings=RAFT)
    cluster.start_all()
    cluster.wait_converged(START_S)
    leader = cluster.wait_for_leader(START_S)
    for i in range(300):
        ok(cluster.post(random.choice(list(cluster.nodes)), "/raft/work", {"work_id": f"w{i:03d}", "work_type": "t"}))
    with ClaimStream(cluster, seed=voters) as stream:
        wait_until(lambda: len(stream.acked) >= 20, 20, what="claims flowing")
        killed_at = time.monotonic()
        cluster.kill(leader)
        survivors = [n for n in cluster.nodes if n != leader]
        new_leader = wait_until(lambda: (l := cluster.agreed_leader(survivors)) not in (None, leader) and l, 10,
                                what="a new Raft leader", describe=lambda: cluster.leaders(cluster.statuses(survivors)))
        before = len(stream.acked)
        wait_until(lambda: len(stream.acked) > before + 10, 10, what="claims committed under the new leader")
        failover = time.monotonic() - killed_at
    assert new_leader in survivors and failover < 10
    claimed = Counter(work_id for work_id, _ in stream.acked)
    assert max(claimed.values()) == 1, f"work claimed twice: {[w for w, n in claimed.items() if n > 1]}"
    assert stream.lock_tokens == sorted(stream.lock_tokens) and len(set(stream.lock_tokens)) == len(stream.lock_tokens)
    cluster.start(leader)
    wait_until(lambda: converged(cluster, list(cluster.nodes)), 30, what="replicas identical",
               describe=lambda: digests(cluster, list(cluster.nodes)))
    for work_id, token in stream.acked:  # every acknowledged claim is in the replicated state
        item = cluster.get(leader, f"/raft/work/{work_id}")["item"]
        assert item["status"] == "claimed" and item["claim_token"] == token, item
    stats = cluster.get(leader, "/raft/work")["stats"]
    assert stats["total"] == 300 and stats["claimed"] >= len(stream.acked)


def test_full_cluster_crash_and_restart_keeps_everything(make_cluster) -> None:
    cluster = make_cluster(3, settings=RAFT)
    cluster.start_all()
    cluster.wait_converged(START_S)
    cluster.wait_for_leader(START_S)
    for i in range(50):
        ok(cluster.post("node-1", "/raft/work", {"work_id": f"w{i}", "work_type": "t"}))
    claim = ok(cluster.post("node-2", "/raft/work/claim", {"node_id": "gpu-1"}))
    lock = ok(cluster.post("node-3", "/raft/lock/L", {"holder": "gpu-1", "ttl_s": 600}))
    ok(cluster.post("node-1", "/raft/models", {"name": "p", "version": "7", "uri": "u", "checksum": "c"}))
    for node_id in list(cluster.nodes):
        cluster.kill(node_id)
    cluster.start_all()
    cluster.wait_converged(START_S)
    cluster.wait_for_leader(START_S)
    stats = wait_until(lambda: (cluster.get("node-3", "/raft/work?consistent=true") or {}).get("stats"), 20, what="stats")
    assert stats["total"] == 50 and stats["claimed"] == 1
    assert cluster.get("node-1", f"/raft/work/{claim['item']['work_id']}")["item"]["claim_token"] == claim["claim_token"]
    assert cluster.get("node-2", "/raft/locks?consistent=true")["locks"][0]["fence_token"] == lock["fence_token"]
    assert cluster.get("node-1", "/raft/models/p?consistent=true")["versions"][0]["version"] == "7"


def test_bad_commands_do_not_wedge_and_a_non_member_works_through_members(make_cluster) -> None:
    cluster = make_cluster(4, settings=RAFT, voters=["node-1", "node-2", "node-3"])
    cluster.start_all()
    cluster.wait_converged(START_S)
    cluster.wait_for_leader(START_S, among=["node-1", "node-2", "node-3"])
    for body in ({"work_id": 5, "work_type": "t"}, {"work_id": "x" * 1000, "work_type": "t"}, {"nope": 1},
                 {"work_id": "w", "work_type": "t", "priority": "high"}):
        status, answer = cluster.post("node-1", "/raft/work", body)
        assert status == 400 and answer["error"] == "bad_command", answer
    # /state/submit answers from this member without forwarding: until node-2 has applied the new
    # leader's seal it says 503 (not applied, retry), as any client would then.
    unknown = {"command": {"v": 1, "op": "no.such", "rid": "r", "now": 1}}
    status, answer = wait_until(lambda: (r := cluster.post("node-2", "/state/submit", unknown))[0] != 503 and r,
                                START_S, what="an answer from node-2 (not 503)")
    assert status == 200 and answer["result"]["error"] == "unknown_op", (status, answer)
    # node-4 runs no Raft: it forwards, and reports the members' leader.
    assert cluster.status("node-4")["consensus"]["backend"] == "raft-observer"
    ok(cluster.post("node-4", "/raft/work", {"work_id": "w1", "work_type": "t"}))
    claim = ok(cluster.post("node-4", "/raft/work/claim", {"node_id": "node-4"}))
    assert claim["item"]["work_id"] == "w1"
    ok(cluster.post("node-4", "/raft/work/w1/complete", {"claim_token": claim["claim_token"]}))
    assert cluster.get("node-1", "/raft/work/w1?consistent=true")["item"]["status"] == "completed"
    leader = cluster.agreed_leader(["node-1", "node-2", "node-3"])
    wait_until(lambda: (cluster.get("node-4", "/raft/status") or {}).get("leader") == leader, 10, what="observer sees leader")
    assert cluster.get("node-4", "/raft/status")["raft_member"] is False


def test_mode_switch_raft_bully_raft_loses_nothing(make_cluster) -> None:
    cluster = make_cluster(3, settings=RAFT)
    cluster.start_all()
    cluster.wait_converged(START_S)
    cluster.wait_for_leader(START_S)
    for i in range(10):
        ok(cluster.post("node-1", "/raft/work", {"work_id": f"w{i}", "work_type": "t"}))
    claim = ok(cluster.post("node-1", "/raft/work/claim", {"node_id": "gpu-1"}))
    lock = ok(cluster.post("node-2", "/raft/lock/L", {"holder": "gpu-1", "ttl_s": 3600}))
    ok(cluster.post("node-3", "/raft/models", {"name": "p", "version": "1", "uri": "u", "checksum": "c"}))

    def switch(mode: str) -> None:
        for node_id in cluster.nodes:
            assert cluster.stop(node_id) == 0
        cluster.settings["consensus_mode"] = mode
        cluster.start_all()
        cluster.wait_converged(START_S)
        cluster.wait_for_leader(START_S)

    def assert_everything(extra: int = 0) -> None:
        stats = wait_until(lambda: (s := (cluster.get("node-1", "/raft/work?consistent=true") or {}).get("stats"))
                           and s["total"] == 10 + extra and s, 20, what="the work queue back",
                           describe=lambda: cluster.get("node-1", "/raft/work"))
        assert stats["claimed"] == 1
        assert cluster.get("node-1", f"/raft/work/{claim['item']['work_id']}")["item"]["claim_token"] == claim["claim_token"]
        locks = cluster.get("node-1", "/raft/locks?consistent=true")["locks"]
        assert [(l["name"], l["fence_token"]) for l in locks] == [("L", lock["fence_token"])]
        assert cluster.get("node-1", "/raft/models/p")["versions"][0]["version"] == "1"

    switch("bully")
    assert cluster.status("node-1")["swim_raft"]["consensus_mode"] == "bully"
    assert_everything()
    ok(cluster.post("node-1", "/raft/work", {"work_id": "in-bully", "work_type": "t"}))
    switch("raft")
    assert cluster.status("node-1")["swim_raft"]["consensus_mode"] == "raft"
    assert_everything(extra=1)
    assert cluster.get("node-2", "/raft/work/in-bully?consistent=true")["item"]["status"] == "pending"


def test_hybrid_mode_bully_leads_raft_holds_the_state_and_metrics_move(make_cluster) -> None:
    cluster = make_cluster(3, settings={"consensus_mode": "hybrid"})
    cluster.start_all()
    cluster.wait_converged(START_S)
    # The Bully leader: the greatest id among the voters it found alive when it was elected (a
    # slow start can let a lower one win first; a valid lease is not taken away).
    assert cluster.wait_for_leader(START_S) in cluster.nodes
    status = cluster.status("node-1")
    assert status["consensus"]["backend"] == "bully" and status["state"]["backend"] == "raft"
    ok(cluster.post("node-1", "/raft/work", {"work_id": "w1", "work_type": "t"}))
    ok(cluster.post("node-2", "/raft/lock/L", {"holder": "gpu", "ttl_s": 60}))
    wait_until(lambda: converged(cluster, list(cluster.nodes)), 20, what="raft replicas identical")
    assert cluster.get("node-3", "/raft/work/w1")["item"]["status"] == "pending"

    def metric_text(node_id: str) -> str:
        import urllib.request

        with urllib.request.urlopen(cluster.nodes[node_id].url + "/metrics", timeout=2) as response:
            return response.read().decode()

    text = metric_text("node-1")
    assert 'ringrift_state_commands_total{op="work.add",outcome="ok"} 1.0' in text
    wait_until(lambda: 'ringrift_work_items{status="pending"} 1.0' in metric_text("node-2")
               and "ringrift_locks_held 1.0" in metric_text("node-2"), 10, what="state gauges")
