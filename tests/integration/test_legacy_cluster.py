"""Real node processes on loopback in legacy mode (HTTP heartbeats + Bully with majority leases)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from typing import Any

import pytest

from ringrift_cluster.testing import LocalCluster, wait_until
from ringrift_cluster.testing.history import Recorder, leader_violations

pytestmark = pytest.mark.integration

# The local preset's timings (config.PRESETS["local"]).
PEER_TIMEOUT_S = 4.0
LEASE_S = 4.0
RENEW_S = 1.0  # lease_renew_interval_s
ELECTION_TIMEOUT_S = 2.0
JITTER = 1.05
START_S = 30.0  # generous: process start on a loaded 2-core machine


class LeaderSampler(Recorder):
    """Polls every node's /status in the background (the fault suite's :class:`Recorder`) and
    checks the leader invariants: at most one node ever claims leadership of a given epoch, no two
    nodes claim it with unexpired leases at the same moment, and a leader always reports its lease
    (a missing ``lease_expires`` would hide it from the overlap check). The recorder itself must
    have kept sampling: no dead thread, no failing rounds, rounds in proportion to the run."""

    def __init__(self, cluster: LocalCluster) -> None:
        super().__init__(cluster, interval=0.1, round_s=0.5)

    def assert_safe(self) -> None:
        self.stop()
        problems = self.health()
        assert not problems, problems
        rounds = self.snapshot()
        claims: dict[int, set[str]] = defaultdict(set)
        overlaps: list[dict[str, Any]] = []
        for r in rounds:
            leaders = {}
            for node_id, view in r.views.items():
                if view is not None and view.role == "leader":
                    claims[view.leader_term].add(node_id)  # type: ignore[index]
                    if view.lease_expires is not None and view.lease_expires > r.ended:
                        leaders[node_id] = view.leader_term
            if len(leaders) > 1:
                overlaps.append(leaders)
        doubled = {term: nodes for term, nodes in claims.items() if len(nodes) > 1}
        assert not doubled, f"two leaders in one epoch: {doubled}"
        assert not overlaps, f"two leaders with unexpired leases at once: {overlaps[:5]}"
        violations = leader_violations(rounds, leases=True)
        assert not violations, violations
        assert any(v is not None and v.claims_leadership for r in rounds for v in r.views.values()), \
            "the sampler never saw a leader"


def peer_states(cluster: LocalCluster, observer: str) -> dict[str, str]:
    status = cluster.status(observer) or {}
    return {p: v["state"] for p, v in status.get("peers", {}).items()}


def voter_grant(cluster: LocalCluster, observer: str) -> str | None:
    """Whom ``observer``'s voter ledger grants its lease now (None: nobody)."""
    grant = ((cluster.status(observer) or {}).get("consensus") or {}).get("voter_grant")
    return grant["leader_id"] if grant else None


def next_leader(cluster: LocalCluster, among: list[str], old: str) -> str | None:
    leader = cluster.agreed_leader(among)
    return leader if leader != old else None


def metric(cluster: LocalCluster, node_id: str, name: str) -> float:
    import urllib.request

    with urllib.request.urlopen(cluster.nodes[node_id].url + "/metrics", timeout=2) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not exposed by {node_id}")


def test_three_nodes_converge_elect_the_greatest_and_report_metrics(make_cluster) -> None:
    cluster = make_cluster(3)
    cluster.start_all()
    cluster.wait_converged(START_S)
    assert cluster.wait_for_leader(START_S) == "node-3"
    assert wait_until(lambda: all((cluster.get(n, "/ready") or {}).get("ready") for n in cluster.nodes), 10, what="ready")
    status = cluster.status("node-1")
    assert status["quorum"] == {"required": 2, "alive_voters": 3, "total_voters": 3, "health": "degraded"}
    assert set(status["peers"]) == {"node-2", "node-3"}  # node ids, never addresses
    wait_until(lambda: metric(cluster, "node-3", "ringrift_is_leader") == 1, 10, what="leader gauge")
    assert metric(cluster, "node-1", "ringrift_is_leader") == 0
    assert metric(cluster, "node-1", "ringrift_cluster_peers_alive") == 2
    assert metric(cluster, "node-1", "ringrift_quorum_alive_voters") == 3
    assert metric(cluster, "node-1", "ringrift_p2p_leader_changes_total") >= 1
    assert metric(cluster, "node-1", "ringrift_p2p_quorum_status") == 1


