"""The adapters backed by a ClusterNode (``host_bridge.attach``), without processes or sockets:
a real node, not started, whose membership is fed heartbeats by hand."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Callable

import prometheus_client
import pytest
import yaml
from adapter_hosts import LegacyHost

from ringrift_cluster.config import load_config
from ringrift_cluster.host_bridge import alive_peer_ids, attach, attached_node, detach, split_address, to_node_id
from ringrift_cluster.node import ClusterNode
from ringrift_cluster.nodeinfo import NodeInfo
from ringrift_cluster.testing import wait

PORTS = {"node-1": (28001, 28101, 28201), "node-2": (28002, 28102, 28202), "node-3": (28003, 28103, 28203)}


@pytest.fixture
def node(tmp_path: Path) -> ClusterNode:
    hosts = {}
    for name, (api, swim, raft) in PORTS.items():
        hosts[name] = {"p2p_host": "127.0.0.1", "p2p_port": api, "swim_port": swim, "raft_port": raft}
    hosts["node-2"]["tailscale_ip"] = "100.64.0.2"
    hosts["node-3"]["nat_blocked"] = True
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump({"hosts": hosts, "ringrift_cluster": {"preset": "local"}}))
    config = load_config(path, env={}, overrides={"node_id": "node-1", "data_dir": str(tmp_path / "data")})
    return ClusterNode(config)


def row_reputation(host: LegacyHost, node_id: str) -> float:
    with sqlite3.connect(host.db_path) as db:
        return float(db.execute("SELECT reputation_score FROM peer_cache WHERE node_id = ?", (node_id,)).fetchone()[0])


def heard(node: ClusterNode, name: str, *, leaving: bool = False) -> None:
    """``name`` sends node a heartbeat from 127.0.0.1 (``leaving``: its last one)."""
    assert node.heartbeat is not None
    info = NodeInfo(node_id=name, host="127.0.0.1", port=PORTS[name][0], leaving=leaving)
    node.heartbeat.handle_heartbeat(info, "127.0.0.1")


@pytest.fixture
def host(tmp_path: Path, node: ClusterNode) -> LegacyHost:
    # The host's own view is stale and wrong on purpose: once attached, the node's view wins.
    legacy = LegacyHost(tmp_path / "p2p.db", "node-1", voters=["node-1", "node-9"])
    legacy.add_peer("node-3", "127.0.0.1", PORTS["node-3"][0], alive=True)
    legacy.add_peer("node-2", "127.0.0.1", PORTS["node-2"][0], alive=False)
    attach(legacy, node)
    return legacy


def test_attach_validates_and_detach_returns_the_node(tmp_path: Path, node: ClusterNode) -> None:
    other = LegacyHost(tmp_path / "o.db", "node-2")
    with pytest.raises(ValueError, match="node-2.*node-1"):
        attach(other, node)
    with pytest.raises(TypeError, match="ClusterNode"):
        attach(other, object())  # type: ignore[arg-type]
    host = LegacyHost(tmp_path / "h.db", "node-1")
    assert attached_node(host) is None
    attach(host, node)
    assert attached_node(host) is node
    attach(host, node)  # attaching again replaces, never stacks subscriptions
    assert detach(host) is node and attached_node(host) is None and detach(host) is None


def test_alive_peers_and_addresses_come_from_the_node(host: LegacyHost, node: ClusterNode) -> None:
    assert alive_peer_ids(host) == frozenset()  # nobody heard yet: the host's peers are not used
    heard(node, "node-2")
    assert alive_peer_ids(host) == {"node-2"}
    api, swim, raft = PORTS["node-2"]
    for address in (f"127.0.0.1:{api}", f"127.0.0.1:{swim}", f"127.0.0.1:{raft}", f"100.64.0.2:{api}", "100.64.0.2"):
        assert to_node_id(host, address) == "node-2", address
    assert to_node_id(host, "127.0.0.1") is None  # every node is on loopback: ambiguous
    assert to_node_id(host, "127.0.0.1:1") is None and to_node_id(host, "") is None
    assert to_node_id(host, "node-7") == "node-7"  # a node id is taken as it is
    heard(node, "node-2", leaving=True)
    assert alive_peer_ids(host) == frozenset()


def test_quorum_and_metrics_use_the_node(host: LegacyHost, node: ClusterNode) -> None:
    before = {m.name for m in prometheus_client.REGISTRY.collect()}
    assert host._check_quorum_health().value == "lost"  # 1 of 3 configured voters (not the host's list)
    heard(node, "node-2")
    status = host.get_quorum_health_status()
    assert (status["level"], status["voters"], status["alive_voter_ids"], status["source"]) == (
        "minimum", ["node-1", "node-2", "node-3"], ["node-1", "node-2"], "membership")
    registry = node.metrics.registry
    assert registry.get_sample_value("ringrift_quorum_health_level") == 1
    assert registry.get_sample_value("ringrift_quorum_alive_voters") == 2
    heard(node, "node-3")
    assert host._has_voter_quorum() and registry.get_sample_value("ringrift_quorum_alive_voters") == 3
    host._start_election_timing()
    latency = host._record_election_latency("timeout")
    assert registry.get_sample_value("ringrift_leader_election_latency_seconds_count", {"outcome": "timeout"}) == 1
    assert registry.get_sample_value("ringrift_leader_election_latency_seconds_sum",
                                     {"outcome": "timeout"}) == pytest.approx(latency)
    metrics = host.get_cluster_metrics()
    assert metrics["ringrift_quorum_health_level"] == 2 and metrics["ringrift_cluster_peers_alive"] == 2
    assert metrics["ringrift_leader_election_latency_seconds"]["timeout"]["count"] == 1
    assert metrics["ringrift_p2p_peer_count"] == {"alive": 2, "suspect": 0, "failed": 0, "left": 0}
    assert host.get_authoritative_leader() is None  # the node (not started) knows no leader
    report = host.election_health_check()  # quorum and no leader yet: not unhealthy (the host's rule)
    assert report["is_healthy"] is True and report["leader_id"] is None and report["voter_count"] == 3
    assert {m.name for m in prometheus_client.REGISTRY.collect()} == before


def test_peer_cache_is_fed_by_membership_under_node_ids(host: LegacyHost, node: ClusterNode) -> None:
    heard(node, "node-2")
    heard(node, "node-3")
    api2, swim2, _ = PORTS["node-2"]
    # node-2 by its tailscale address (configured), node-3 by the address membership heard it from
    assert sorted(host._get_bootstrap_peers_by_reputation()) == [f"100.64.0.2:{api2}", f"127.0.0.1:{PORTS['node-3'][0]}"]
    host._update_peer_reputation(f"127.0.0.1:{swim2}", False)  # a SWIM address: counted for node-2
    host._save_peer_to_cache(f"127.0.0.1:{api2}", "127.0.0.1", api2)  # an address as an id: mapped
    host._save_peer_to_cache("127.0.0.1:9", "127.0.0.1", 9)  # nobody's address: refused
    assert host._get_cached_peer_count() == 2
    assert host._get_bootstrap_peers_by_reputation() == [f"127.0.0.1:{PORTS['node-3'][0]}", f"100.64.0.2:{api2}"]
    assert row_reputation(host, "node-2") == pytest.approx(0.4)
    host._peer_reputations = {"node-2": 0.4}  # the score reads the host's in-memory reputations
    assert host._get_peer_health_score(f"127.0.0.1:{swim2}") == pytest.approx(0.7 * 0.4 + 0.3 * 0.5)
    assert host.peer_health_check() == {"is_healthy": True, "cached_peers": 2, "active_peers": 2,
                                        "bootstrap_seeds": 0, "nat_blocked_count": 1}
    assert host._prune_stale_peers(max_age_seconds=-1) == 0  # members alive now are never pruned
    heard(node, "node-2", leaving=True)
    heard(node, "node-3", leaving=True)
    report = host.peer_health_check()
    assert report["active_peers"] == 0 and report["is_healthy"] is False
    assert host._prune_stale_peers(max_age_seconds=-1) == 2


def test_split_address() -> None:
    assert split_address("10.0.0.1:8770") == ("10.0.0.1", 8770)
    assert split_address("[fd00::1]:7947") == ("fd00::1", 7947)
    assert split_address("fd00::1") == ("fd00::1", None)
    assert split_address("Host.Example:80") == ("host.example", 80)
    assert split_address("10.0.0.1") == ("10.0.0.1", None)
    for bad in ("10.0.0.1:x", "10.0.0.1:0", "10.0.0.1:70000", ":80", "[fd00::1", "[fd00::1]x"):
        assert split_address(bad) == ("", None), bad


def test_to_node_id_without_a_node_uses_the_host_peers(tmp_path: Path) -> None:
    host = LegacyHost(tmp_path / "p.db", "node-1")
    host.add_peer("node-2", "fd00::2", 8770)
    host.add_peer("node-3", "10.0.0.3", 8770, key="10.0.0.3:8770")  # stored under its address
    assert to_node_id(host, "[fd00::2]:8770") == "node-2" and to_node_id(host, "fd00::2") == "node-2"
    assert to_node_id(host, "10.0.0.3:8770") == "node-3"
    assert alive_peer_ids(host) == {"node-2", "node-3"}  # the address key is reported by node id
    assert to_node_id(host, None) is None and to_node_id(host, "10.0.0.3:9999") is None


# -- Leadership through the node: split-brain, step-down, Raft, voters -------------------------------


def claimed(node: ClusterNode, name: str, leader: str, term: int) -> None:
    """``name`` sends a heartbeat naming ``leader`` (itself: it claims leadership) in ``term``."""
    assert node.heartbeat is not None
    info = NodeInfo(node_id=name, host="127.0.0.1", port=PORTS[name][0], role="leader" if leader == name else "follower",
                    leader_id=leader, leader_term=term)
    node.heartbeat.handle_heartbeat(info, "127.0.0.1")


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    await wait.until(condition, timeout, interval=0.01)


async def test_split_brain_is_two_leaders_at_once_and_the_backend_steps_down(host: LegacyHost, node: ClusterNode) -> None:
    bully = node.bully
    assert bully is not None and host._detect_split_brain() is None
    claimed(node, "node-2", "node-2", 3)
    claimed(node, "node-3", "node-2", 3)
    heard_at = node.membership.members()["node-2"].last_seen
    bully._become_leader(4, "lease-4", heard_at + 0.05)  # our lease, granted after node-2's claim was heard
    assert node.consensus.leadership().is_self and host._check_leader_consistency() == (True, "consistent")
    # node-2's claim (epoch 3) is older than our lease: a stale view, not two leaders at once.
    assert host._detect_split_brain() is None
    assert host._count_votes_for_leader("node-2") == 2 and host._count_votes_for_leader("node-1") == 1
    # The same epoch claimed by two nodes: a split-brain. A tie: the lowest id (us) stays.
    claimed(node, "node-2", "node-2", 4)
    report = host._detect_split_brain()
    assert report is not None and report["leaders_seen"] == {"node-1": ["node-1"], "node-2": ["node-2", "node-3"]}
    await until(lambda: not node.consensus.leadership().is_self)  # node-2 had more votes: we stepped down
    claimed(node, "node-3", "node-3", 0)
    # Stepped down through the backend, not by editing the host's fields behind its back.
    assert (host.role, host.leader_id, host.leader_lease_id) == ("follower", None, "")
    assert bully.role == "follower" and host._check_leader_consistency() == (True, "consistent")
    assert host._detect_split_brain() is None  # no lease of ours any more: nothing provably overlaps
    await bully.stop()


async def test_a_later_claim_heard_while_our_lease_holds_is_a_split_brain(host: LegacyHost, node: ClusterNode) -> None:
    bully = node.bully
    assert bully is not None
    bully._become_leader(4, "lease-4", time.monotonic() - 0.5)  # granted half a second ago
    claimed(node, "node-2", "node-2", 5)  # heard after our lease was granted, while it holds
    report = host._detect_split_brain()
    assert report is not None and set(report["leaders_seen"]) == {"node-1", "node-2"}
    await bully.stop()


def test_raft_members_and_voters_read_the_node(host: LegacyHost, node: ClusterNode, monkeypatch: pytest.MonkeyPatch) -> None:
    import adapters.leader_election as le

    monkeypatch.setattr(le, "DYNAMIC_VOTER_ENABLED", True)
    monkeypatch.setattr(le, "CONSENSUS_MODE", "raft")
    monkeypatch.setattr(le, "RAFT_ENABLED", True)
    host._raft_initialized = True  # type: ignore[attr-defined]
    # A bully node: its leader is not Raft's, whatever the host's own flags say.
    assert host._use_raft_for_leadership() is False and host._get_raft_leader_node_id() is None
    assert host._sync_leader_from_raft() is False
    heard(node, "node-2")
    heard(node, "node-3")
    assert host._should_promote_voter() is False  # the voters are the node's configuration
    assert asyncio.run(host._promote_to_voter("node-2")) is False
    assert host._get_voter_quorum_status()["voters"] == ["node-1", "node-2", "node-3"]
    assert host._check_lease_expiry()["lease_stale"] is False
    assert [c["node_id"] for c in host._rank_leader_candidates() if c["is_alive"]] == sorted(
        ["node-1", "node-2", "node-3"], key=host._compute_leader_priority)
