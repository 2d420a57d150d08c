"""Rollback loses nothing: one cluster of real nodes goes through every switch between two
consensus modes (raft, bully, hybrid: six directed switches), each once gracefully and once by
SIGKILL of every node, writing through every node before each switch and checking after it
that every acknowledged work item, claim, lock fence, model and job is still there."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from ringrift_cluster.testing import LocalCluster, wait_until

pytestmark = pytest.mark.integration
START_S = 40.0
# An Eulerian circuit of the complete graph on the three modes: every switch A -> B once.
ORDER = ["raft", "bully", "hybrid", "raft", "hybrid", "bully", "raft"]


@dataclass
class Acknowledged:
    """What the cluster said yes to, so far."""

    work: list[str] = field(default_factory=list)
    claims: dict[str, int] = field(default_factory=dict)  # work_id -> claim token
    locks: dict[str, int] = field(default_factory=dict)  # lock name -> fence token
    models: list[str] = field(default_factory=list)  # versions of model "policy"
    jobs: list[str] = field(default_factory=list)


def ok(cluster: LocalCluster, node: str, path: str, body: dict) -> dict:
    status, answer = cluster.post(node, path, body, timeout=10)
    assert status == 200, (node, path, status, answer)
    return answer


def write_phase(cluster: LocalCluster, acked: Acknowledged, phase: int) -> None:
    nodes = sorted(cluster.nodes)
    for i, node in enumerate(nodes):
        work_id = f"p{phase}-w{i}"
        ok(cluster, node, "/raft/work", {"work_id": work_id, "work_type": "selfplay", "request_id": f"add-{work_id}"})
        acked.work.append(work_id)
    claim = ok(cluster, nodes[phase % len(nodes)], "/raft/work/claim", {"node_id": f"gpu-{phase}"})
    acked.claims[claim["item"]["work_id"]] = claim["claim_token"]
    lock = ok(cluster, nodes[(phase + 1) % len(nodes)], f"/raft/lock/ckpt-{phase}", {"holder": f"gpu-{phase}", "ttl_s": 3600})
    acked.locks[f"ckpt-{phase}"] = lock["fence_token"]
    ok(cluster, nodes[(phase + 2) % len(nodes)], "/raft/models",
       {"name": "policy", "version": str(phase), "uri": f"s3://m/{phase}", "checksum": f"c{phase}"})
    acked.models.append(str(phase))
    ok(cluster, nodes[phase % len(nodes)], "/raft/jobs", {"job_id": f"job-{phase}", "node_id": f"gpu-{phase}", "job_type": "train"})
    acked.jobs.append(f"job-{phase}")


def fetch(cluster: LocalCluster, node: str, path: str) -> dict:
    """A read that answered 200 (a read may wait out a leader change: that is not a loss)."""
    return wait_until(lambda: cluster.get(node, path, timeout=10), 30, what=f"GET {path} on {node}")


def check_everything(cluster: LocalCluster, acked: Acknowledged, where: str) -> None:
    reader = sorted(cluster.nodes)[0]

    def stats() -> dict | None:
        return fetch(cluster, reader, "/raft/work?consistent=true")["stats"]

    seen = wait_until(lambda: (s := stats()) and s["total"] >= len(acked.work) and s, 30,
                      what=f"the work queue after {where}", describe=stats)
    assert seen["total"] == len(acked.work), (where, seen)
    for work_id in acked.work:
        item = fetch(cluster, reader, f"/raft/work/{work_id}?consistent=true").get("item")
        assert item is not None, f"{where}: acknowledged work {work_id} is gone"
        if work_id in acked.claims:
            assert item["status"] == "claimed" and item["claim_token"] == acked.claims[work_id], (where, item)
    locks = {l["name"]: l["fence_token"] for l in fetch(cluster, reader, "/raft/locks?consistent=true")["locks"]}
    assert locks == acked.locks, (where, locks, acked.locks)
    versions = [v["version"] for v in fetch(cluster, reader, "/raft/models/policy?consistent=true")["versions"]]
    assert sorted(versions) == sorted(acked.models), (where, versions)
    jobs = {j.get("job_id") for j in fetch(cluster, reader, "/raft/jobs?consistent=true")["jobs"]}
    assert set(acked.jobs) <= jobs, (where, sorted(set(acked.jobs) - jobs), jobs)


def switch(cluster: LocalCluster, mode: str, kill: bool) -> None:
    for node_id in cluster.nodes:
        if kill:
            cluster.kill(node_id)
        else:
            assert cluster.stop(node_id) == 0, f"{node_id} did not stop cleanly"
    cluster.settings["consensus_mode"] = mode
    cluster.start_all()
    cluster.wait_converged(START_S)
    cluster.wait_for_leader(START_S)
    status = cluster.status(sorted(cluster.nodes)[0])
    assert status["swim_raft"]["consensus_mode"] == mode
    assert status["durability"]["state_backend"] == ("journal" if mode == "bully" else "raft")


@pytest.mark.parametrize("kill_first", [False, True], ids=["graceful-first", "sigkill-first"])
def test_every_switch_graceful_and_sigkill_keeps_every_acknowledged_write(make_cluster, kill_first: bool) -> None:
    cluster = make_cluster(3, settings={"consensus_mode": ORDER[0]})
    cluster.start_all()
    cluster.wait_converged(START_S)
    cluster.wait_for_leader(START_S)
    acked = Acknowledged()
    write_phase(cluster, acked, 0)
    for phase, mode in enumerate(ORDER[1:], start=1):
        kill = (phase % 2 == 1) == kill_first  # each run alternates; the two runs swap
        where = f"switch {phase} ({ORDER[phase - 1]} -> {mode}, {'SIGKILL' if kill else 'graceful'})"
        switch(cluster, mode, kill)
        check_everything(cluster, acked, where)
        write_phase(cluster, acked, phase)
    switch(cluster, ORDER[-1], not kill_first)  # the last phase's writes survive a restart too
    check_everything(cluster, acked, "the final restart")


@pytest.mark.parametrize("mode", ["bully", "raft", "hybrid"])
def test_a_rolling_restart_keeps_every_acknowledged_write(make_cluster, mode: str) -> None:
    """Each node in turn stopped and started again while the others take writes: in bully mode
    the returning greatest node leads again and must first take the state its stand-in built."""
    cluster = make_cluster(3, settings={"consensus_mode": mode})
    cluster.start_all()
    cluster.wait_converged(START_S)
    cluster.wait_for_leader(START_S)
    acked = Acknowledged()
    write_phase(cluster, acked, 0)
    for phase, node_id in enumerate(sorted(cluster.nodes, reverse=True), start=1):
        assert cluster.stop(node_id) == 0
        others = [n for n in cluster.nodes if n != node_id]
        cluster.wait_for_leader(START_S, among=others)
        for i, via in enumerate(others):
            work_id = f"while-{node_id}-down-{i}"
            ok(cluster, via, "/raft/work", {"work_id": work_id, "work_type": "t", "request_id": f"add-{work_id}"})
            acked.work.append(work_id)
        cluster.start(node_id)
        cluster.wait_converged(START_S)
        cluster.wait_for_leader(START_S)
        check_everything(cluster, acked, f"restart of {node_id} in {mode} mode")