def test_five_nodes_leader_killed_then_follower_killed_then_restarted(make_cluster) -> None:
    cluster = make_cluster(5)
    cluster.start_all()
    with LeaderSampler(cluster) as sampler:
        cluster.wait_converged(START_S)
        leader = cluster.wait_for_leader(START_S)
        # The greatest id among the voters alive at the first election: node-5 unless a slow
        # start let a lower node win first (a valid lease is not taken away).
        assert leader in cluster.nodes
        term = cluster.status(leader)["leader_term"]

        # SIGKILL the leader: a new one within the configured bound, with a greater epoch.
        killed_at = time.monotonic()
        cluster.kill(leader)
        survivors = [n for n in cluster.nodes if n != leader]
        bound = LEASE_S + PEER_TIMEOUT_S * JITTER + ELECTION_TIMEOUT_S
        new_leader = wait_until(lambda: next_leader(cluster, survivors, leader), bound + 2, what="a new leader",
                                describe=lambda: cluster.leaders(cluster.statuses(survivors)))
        failover = time.monotonic() - killed_at
        assert new_leader != leader and failover <= bound + 2, f"failover took {failover:.1f}s"
        assert cluster.status(new_leader)["leader_term"] > term

        # SIGKILL a follower: every survivor declares it failed.
        victim = next(n for n in survivors if n != new_leader)
        cluster.kill(victim)
        rest = [n for n in survivors if n != victim]
        wait_until(lambda: all(peer_states(cluster, n).get(victim) == "failed" for n in rest),
                   PEER_TIMEOUT_S * JITTER + 3, what=f"{victim} failed everywhere",
                   describe=lambda: {n: peer_states(cluster, n) for n in rest})
        assert all(peer_states(cluster, n).get(leader) == "failed" for n in rest)

        # Restart it: it rejoins, is alive everywhere again, and follows the current leader.
        cluster.start(victim)
        wait_until(lambda: all(peer_states(cluster, n).get(victim) == "alive" for n in rest), START_S,
                   what=f"{victim} alive again", describe=lambda: {n: peer_states(cluster, n) for n in rest})
        wait_until(lambda: (cluster.status(victim) or {}).get("leader_id") == new_leader, START_S,
                   what=f"{victim} follows {new_leader}")
        assert metric(cluster, rest[0], "ringrift_p2p_leader_changes_total") >= 2
    sampler.assert_safe()


def test_graceful_stop_is_left_and_hands_over_leadership(make_cluster) -> None:
    cluster = make_cluster(3)
    cluster.start_all()
    with LeaderSampler(cluster) as sampler:
        cluster.wait_converged(START_S)
        leader = cluster.wait_for_leader(START_S)  # the greatest voter, unless it started late
        rest = [n for n in cluster.nodes if n != leader]
        wait_until(lambda: all(voter_grant(cluster, n) == leader for n in rest), 10,
                   what=f"the voters hold {leader}'s lease", describe=lambda: {n: voter_grant(cluster, n) for n in rest})
        stopped_at = time.monotonic()
        assert cluster.stop(leader) == 0
        # The stopping leader gave its lease back before it exited: no voter still holds it (its
        # last renewal would otherwise keep it for LEASE_S - RENEW_S = 3 s and more).
        held = {n: voter_grant(cluster, n) for n in rest}
        assert leader not in held.values(), f"voters still hold the stopped leader's lease: {held}"
        wait_until(lambda: all(peer_states(cluster, n).get(leader) == "left" for n in rest), 10,
                   what=f"{leader} left", describe=lambda: {n: peer_states(cluster, n) for n in rest})
        # No wait for the lease to run out; the greatest of the others leads.
        assert wait_until(lambda: next_leader(cluster, rest, leader), LEASE_S, what="the next leader") == max(rest)
        assert time.monotonic() - stopped_at < LEASE_S + PEER_TIMEOUT_S
        cluster.start(leader)
        cluster.wait_converged(START_S)
        assert cluster.wait_for_leader(START_S) in (max(rest), leader)
    sampler.assert_safe()


def test_a_second_instance_on_the_same_port_fails_fast(make_cluster) -> None:
    cluster = make_cluster(1)
    cluster.start_all()
    wait_until(lambda: cluster.status("node-1"), START_S, what="node-1 up")
    started = time.monotonic()
    second = subprocess.run(cluster.command("node-1"), env=cluster.env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 1
    assert "in use" in second.stderr and "node-1" in second.stderr
    assert time.monotonic() - started < 30
    assert cluster.status("node-1") is not None  # the first one is undisturbed


def test_bad_config_is_one_clear_line_and_exit_2(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("hosts:\n  a: {p2p_host: 127.0.0.1}\nringrift_cluster:\n  heartbeat:\n    intervall_s: 3\n")
    result = subprocess.run([sys.executable, "-m", "ringrift_cluster", "run", "--config", str(path), "--node-id", "a"],
                            capture_output=True, text=True, timeout=60, env={**os.environ})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "ringrift_cluster.heartbeat.intervall_s" in lines[0] and "interval_s" in lines[0]


def test_status_command_prints_a_table_and_json(make_cluster) -> None:
    cluster = make_cluster(2)
    cluster.start_all()
    cluster.wait_converged(START_S)
    leader = cluster.wait_for_leader(START_S)
    url = cluster.nodes["node-1"].url
    table = subprocess.run([sys.executable, "-m", "ringrift_cluster", "status", "--url", url],
                           capture_output=True, text=True, timeout=30)
    assert table.returncode == 0 and f"leader {leader}" in table.stdout and "node-2" in table.stdout
    raw = subprocess.run([sys.executable, "-m", "ringrift_cluster", "status", "--url", url, "--json"],
                         capture_output=True, text=True, timeout=30)
    assert raw.returncode == 0 and '"swim_raft"' in raw.stdout
    down = subprocess.run([sys.executable, "-m", "ringrift_cluster", "status", "--url", "http://127.0.0.1:1"],
                          capture_output=True, text=True, timeout=30)
    assert down.returncode == 1 and "cannot read" in down.stderr


def test_sigterm_exits_zero(make_cluster) -> None:
    cluster = make_cluster(1)
    cluster.start_all()
    wait_until(lambda: cluster.status("node-1"), START_S, what="node-1 up")
    cluster.signal("node-1", signal.SIGTERM)
    assert cluster.nodes["node-1"].proc.wait(timeout=20) == 0
