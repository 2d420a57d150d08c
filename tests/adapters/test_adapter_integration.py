"""A host object using both adapters, attached to a real node of a real 3-node cluster.

node-1 and node-2 run as processes (LocalCluster); node-3 runs in this test's event loop as a
ClusterNode built from the same generated cluster YAML, attached to the host object with
``host_bridge.attach``. The host must see the alive peers, the quorum and the leader exactly as
the nodes' own ``/status`` report them, while members die.

Every wait polls with a deadline (``wait_until``) in a worker thread: the HTTP reads happen there,
and the host object is read on the loop (``run_coroutine_threadsafe``), so the in-process node
keeps running while the test waits.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
from adapter_hosts import LegacyHost

from adapters.leader_election import LeaderElectionMixin

from ringrift_cluster.config import load_config
from ringrift_cluster.host_bridge import alive_peer_ids, attach
from ringrift_cluster.node import ClusterNode
from ringrift_cluster.testing import LocalCluster, wait_until

pytestmark = pytest.mark.integration

START_S = 30.0  # process start on a loaded 2-core machine
DEATH_S = 20.0  # local preset: peer timeout 4 s (+ jitter), lease 4 s, election 2 s
IN_PROCESS = "node-3"
PROCESSES = ("node-1", "node-2")
ALL = (*PROCESSES, IN_PROCESS)


@dataclass(frozen=True)
class Modes:
    membership: str
    consensus: str

    @property
    def env(self) -> dict[str, str]:
        return {"RINGRIFT_MEMBERSHIP_MODE": self.membership, "RINGRIFT_CONSENSUS_MODE": self.consensus}


MODES = [
    pytest.param(Modes("http", "bully"), id="http+bully"),
    pytest.param(Modes("swim", "raft"), id="swim+raft"),
    # Nothing below depends on the mode: the leader is whoever the nodes agree on.
]


def host_view(host: LegacyHost) -> dict[str, Any]:
    """What the host sees through the adapters (called on the loop)."""
    return {
        "alive": set(alive_peer_ids(host)),
        "leader": host.get_authoritative_leader(),
        "quorum": host.get_quorum_health_status(),
        "peers": host.peer_health_check(),
        "election": host.election_health_check(),
    }


def mirror(name: str, statuses: dict[str, Any], tmp_path: Path) -> LegacyHost:
    """The host's own (unattached) view of node ``name``, as its heartbeats would give it: role,
    leader and lease from its /status, its peers with the leader each of them reports."""
    status = statuses[name]
    host = LegacyHost(tmp_path / f"mirror-{name}.db", name, voters=list(status["voters"]))
    host.role, host.leader_id = status["role"], status["leader_id"]
    host.leader_lease_expires = status["lease_expires"] or 0.0
    for peer, seen in status["peers"].items():
        reported = statuses.get(peer) if seen["is_alive"] else None
        host.add_peer(peer, seen["host"], seen["port"], alive=seen["is_alive"],
                      leader_id=reported["leader_id"] if reported else None)
    return host


def assert_one_consistent_leader(host: LegacyHost, statuses: dict[str, Any], tmp_path: Path) -> None:
    """No split-brain and a consistent role/leader on every running node: the attached host (its
    node's real leadership) and the host's own view of each process node (the host's rule)."""
    assert host._detect_split_brain() is None
    assert host._check_leader_consistency() == (True, "consistent")
    for name in statuses:
        if name != IN_PROCESS:
            view = mirror(name, statuses, tmp_path)
            assert view._check_leader_consistency() == (True, "consistent"), name
            assert view._detect_split_brain() is None, name


def alive_seen_by(status: dict[str, Any]) -> set[str]:
    return {p for p, v in status.get("peers", {}).items() if v.get("is_alive")}


class Observer:
    """Polls the nodes' /status (worker thread) and the host's view (loop) together."""

    def __init__(self, cluster: LocalCluster, host: LegacyHost, loop: asyncio.AbstractEventLoop) -> None:
        self.cluster, self.host, self.loop = cluster, host, loop
        self.last: tuple[dict[str, Any], dict[str, Any]] | None = None

    def sample(self, among: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
        statuses = {n: self.cluster.status(n) for n in among}

        async def read() -> dict[str, Any]:
            return host_view(self.host)

        view = asyncio.run_coroutine_threadsafe(read(), self.loop).result(timeout=10)
        self.last = (statuses, view)
        return statuses, view

    async def until(self, among: tuple[str, ...], check: Callable[[dict[str, Any], dict[str, Any]], bool],
                    timeout: float, what: str) -> tuple[dict[str, Any], dict[str, Any]]:
        def probe() -> tuple[dict[str, Any], dict[str, Any]] | None:
            statuses, view = self.sample(among)
            if any(s is None for s in statuses.values()):
                return None
            return (statuses, view) if check(statuses, view) else None

        return await asyncio.to_thread(wait_until, probe, timeout, what=what, describe=lambda: self.last)


def agrees(alive_nodes: tuple[str, ...]) -> Callable[[dict[str, Any], dict[str, Any]], bool]:
    """Every node in ``alive_nodes`` sees exactly the others alive, they agree on one leader, and the
    host sees the same peers, quorum and leader as node-3's /status."""
    expected = set(alive_nodes)

    def check(statuses: dict[str, Any], view: dict[str, Any]) -> bool:
        if any(alive_seen_by(s) != expected - {n} for n, s in statuses.items()):
            return False
        leaders = {s["leader_id"] for s in statuses.values()}
        mine = statuses[IN_PROCESS]
        return (len(leaders) == 1 and None not in leaders and view["leader"] in leaders
                and view["alive"] == alive_seen_by(mine)
                and view["quorum"]["level"] == mine["quorum"]["health"]
                and view["quorum"]["alive_voters"] == mine["quorum"]["alive_voters"])

    return check


@pytest.mark.parametrize("modes", MODES)
async def test_host_sees_the_peers_quorum_and_leader_the_nodes_see(make_cluster: Callable[..., LocalCluster],
                                                                   tmp_path: Path, modes: Modes) -> None:
    cluster = make_cluster(3, env=modes.env)
    cluster.write_config()
    for name in PROCESSES:
        cluster.start(name)
    config = load_config(cluster.config_path, env={**modes.env, "RINGRIFT_CLUSTER_AUTH_TOKEN": cluster.auth_token},
                         overrides={"node_id": IN_PROCESS, "data_dir": str(cluster.nodes[IN_PROCESS].data_dir)})
    assert (config.membership_mode.value, config.consensus_mode.value) == (modes.membership, modes.consensus)
    node = ClusterNode(config)
    host = LegacyHost(tmp_path / "host.db", IN_PROCESS)
    attach(host, node)  # before start: the host also counts the node's first election
    await node.start()
    observer = Observer(cluster, host, asyncio.get_running_loop())
    try:
        # 1. All three up: one leader, everyone alive, the host agrees with the nodes.
        statuses, view = await observer.until(ALL, agrees(ALL), START_S, "3 nodes converged, host agrees")
        leader = statuses[IN_PROCESS]["leader_id"]
        assert leader in ALL and view["leader"] == leader  # a node id, never host:port
        assert view["alive"] == {"node-1", "node-2"}
        assert view["quorum"]["level"] == "degraded" and view["quorum"]["source"] == "membership"
        assert view["election"]["is_healthy"] and view["election"]["is_leader"] is (leader == IN_PROCESS)
        assert view["peers"]["active_peers"] == 2 and view["peers"]["is_healthy"]
        assert_one_consistent_leader(host, statuses, tmp_path)
        raft = modes.consensus == "raft"
        assert host._use_raft_for_leadership() is raft  # read from the node's own Raft replica
        assert host._get_raft_leader_node_id() == (leader if raft else None)
        if raft:  # election_health_check synced the host's own leader field from Raft
            assert host.leader_id == leader and host._sync_leader_from_raft() is False
        election = LeaderElectionMixin.health_check(host)  # the host's MRO puts the peer manager's first
        assert election["healthy"] and election["details"]["mixin_type"] == "leader_election"
        assert host.get_quorum_recovery_status()["voters_needed_for_quorum"] == 0
        api_ports = {cluster.nodes[n].api_port for n in PROCESSES}
        bootstrap = host._get_bootstrap_peers_by_reputation()
        assert {int(a.rsplit(":", 1)[1]) for a in bootstrap} == api_ports  # addresses of the live peers
        host._update_peer_reputation(f"127.0.0.1:{cluster.nodes['node-1'].swim_port}", True)  # a SWIM address
        host._record_p2p_sync_result("node-2", True)
        assert host._get_cached_peer_count() == 2  # keyed by node id: no address became a row
        assert host._get_peer_health_score("node-2") == pytest.approx(0.7 * 0.5 + 0.3 * 1.0)
        # A lease revoke reaches both other voters with the node's token (a lease id nobody holds,
        # so the cluster is undisturbed): this node + node-1 + node-2. Under Raft there are no
        # voter leases: the peers' Bully routes are off, and only this node counts itself.
        host.leader_lease_id = "node-3_0_00000000"
        assert await host._notify_voters_lease_revoked() == (3 if modes.consensus == "bully" else 1)
        metrics = host.get_cluster_metrics()
        assert (metrics["ringrift_quorum_health_level"], metrics["ringrift_quorum_alive_voters"],
                metrics["ringrift_cluster_peers_alive"], metrics["ringrift_is_leader"]) == (
            2, 3, 2, 1 if leader == IN_PROCESS else 0)
        assert metrics["ringrift_p2p_leader_changes_total"] >= 1
        stats = host.get_election_latency_stats()
        if leader == IN_PROCESS:  # its own election, counted from the node's leadership events
            assert stats["outcomes"]["won"] >= 1 and stats["last_source"] == "node"
            assert metrics["ringrift_leader_election_latency_seconds"]["won"]["count"] >= 1

        # 2. SIGKILL node-1: the host sees it gone, quorum at its minimum, the same leader as the nodes.
        cluster.kill("node-1")
        survivors = ("node-2", IN_PROCESS)
        statuses, view = await observer.until(survivors, agrees(survivors), DEATH_S, "node-1 dead everywhere")
        assert view["alive"] == {"node-2"} and view["quorum"]["level"] == "minimum"
        assert view["leader"] is not None and view["quorum"]["missing_voters"] == ["node-1"]
        assert host.get_cluster_metrics()["ringrift_quorum_health_level"] == 1
        assert_one_consistent_leader(host, statuses, tmp_path)
        # A voter killed: quorum holds at its minimum; node-1 is the one to bring back.
        assert host.get_quorum_recovery_status() == {
            "quorum_required": 2, "current_alive": 2, "voters_needed_for_quorum": 0,
            "priority_voters": ["node-2", "node-3", "node-1"], "last_healthy_voters": ["node-2", "node-3"],
            "offline_healthy_voters": [], "recovery_possible": True}

        # 3. SIGKILL node-2: quorum lost; no leader anywhere, and the host says so.
        cluster.kill("node-2")

        def lost(statuses: dict[str, Any], view: dict[str, Any]) -> bool:
            mine = statuses[IN_PROCESS]
            return (mine["quorum"]["health"] == "lost" and mine["leader_id"] is None
                    and view["quorum"]["level"] == "lost" and view["leader"] is None and not view["alive"])

        statuses, view = await observer.until((IN_PROCESS,), lost, DEATH_S, "quorum lost, no leader")
        assert host._has_voter_quorum() is False and host._check_quorum_health().value == "lost"
        assert view["election"]["is_healthy"] is False and view["peers"]["is_healthy"] is False
        failures = host.get_quorum_health_status()["recent_failures"]
        assert [f["previous_level"] for f in failures] == ["minimum"]
        assert failures[0]["missing_voters"] == ["node-1", "node-2"]
        metrics = host.get_cluster_metrics()
        assert (metrics["ringrift_quorum_health_level"], metrics["ringrift_p2p_quorum_status"],
                metrics["ringrift_is_leader"]) == (0, 0, 0)
        assert host._detect_split_brain() is None and host._check_leader_consistency() == (True, "consistent")
        # Quorum lost: one of the voters alive with it last time would restore it.
        assert host.get_quorum_recovery_status() == {
            "quorum_required": 2, "current_alive": 1, "voters_needed_for_quorum": 1,
            "priority_voters": ["node-2", "node-3", "node-1"], "last_healthy_voters": ["node-2", "node-3"],
            "offline_healthy_voters": ["node-2"], "recovery_possible": True}
    finally:
        await node.stop(graceful=False)
