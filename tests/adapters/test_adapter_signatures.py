"""Snapshot of the adapters' public surface against legacy-contract.md §1: a renamed parameter, a
changed default or a missing name fails here before it breaks the host."""

from __future__ import annotations

import dataclasses
import enum
import inspect
from typing import Any, Callable

import adapters.leader_election as le
import adapters.peer_manager as pm
from ringrift_cluster import host_bridge


def render(func: Callable[..., Any]) -> str:
    """``(a, b=1, *, c=None) -> ret`` with the annotations as written (strings, not evaluated)."""
    signature = inspect.signature(func)
    parts: list[str] = []
    star = False
    for p in signature.parameters.values():
        if p.kind is p.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        text = p.name if p.default is p.empty else f"{p.name}={p.default!r}"
        parts.append(text)
    ret = signature.return_annotation
    return f"({', '.join(parts)}) -> {'?' if ret is signature.empty else ret}"


PEER_MANAGER_MODULE = {
    "get_peer_manager": "() -> PeerManagerMixin | None",
    "set_peer_manager": "(instance) -> None",
}
PEER_MANAGER_METHODS = {
    "_update_peer_reputation": "(self, peer_addr_or_node_id, success) -> None",
    "_save_peer_to_cache": "(self, node_id, host, port, tailscale_ip=None) -> None",
    "_get_bootstrap_peers_by_reputation": "(self, limit=5) -> list[str]",
    "_get_peer_health_score": "(self, peer_id) -> float",
    "_record_p2p_sync_result": "(self, peer_id, success) -> None",
    "_get_cached_peer_count": "(self) -> int",
    "_clear_peer_cache": "(self) -> int",
    "_prune_stale_peers": "(self, max_age_seconds=86400) -> int",
    "peer_health_check": "(self) -> dict[str, Any]",
}
LEADER_ELECTION_MODULE = {
    "check_quorum": "(voters, alive_peers, self_node_id) -> bool",
    "check_quorum_strict": "(voters, alive_peers, self_node_id) -> tuple[bool, str]",
    "should_block_election": ("(voters, alive_peers, self_node_id, *, coordinators=None, current_leader=None, "
                              "leader_lease_expires=None, now=None) -> tuple[bool, str]"),
}
LEADER_ELECTION_METHODS = {
    "_has_voter_quorum": "(self) -> bool",
    "_check_quorum_health": "(self) -> QuorumHealthLevel",
    "_start_election_timing": "(self) -> None",
    "_record_election_latency": "(self, outcome) -> float",
    "get_election_latency_stats": "(self) -> dict[str, Any]",
    "_get_voter_config_version": "(self) -> int",
    "_get_voter_config_hash": "(self) -> str",
    "_get_voter_promotion_cb": "(self) -> VoterPromotionCircuitBreaker",
    "_release_voter_grant_if_self": "(self) -> bool",
    "_notify_voters_lease_revoked": "(self) -> int",
    "get_authoritative_leader": "(self) -> str | None",
    "get_quorum_health_status": "(self) -> dict[str, Any]",
    "election_health_check": "(self) -> dict[str, Any]",
    "get_cluster_metrics": "(self) -> dict[str, Any]",  # ours: the §7 values, for hosts without a node
}
BRIDGE = {
    "attach": "(host, node) -> None",
    "detach": "(host) -> ClusterNode | None",
    "attached_node": "(host) -> ClusterNode | None",
    "alive_peer_ids": "(host) -> frozenset[str]",
    "to_node_id": "(host, value) -> str | None",
    "split_address": "(value) -> tuple[str, int | None]",
    "drain_leadership_events": "(host) -> list[LeadershipEvent]",
}


def public_methods(cls: type) -> dict[str, str]:
    """Methods the class adds (its internals, prefixed _pm_ / _le_, excluded)."""
    return {name: render(f) for name, f in vars(cls).items()
            if callable(f) and not name.startswith(("__", "_pm_", "_le_"))}


def test_peer_manager_surface() -> None:
    assert set(pm.__all__) == {"PeerManagerMixin", "get_peer_manager", "set_peer_manager",
                               "PEER_CACHE_MAX_ENTRIES", "PEER_CACHE_TTL_SECONDS", "PEER_REPUTATION_ALPHA"}
    assert {name: render(getattr(pm, name)) for name in PEER_MANAGER_MODULE} == PEER_MANAGER_MODULE
    assert public_methods(pm.PeerManagerMixin) == PEER_MANAGER_METHODS
    assert (pm.PEER_CACHE_MAX_ENTRIES, pm.PEER_CACHE_TTL_SECONDS, pm.PEER_REPUTATION_ALPHA) == (200, 604800, 0.2)


def test_leader_election_surface() -> None:
    assert set(le.__all__) == {"QuorumHealthLevel", "QuorumFailureEvent", "VoterPromotionCircuitBreaker",
                               "check_quorum", "check_quorum_strict", "should_block_election",
                               "VOTER_MIN_QUORUM", "LeaderElectionMixin"}
    assert {name: render(getattr(le, name)) for name in LEADER_ELECTION_MODULE} == LEADER_ELECTION_MODULE
    assert public_methods(le.LeaderElectionMixin) == LEADER_ELECTION_METHODS
    assert inspect.iscoroutinefunction(le.LeaderElectionMixin._notify_voters_lease_revoked)
    assert not any(inspect.iscoroutinefunction(getattr(le.LeaderElectionMixin, name))
                   for name in LEADER_ELECTION_METHODS if name != "_notify_voters_lease_revoked")
    assert not any(inspect.iscoroutinefunction(getattr(pm.PeerManagerMixin, name)) for name in PEER_MANAGER_METHODS)


def test_leader_election_types() -> None:
    assert issubclass(le.QuorumHealthLevel, str) and issubclass(le.QuorumHealthLevel, enum.Enum)
    assert {m.name: m.value for m in le.QuorumHealthLevel} == {
        "HEALTHY": "healthy", "DEGRADED": "degraded", "MINIMUM": "minimum", "LOST": "lost"}
    assert [f.name for f in dataclasses.fields(le.QuorumFailureEvent)] == [
        "node_id", "previous_level", "alive_voters", "total_voters", "quorum_required", "missing_voters",
        "timestamp", "level"]
    breaker = le.VoterPromotionCircuitBreaker
    assert render(breaker.__init__) == "(self, failure_threshold=3, reset_timeout_s=300.0, *, clock=<built-in function monotonic>) -> None"
    for name, text in {"can_attempt": "(self) -> bool", "record_success": "(self) -> None",
                       "record_failure": "(self, reason='') -> None", "reset": "(self) -> None",
                       "status": "(self) -> dict[str, Any]"}.items():
        assert render(getattr(breaker, name)) == text
    assert isinstance(le.VOTER_MIN_QUORUM, int)


def test_host_bridge_surface() -> None:
    assert set(host_bridge.__all__) == set(BRIDGE)
    assert {name: render(getattr(host_bridge, name)) for name in BRIDGE} == BRIDGE
