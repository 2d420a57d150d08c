"""The adapters against the host's own modules: every member of the host's ``leader_election.py``
and ``peer_manager.py`` (name, parameters, defaults, async or not, class attributes, constants).

The expected tables below are transcribed from the host's modules as read (RingRift,
``ai-service/scripts/p2p/leader_election.py`` and ``peer_manager.py``), not from the adapters:
a renamed parameter, a changed default, a sync method turned async or a missing name fails here
before it breaks the host. What the adapters add on top is listed separately (``OURS``) and must
only add: optional keyword-only parameters, extra members.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import adapters.leader_election as le
import adapters.peer_manager as pm
from ringrift_cluster import host_bridge

ROOT = Path(__file__).resolve().parents[2]


def params(func: Callable[..., Any]) -> str:
    """``(self, a, b=1)``: parameter names and defaults as written, no annotations."""
    parts: list[str] = []
    star = False
    for p in inspect.signature(func).parameters.values():
        if p.kind is p.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        parts.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}")
    return f"({', '.join(parts)})"


# -- The host's leader_election.py ---------------------------------------------------------------

# name -> (parameters, is async)
HOST_LEADER_ELECTION_METHODS = {
    "_start_election_timing": ("(self)", False),
    "_record_election_latency": ("(self, outcome)", False),
    "get_election_latency_stats": ("(self)", False),
    "_check_election_timeout": ("(self)", False),
    "_get_voter_promotion_cb": ("(self)", False),
    "_calculate_dynamic_quorum": ("(self, alive_voters)", False),
    "_has_voter_quorum": ("(self)", False),
    "_get_voter_config_version": ("(self)", False),
    "_get_voter_config_hash": ("(self)", False),
    "_check_quorum_health": ("(self)", False),
    "_update_quorum_metrics": ("(self, level, alive, total, quorum)", False),
    "_on_quorum_health_changed": ("(self, old_level, new_level, alive, total, quorum)", False),
    "get_quorum_health_status": ("(self)", False),
    "_can_enter_single_node_mode": ("(self)", False),
    "_release_voter_grant_if_self": ("(self)", False),
    "_notify_voters_lease_revoked": ("(self)", True),
    "_get_voter_quorum_status": ("(self)", False),
    "get_priority_voters_for_recovery": ("(self)", False),
    "get_quorum_recovery_status": ("(self)", False),
    "_should_promote_voter": ("(self)", False),
    "_rank_voter_candidates": ("(self)", False),
    "_promote_to_voter": ("(self, node_id)", True),
    "_maybe_promote_voter": ("(self)", True),
    "_broadcast_voter_change": ("(self, action, node_id)", True),
    "_check_dynamic_voter_health": ("(self)", False),
    "_check_leader_consistency": ("(self)", False),
    "_check_lease_expiry": ("(self)", False),
    "_has_voter_consensus_on_leader": ("(self, proposed_leader)", False),
    "_count_votes_for_leader": ("(self, leader_id)", False),
    "_detect_split_brain": ("(self)", False),
    "_resolve_split_brain": ("(self, leaders_seen)", False),
    "_use_raft_for_leadership": ("(self)", False),
    "_get_raft_leader_node_id": ("(self)", False),
    "_sync_leader_from_raft": ("(self)", False),
    "get_authoritative_leader": ("(self)", False),
    "election_health_check": ("(self)", False),
    "health_check": ("(self)", False),
    "_rank_leader_candidates": ("(self)", False),
    "_compute_leader_priority": ("(self, node_id)", False),
    "update_leader_candidates": ("(self)", False),
    "get_leader_candidates": ("(self, max_count=3)", False),
    "get_backup_leader_candidates": ("(self)", False),
}
HOST_LEADER_ELECTION_ATTRIBUTES = {
    "MIXIN_TYPE": "leader_election",
    "ELECTION_TIMEOUT_THRESHOLD_SECONDS": 30.0,
    "_voter_promotion_cb": None,
    "_election_started_at": 0.0,
    "_last_election_latency_seconds": 0.0,
    "_election_latencies": None,
    "_elections_completed": 0,
    "_elections_won": 0,
    "_elections_lost": 0,
    "_elections_timeout": 0,
    "_last_quorum_health_level": None,
    "_quorum_lost_at": None,
    "_single_node_mode": False,
    "_last_healthy_quorum_at": None,
    "_last_healthy_voter_list": None,
    "_current_failure_event": None,
    "_top_leader_candidates": [],
    "_candidates_updated_at": 0.0,
}
HOST_LEADER_ELECTION_FUNCTIONS = {
    "check_quorum": "(voters, alive_peers, self_node_id)",
    "check_quorum_strict": "(voters, alive_peers, self_node_id)",
    "should_block_election": "(voters, alive_peers, self_node_id)",
}
HOST_LEADER_ELECTION_CONSTANTS = {
    "VOTER_MIN_QUORUM": 2,
    "CONSENSUS_MODE": "bully",
    "RAFT_ENABLED": False,
    "LEADER_LEASE_EXPIRY_GRACE_SECONDS": 60,
    "SINGLE_NODE_FALLBACK_TIMEOUT": 180,
    "ALLOW_SINGLE_NODE_FALLBACK": True,
    "QUORUM_STALE_GRACE_SECONDS": 60,
    "DYNAMIC_VOTER_ENABLED": False,
    "VOTER_QUORUM_MARGIN": 1,
    "VOTER_MIN_UPTIME_SECONDS": 300.0,
    "VOTER_MAX_ERROR_RATE": 0.10,
    "DYNAMIC_VOTER_PROMOTION_DELAY": 60,
    "VOTER_PROMOTION_CIRCUIT_BREAKER_FAILURES": 3,
    "VOTER_PROMOTION_CIRCUIT_BREAKER_TIMEOUT": 300,
    "VOTER_PROMOTION_COOLOFF_PERIOD": 300,
}
# The RINGRIFT_* variable each constant is read from (the host's names).
HOST_LEADER_ELECTION_ENV = {
    "VOTER_MIN_QUORUM": ("RINGRIFT_VOTER_MIN_QUORUM", "3", 3),
    "CONSENSUS_MODE": ("RINGRIFT_CONSENSUS_MODE", "raft", "raft"),
    "RAFT_ENABLED": ("RINGRIFT_RAFT_ENABLED", "true", True),
    "LEADER_LEASE_EXPIRY_GRACE_SECONDS": ("RINGRIFT_LEADER_LEASE_EXPIRY_GRACE_SECONDS", "15", 15),
    "SINGLE_NODE_FALLBACK_TIMEOUT": ("RINGRIFT_SINGLE_NODE_FALLBACK_TIMEOUT", "30", 30),
    "ALLOW_SINGLE_NODE_FALLBACK": ("RINGRIFT_ALLOW_SINGLE_NODE", "false", False),
    "QUORUM_STALE_GRACE_SECONDS": ("RINGRIFT_QUORUM_STALE_GRACE", "5", 5),
    "DYNAMIC_VOTER_ENABLED": ("RINGRIFT_P2P_DYNAMIC_VOTER", "true", True),
    "DYNAMIC_VOTER_PROMOTION_DELAY": ("RINGRIFT_P2P_DYNAMIC_VOTER_PROMOTION_DELAY", "9", 9),
}
HOST_BREAKER = {
    "__init__": ("(self, failure_threshold=3, timeout_seconds=300)", False),
    "record_failure": ("(self)", False),
    "record_success": ("(self)", False),
    "_reset": ("(self)", False),
    "get_status": ("(self)", False),
}
HOST_BREAKER_PROPERTIES = {"is_open", "cooloff_active"}
HOST_QUORUM_LEVELS = {"HEALTHY": "healthy", "DEGRADED": "degraded", "MINIMUM": "minimum", "LOST": "lost"}
HOST_FAILURE_EVENT_FIELDS = ["timestamp", "previous_level", "failure_id"]  # failure_id has a default

# -- The host's peer_manager.py ------------------------------------------------------------------

HOST_PEER_MANAGER_METHODS = {
    "_update_peer_reputation": ("(self, peer_addr_or_node_id, success)", False),
    "_save_peer_to_cache": ("(self, node_id, host, port, tailscale_ip=None)", False),
    "_get_bootstrap_peers_by_reputation": ("(self, limit=5)", False),
    "_get_peer_health_score": ("(self, peer_id)", False),
    "_record_p2p_sync_result": ("(self, peer_id, success)", False),
    "_get_cached_peer_count": ("(self)", False),
    "_clear_peer_cache": ("(self)", False),
    "_prune_stale_peers": ("(self, max_age_seconds=86400)", False),
    "peer_health_check": ("(self)", False),
    "health_check": ("(self)", False),
}
HOST_PEER_MANAGER_ATTRIBUTES = {"MIXIN_TYPE": "peer_manager"}
HOST_PEER_MANAGER_FUNCTIONS = {"get_peer_manager": "()", "set_peer_manager": "(instance)"}
HOST_PEER_MANAGER_CONSTANTS = {"PEER_CACHE_MAX_ENTRIES": 200, "PEER_CACHE_TTL_SECONDS": 604800,
                               "PEER_REPUTATION_ALPHA": 0.2, "_peer_manager": None}

# -- What the adapters add (README, "What changes") ---------------------------------------------

OURS = {
    "LeaderElectionMixin": {"get_cluster_metrics"},
    "PeerManagerMixin": set(),
    "should_block_election": {"coordinators", "current_leader", "leader_lease_expires", "now"},
}


def own_methods(cls: type) -> dict[str, tuple[str, bool]]:
    """Methods the class defines (its internals, prefixed _pm_ / _le_, excluded)."""
    return {name: (params(f), inspect.iscoroutinefunction(f)) for name, f in vars(cls).items()
            if inspect.isfunction(f) and not name.startswith(("__", "_pm_", "_le_"))}


def test_leader_election_mixin_has_every_host_method() -> None:
    ours = own_methods(le.LeaderElectionMixin)
    assert {n: ours.get(n) for n in HOST_LEADER_ELECTION_METHODS} == HOST_LEADER_ELECTION_METHODS
    assert set(ours) - set(HOST_LEADER_ELECTION_METHODS) == OURS["LeaderElectionMixin"]


def test_leader_election_mixin_has_every_host_attribute() -> None:
    for name, default in HOST_LEADER_ELECTION_ATTRIBUTES.items():
        assert name in vars(le.LeaderElectionMixin), name
        assert getattr(le.LeaderElectionMixin, name) == default, name


def test_leader_election_module_functions_and_constants() -> None:
    for name, expected in HOST_LEADER_ELECTION_FUNCTIONS.items():
        func = getattr(le, name)
        signature = inspect.signature(func)
        host_part = [p for p in signature.parameters.values() if p.kind is not p.KEYWORD_ONLY]
        extra = [p for p in signature.parameters.values() if p.kind is p.KEYWORD_ONLY]
        assert f"({', '.join(p.name for p in host_part)})" == expected, name
        assert {p.name for p in extra} == OURS.get(name, set()), name
        assert all(p.default is not p.empty for p in extra), name  # additions are optional
        assert not inspect.iscoroutinefunction(func)
    for name, value in HOST_LEADER_ELECTION_CONSTANTS.items():
        assert name in le.__all__, name
    assert set(HOST_LEADER_ELECTION_CONSTANTS) | {"QuorumHealthLevel", "QuorumFailureEvent",
                                                   "VoterPromotionCircuitBreaker", "LeaderElectionMixin",
                                                   *HOST_LEADER_ELECTION_FUNCTIONS} == set(le.__all__)


def _import_values(module: str, names: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = f"import {module} as m; print(repr([getattr(m, n) for n in {names!r}]))"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RINGRIFT_")}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**clean, "PYTHONPATH": str(ROOT), **env})


def test_leader_election_constants_have_the_host_defaults_and_env_overrides() -> None:
    names = list(HOST_LEADER_ELECTION_CONSTANTS)
    done = _import_values("adapters.leader_election", names, {})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == repr(list(HOST_LEADER_ELECTION_CONSTANTS.values()))
    env = {var: raw for var, raw, _ in HOST_LEADER_ELECTION_ENV.values()}
    done = _import_values("adapters.leader_election", list(HOST_LEADER_ELECTION_ENV), env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == repr([value for _, _, value in HOST_LEADER_ELECTION_ENV.values()])
    bad = _import_values("adapters.leader_election", ["QUORUM_STALE_GRACE_SECONDS"],
                         {"RINGRIFT_QUORUM_STALE_GRACE": "soon"})
    assert bad.returncode != 0 and "RINGRIFT_QUORUM_STALE_GRACE: got 'soon'" in bad.stderr


def test_leader_election_types() -> None:
    assert issubclass(le.QuorumHealthLevel, str) and issubclass(le.QuorumHealthLevel, enum.Enum)
    assert {m.name: m.value for m in le.QuorumHealthLevel} == HOST_QUORUM_LEVELS
    fields = dataclasses.fields(le.QuorumFailureEvent)
    assert [f.name for f in fields][:3] == HOST_FAILURE_EVENT_FIELDS
    assert all(f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
               for f in fields[2:])  # failure_id and our extra fields are optional
    event = le.QuorumFailureEvent(timestamp=1.0, previous_level=le.QuorumHealthLevel.MINIMUM)
    assert len(event.failure_id) == 8 and event.failure_id != le.QuorumFailureEvent(1.0, le.QuorumHealthLevel.LOST).failure_id
    breaker = le.VoterPromotionCircuitBreaker
    assert {n: (params(getattr(breaker, n)), inspect.iscoroutinefunction(getattr(breaker, n)))
            for n in HOST_BREAKER} == HOST_BREAKER
    for name in HOST_BREAKER_PROPERTIES:
        assert isinstance(vars(breaker)[name], property), name


def test_peer_manager_surface() -> None:
    ours = own_methods(pm.PeerManagerMixin)
    assert {n: ours.get(n) for n in HOST_PEER_MANAGER_METHODS} == HOST_PEER_MANAGER_METHODS
    assert set(ours) - set(HOST_PEER_MANAGER_METHODS) == OURS["PeerManagerMixin"]
    for name, default in HOST_PEER_MANAGER_ATTRIBUTES.items():
        assert vars(pm.PeerManagerMixin)[name] == default
    assert {name: params(getattr(pm, name)) for name in HOST_PEER_MANAGER_FUNCTIONS} == HOST_PEER_MANAGER_FUNCTIONS
    assert not any(inspect.iscoroutinefunction(getattr(pm, n)) for n in HOST_PEER_MANAGER_FUNCTIONS)
    done = _import_values("adapters.peer_manager", list(HOST_PEER_MANAGER_CONSTANTS), {})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == repr(list(HOST_PEER_MANAGER_CONSTANTS.values()))


BRIDGE = {
    "attach": "(host, node)",
    "detach": "(host)",
    "attached_node": "(host)",
    "alive_peer_ids": "(host)",
    "to_node_id": "(host, value)",
    "split_address": "(value)",
    "drain_leadership_events": "(host)",
    "leader_reports": "(host)",
    "raft_leads": "(host)",
    "step_down": "(host, reason)",
}


def test_host_bridge_surface() -> None:
    assert set(host_bridge.__all__) == set(BRIDGE) | {"LeaderReport"}
    assert {name: params(getattr(host_bridge, name)) for name in BRIDGE} == BRIDGE
