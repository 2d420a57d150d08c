"""One test per member the host's leader_election.py has and the adapter gained (issue 13), on a
minimal host object without a node: the host's semantics, or ours where README says so."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
from adapter_hosts import D, H, L, M, LegacyHost

import adapters.leader_election as le
from adapters.leader_election import LeaderElectionMixin
from ringrift_cluster.testing.stubs import ManualClock


class Events:
    """The host's ``_emit_event(event_type, payload)`` hook, recording."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, event_type: str, payload: dict[str, Any]) -> None:
        self.seen.append((event_type, payload))

    def of(self, event_type: str) -> list[dict[str, Any]]:
        return [p for t, p in self.seen if t == event_type]


def make_host(tmp_path: Path, n: int = 3, alive: int | None = None, me: str = "node-1") -> tuple[LegacyHost, Events]:
    """``me`` among voters node-1..node-n; the first ``alive`` voters (``me`` included) alive."""
    voters = [f"node-{i}" for i in range(1, n + 1)]
    host = LegacyHost(tmp_path / "p2p.db", me, voters=voters)
    alive = n if alive is None else alive
    for i, v in enumerate(voters):
        if v != me:
            host.add_peer(v, f"10.0.0.{i + 1}", 8770, alive=i < alive)
    events = Events()
    host._emit_event = events  # type: ignore[attr-defined]
    return host, events


# -- Election timing ----------------------------------------------------------------------------


def test_check_election_timeout(tmp_path: Path, clocks: tuple[ManualClock, ManualClock]) -> None:
    mono, _ = clocks
    host, events = make_host(tmp_path)
    idle = {"election_stuck": False, "duration_seconds": 0.0, "should_escalate": False, "action_taken": None}
    assert host._check_election_timeout() == idle
    host._start_election_timing()
    mono.now += 10
    assert host._check_election_timeout() == {**idle, "duration_seconds": 10.0}
    mono.now += 21
    assert host._check_election_timeout() == {"election_stuck": True, "duration_seconds": 31.0,
                                              "should_escalate": True, "action_taken": "election_timer_reset"}
    assert host._check_election_timeout() == idle  # the timer was reset
    stats = host.get_election_latency_stats()
    assert stats["elections_timeout"] == 1 and stats["election_in_progress"] is False
    assert host._elections_timeout == 1 and host._election_started_at == 0.0
    (payload,) = events.of("ELECTION_TIMEOUT_DETECTED")
    assert payload["duration_seconds"] == 31.0 and payload["threshold_seconds"] == 30.0


# -- Quorum -------------------------------------------------------------------------------------


def test_calculate_dynamic_quorum_is_a_majority_of_the_configured_voters(tmp_path: Path) -> None:
    host, _ = make_host(tmp_path, n=5)
    # The host's majority of the alive voters (1 -> 1, 2 -> 2) is not used: 3 of 5, always.
    assert [host._calculate_dynamic_quorum(a) for a in range(6)] == [3, 3, 3, 3, 3, 3]
    host.voter_node_ids = []
    assert host._calculate_dynamic_quorum(2) == 0


def test_update_quorum_metrics_and_on_quorum_health_changed(tmp_path: Path) -> None:
    host, events = make_host(tmp_path, n=3)
    host._update_quorum_metrics(L, 1, 3, 2)
    state = host._le_state()
    assert (state.quorum_level, state.quorum_alive, state.quorum_total, state.quorum_margin, state.quorum_status) == (
        0, 1, 3, -1, 0)
    host._on_quorum_health_changed(D, M, 2, 3, 2)
    assert (state.quorum_level, state.quorum_margin) == (1, 0)
    (payload,) = events.of("QUORUM_HEALTH_CHANGED")
    assert {k: payload[k] for k in ("old_level", "new_level", "alive_voters", "total_voters", "quorum_required",
                                    "node_id")} == {
        "old_level": "degraded", "new_level": "minimum", "alive_voters": 2, "total_voters": 3,
        "quorum_required": 2, "node_id": "node-1"}
    # Called by the quorum evaluation itself on every change of level, never when it stays.
    events.seen.clear()
    assert host._check_quorum_health() is D
    host.set_alive("node-2", False)
    assert host._check_quorum_health() is M and host._check_quorum_health() is M
    assert [(p["old_level"], p["new_level"]) for p in events.of("QUORUM_HEALTH_CHANGED")] == [("degraded", "minimum")]
    assert host._last_quorum_health_level is M


def test_quorum_tracking_attributes_and_no_grace(tmp_path: Path, clocks: tuple[ManualClock, ManualClock]) -> None:
    _, wall = clocks
    host, _ = make_host(tmp_path, n=3)
    assert host._check_quorum_health() is D
    assert host._last_healthy_voter_list == ["node-1", "node-2", "node-3"] and host._last_healthy_quorum_at == wall.now
    host.set_alive("node-2", False)
    host.set_alive("node-3", False)
    wall.now += 5
    assert host._check_quorum_health() is L  # at once: no stale-quorum grace, no single-node fallback
    assert host._quorum_lost_at == wall.now and host._single_node_mode is False
    assert host._current_failure_event is not None and host._current_failure_event.previous_level is D
    status = host.get_quorum_health_status()
    assert {k: status[k] for k in ("health_level", "alive_voters", "total_voters", "quorum_required", "margin",
                                    "is_healthy", "is_at_risk", "is_lost")} == {
        "health_level": "lost", "alive_voters": 1, "total_voters": 3, "quorum_required": 2, "margin": -1,
        "is_healthy": False, "is_at_risk": False, "is_lost": True}
    assert status["single_node_fallback"]["active"] is False and status["single_node_fallback"]["time_until_fallback"] is None
    assert status["partition_tolerance"]["within_grace_period"] is False
    assert status["partition_tolerance"]["current_failure_event"]["previous_level"] == "degraded"
    wall.now += 3600  # however long it stays lost
    assert host._check_quorum_health() is L
    host.set_alive("node-2", True)
    assert host._check_quorum_health() is M
    assert host._current_failure_event is None and host._quorum_lost_at is None


def test_can_enter_single_node_mode(tmp_path: Path) -> None:
    host, _ = make_host(tmp_path, n=3, alive=1)
    assert host._can_enter_single_node_mode() is False  # 1 of 3 voters is no majority, ever
    host.voter_node_ids = ["node-1"]
    assert host._can_enter_single_node_mode() is True  # by itself a majority of one
    # No voters (quorum off): the host's rule, lowest id among the alive, no preferred leader.
    host.voter_node_ids = []
    host.set_alive("node-2", True)
    assert host._can_enter_single_node_mode() is True
    other, _ = make_host(tmp_path, n=3, me="node-2")
    other.voter_node_ids = []
    assert other._can_enter_single_node_mode() is False  # node-1 is alive and lower
    host._preferred_leader_id = "node-3"  # type: ignore[attr-defined]
    assert host._can_enter_single_node_mode() is False
    host._preferred_leader_id = None  # type: ignore[attr-defined]
    host.peers["node-2"].single_node_mode = True  # type: ignore[attr-defined]
    assert host._can_enter_single_node_mode() is False


def test_get_voter_quorum_status(tmp_path: Path) -> None:
    host, _ = make_host(tmp_path, n=3, alive=2)
    assert host._get_voter_quorum_status() == {"voters": ["node-1", "node-2", "node-3"], "alive": 2,
                                               "alive_list": ["node-1", "node-2"], "total": 3,
                                               "quorum_required": 2, "quorum_met": True}
    host.voter_node_ids = []
    assert host._get_voter_quorum_status() == {"voters": [], "alive": 0, "total": 0, "quorum_met": True}


def test_priority_voters_and_recovery_status(tmp_path: Path) -> None:
    host, _ = make_host(tmp_path, n=5, alive=3)
    assert host.get_priority_voters_for_recovery() == ["node-1", "node-2", "node-3", "node-4", "node-5"]
    assert host._check_quorum_health() is M  # last healthy: node-1..3
    host.set_alive("node-3", False)
    host.set_alive("node-2", False)
    status = host.get_quorum_recovery_status()
    assert status == {"quorum_required": 3, "current_alive": 1, "voters_needed_for_quorum": 2,
                      "priority_voters": ["node-1", "node-2", "node-3", "node-4", "node-5"],
                      "last_healthy_voters": ["node-1", "node-2", "node-3"],
                      "offline_healthy_voters": ["node-2", "node-3"], "recovery_possible": True}
    host.set_alive("node-5", True)
    host.set_alive("node-4", True)
    assert host._check_quorum_health() is M
    assert host.get_priority_voters_for_recovery()[:3] == ["node-1", "node-4", "node-5"]
    host.voter_node_ids = []
    assert host.get_priority_voters_for_recovery() == []
    assert host.get_quorum_recovery_status()["quorum_required"] == 0


# -- Dynamic voters -----------------------------------------------------------------------------


@pytest.fixture
def dynamic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(le, "DYNAMIC_VOTER_ENABLED", True)


def candidate_host(tmp_path: Path, clocks: tuple[ManualClock, ManualClock]) -> LegacyHost:
    _, wall = clocks
    host, _ = make_host(tmp_path, n=3)
    for name, age, errors, requests, seen in (("node-7", 7200, 0, 100, 12), ("node-8", 3600, 1, 100, 3),
                                              ("node-9", 60, 0, 100, 5), ("node-10", 7200, 50, 100, 5)):
        info = host.add_peer(name, "10.0.1.1", 8770)
        info.first_seen, info.error_count, info.request_count, info.peer_count = (  # type: ignore[attr-defined]
            wall.now - age, errors, requests, seen)
    host.add_peer("node-11", "10.0.1.2", 8770, alive=False).first_seen = wall.now - 9999  # type: ignore[attr-defined]
    host.add_peer("10.0.1.3:7947", "10.0.1.3", 7947, key="10.0.1.3:7947").node_id = "10.0.1.3:7947"
    return host


def test_should_promote_voter(tmp_path: Path, dynamic: None, monkeypatch: pytest.MonkeyPatch) -> None:
    host, _ = make_host(tmp_path, n=3)
    assert host._should_promote_voter() is True  # 3 alive <= quorum 2 + margin 1
    big, _ = make_host(tmp_path, n=5)
    assert big._should_promote_voter() is False  # 5 alive > 3 + 1
    host.set_alive("node-2", False)
    host.set_alive("node-3", False)
    assert host._should_promote_voter() is False  # no majority: a minority must not grow its voters
    monkeypatch.setattr(le, "DYNAMIC_VOTER_ENABLED", False)
    host.set_alive("node-2", True)
    assert host._should_promote_voter() is False


def test_rank_voter_candidates(tmp_path: Path, clocks: tuple[ManualClock, ManualClock]) -> None:
    host = candidate_host(tmp_path, clocks)
    ranked = host._rank_voter_candidates()
    # node-9 too young, node-10 too many errors, node-11 dead, the SWIM address never a candidate
    assert [c["node_id"] for c in ranked] == ["node-7", "node-8"]
    assert ranked[0] == {"node_id": "node-7", "score": pytest.approx(2 + 10 + 12), "uptime": 7200.0,
                         "error_rate": 0.0, "peer_count": 12}
    assert ranked[1]["error_rate"] == pytest.approx(0.01)


async def test_promote_to_voter(tmp_path: Path, clocks: tuple[ManualClock, ManualClock]) -> None:
    host = candidate_host(tmp_path, clocks)
    events = host._emit_event  # type: ignore[attr-defined]
    saved: list[bool] = []
    broadcasts: list[tuple[str, str]] = []
    host._save_state = lambda: saved.append(True)  # type: ignore[attr-defined]

    async def broadcast(action: str, node_id: str) -> int:
        broadcasts.append((action, node_id))
        return 0

    host._broadcast_voter_change = broadcast  # type: ignore[method-assign]
    assert await host._promote_to_voter("10.0.1.3:7947") is False  # an address, never a voter
    assert await host._promote_to_voter("node-11") is False  # not alive
    assert await host._promote_to_voter("node-7") is True
    assert host.voter_node_ids == ["node-1", "node-2", "node-3", "node-7"]
    assert saved == [True] and broadcasts == [("promote", "node-7")]
    assert events.of("VOTER_PROMOTED") == [{"node_id": "node-7", "total_voters": 4, "quorum_required": 3}]
    assert await host._promote_to_voter("node-7") is True and broadcasts == [("promote", "node-7")]  # already
    for peer in ("node-2", "node-3"):
        host.set_alive(peer, False)
    assert await host._promote_to_voter("node-8") is False  # 2 of 4 voters alive: no majority


async def test_maybe_promote_voter_goes_through_the_circuit_breaker(tmp_path: Path, clocks: tuple[ManualClock, ManualClock],
                                                                    dynamic: None) -> None:
    _, wall = clocks
    host = candidate_host(tmp_path, clocks)
    results = iter([False, False, False, True])

    async def promote(node_id: str) -> bool:
        return next(results)

    host._promote_to_voter = promote  # type: ignore[method-assign]
    breaker = host._get_voter_promotion_cb()
    for _ in range(3):
        assert await host._maybe_promote_voter() is False
    assert breaker.is_open and breaker.get_status()["failure_count"] == 3
    assert await host._maybe_promote_voter() is False  # open: not even tried
    wall.now += le.VOTER_PROMOTION_CIRCUIT_BREAKER_TIMEOUT + 1
    assert await host._maybe_promote_voter() is True
    assert breaker.cooloff_active and not breaker.is_open
    assert await host._maybe_promote_voter() is False  # cooling off


class _Peer(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, Any]]] = []
    status = 200

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append((self.path, body))
        self.send_response(self.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def peer_servers() -> Iterator[list[ThreadingHTTPServer]]:
    _Peer.received = []
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Peer),
               ThreadingHTTPServer(("127.0.0.1", 0), type("_Missing", (_Peer,), {"status": 404}))]
    for server in servers:
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield servers
    for server in servers:
        server.shutdown()
        server.server_close()


async def test_broadcast_voter_change(tmp_path: Path, peer_servers: list[ThreadingHTTPServer]) -> None:
    host = LegacyHost(tmp_path / "p2p.db", "node-1", voters=["node-1", "node-2"])
    host.add_peer("node-2", "127.0.0.1", peer_servers[0].server_address[1])
    host.add_peer("node-3", "127.0.0.1", peer_servers[1].server_address[1])  # answers 404
    host.add_peer("node-4", "127.0.0.1", 1, alive=False)  # dead: not asked
    assert await host._broadcast_voter_change("promote", "node-3") == 1
    assert len(_Peer.received) == 2
    path, body = _Peer.received[0]
    assert path == "/election/voter_update"
    assert set(body) == {"action", "node_id", "voters", "source_node", "timestamp"}
    assert (body["action"], body["node_id"], body["voters"], body["source_node"]) == (
        "promote", "node-3", ["node-1", "node-2"], "node-1")


def test_check_dynamic_voter_health(tmp_path: Path, clocks: tuple[ManualClock, ManualClock], dynamic: None) -> None:
    host = candidate_host(tmp_path, clocks)
    report = host._check_dynamic_voter_health()
    assert {k: v for k, v in report.items() if k != "top_candidate"} == {
        "dynamic_voter_enabled": True, "total_voters": 3, "alive_voters": 3, "quorum_required": 2,
        "margin_threshold": 3, "should_promote": True, "candidate_count": 2}
    assert report["top_candidate"]["node_id"] == "node-7"


# -- Leader consistency, lease expiry, votes, split-brain ------------------------------------------


def test_check_leader_consistency(tmp_path: Path) -> None:
    host, _ = make_host(tmp_path)
    assert host._check_leader_consistency() == (True, "consistent")
    host.leader_id = "node-1"
    assert host._check_leader_consistency() == (False, "leader_id=self but role!=leader")
    host.role = "leader"
    assert host._check_leader_consistency() == (True, "consistent")
    host.leader_id = "node-2"
    assert host._check_leader_consistency() == (False, "role=leader but leader_id!=self")


def test_check_lease_expiry(tmp_path: Path, clocks: tuple[ManualClock, ManualClock]) -> None:
    _, wall = clocks
    host, events = make_host(tmp_path)
    assert host._check_lease_expiry()["lease_stale"] is False  # no leader
    host.leader_id, host.leader_lease_expires = "node-2", wall.now - 30
    report = host._check_lease_expiry()
    assert report == {"lease_stale": False, "lease_remaining": -30.0, "grace_exceeded_by": 0,
                      "event_emitted": False, "leader_id": "node-2"}
    host.leader_lease_expires = wall.now - 70
    report = host._check_lease_expiry()
    assert report["lease_stale"] is True and report["grace_exceeded_by"] == 10.0 and report["event_emitted"] is True
    assert events.of("LEADER_LEASE_EXPIRED")[0]["expired_by_seconds"] == 70.0
    assert host.election_health_check()["is_healthy"] is False  # a stale leader is unhealthy
    host.leader_id = "node-1"  # our own lease: we step down ourselves
    assert host._check_lease_expiry()["lease_stale"] is False


def test_votes_and_consensus_on_a_leader(tmp_path: Path) -> None:
    host, _ = make_host(tmp_path, n=5)
    assert host._count_votes_for_leader("node-2") == 0
    host.leader_id = "node-2"
    for peer, leader in (("node-2", "node-2"), ("node-3", "node-3"), ("node-4", "node-2")):
        host.peers[peer].leader_id = leader
    host.peers["node-5"].leader_id = "node-2"
    host.set_alive("node-5", False)  # a dead voter's report does not count
    assert host._count_votes_for_leader("node-2") == 3
    assert host._has_voter_consensus_on_leader("node-2") is True  # 3 of 5
    host.peers["node-4"].leader_id = "node-3"
    assert host._has_voter_consensus_on_leader("node-2") is False  # 2 of 5: the host's min(2, n) is gone
    host.voter_node_ids = []
    assert host._count_votes_for_leader("node-9") == 1 and host._has_voter_consensus_on_leader("node-9") is True


def test_detect_and_resolve_split_brain(tmp_path: Path) -> None:
    host, events = make_host(tmp_path, n=5)
    assert host._detect_split_brain() is None
    host.role, host.leader_id, host.leader_lease_id, host.leader_lease_expires = "leader", "node-1", "l1", 9e9
    host.voter_grant_leader_id = "node-1"
    host.peers["node-2"].leader_id = "node-1"
    assert host._detect_split_brain() is None  # one leader named
    for peer in ("node-3", "node-4", "node-5"):
        host.peers[peer].leader_id = "node-3"
    report = host._detect_split_brain()
    assert report == {"leaders_seen": {"node-1": ["node-1", "node-2"], "node-3": ["node-3", "node-4", "node-5"]},
                      "severity": "warning", "recommended_action": "wait"}
    assert events.of("SPLIT_BRAIN_DETECTED")[0]["leaders_seen"] == ["node-1", "node-3"]
    # Resolved at once: node-3 has the most votes, so this leader stepped down (the host's fields).
    assert (host.role, host.leader_id, host.leader_lease_id, host.leader_lease_expires) == ("follower", "node-3", "", 0.0)
    assert host.voter_grant_leader_id == "" and events.of("SPLIT_BRAIN_RESOLVED")[0]["canonical_leader"] == "node-3"
    host.peers["node-2"].leader_id = "node-2"
    host.leader_id = "node-1"
    report = host._detect_split_brain()
    assert report["severity"] == "critical" and report["recommended_action"] == "force_election"  # 3 leaders


def test_resolve_split_brain_keeps_the_canonical_leader(tmp_path: Path) -> None:
    host, events = make_host(tmp_path, n=3)
    host.role, host.leader_id = "leader", "node-1"
    host._resolve_split_brain({"node-1": ["node-1"], "node-2": ["node-2"]})  # a tie: the lowest id wins
    assert (host.role, host.leader_id) == ("leader", "node-1") and not events.of("SPLIT_BRAIN_RESOLVED")
    host.role = "follower"
    host._resolve_split_brain({"node-2": ["node-2", "node-3"]})  # not leading: nothing to do
    assert host.leader_id == "node-1"


# -- Raft -----------------------------------------------------------------------------------------


class FakeRaft:
    def __init__(self, leader: str | None) -> None:
        self.leader = leader

    def _getLeader(self) -> str | None:  # noqa: N802 (pysyncobj's name)
        if self.leader == "boom":
            raise RuntimeError("not ready")
        return self.leader


@pytest.fixture
def raft_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[LegacyHost, Events]:
    monkeypatch.setattr(le, "CONSENSUS_MODE", "raft")
    monkeypatch.setattr(le, "RAFT_ENABLED", True)
    host, events = make_host(tmp_path)
    host._raft_initialized = True  # type: ignore[attr-defined]
    host.advertise_host = "10.0.0.1"  # type: ignore[attr-defined]
    host._raft_work_queue = FakeRaft("10.0.0.2:4321")  # type: ignore[attr-defined]
    return host, events


def test_use_raft_for_leadership(raft_host: tuple[LegacyHost, Events], monkeypatch: pytest.MonkeyPatch) -> None:
    host, _ = raft_host
    assert host._use_raft_for_leadership() is True
    host.voter_node_ids = ["node-2", "node-3"]
    assert host._use_raft_for_leadership() is False  # non-voters use the bully fallback
    host.voter_node_ids = ["node-1", "node-2", "node-3"]
    host._raft_initialized = False  # type: ignore[attr-defined]
    assert host._use_raft_for_leadership() is False
    host._raft_initialized = True  # type: ignore[attr-defined]
    monkeypatch.setattr(le, "CONSENSUS_MODE", "hybrid")
    assert host._use_raft_for_leadership() is False


def test_get_raft_leader_node_id(raft_host: tuple[LegacyHost, Events]) -> None:
    host, _ = raft_host
    assert host._get_raft_leader_node_id() == "node-2"  # mapped from its address to its node id
    host._raft_work_queue = FakeRaft("10.0.0.1:4321")  # type: ignore[attr-defined]
    assert host._get_raft_leader_node_id() == "node-1"
    for leader in (None, "10.9.9.9:4321", "boom"):
        host._raft_work_queue = FakeRaft(leader)  # type: ignore[attr-defined]
        assert host._get_raft_leader_node_id() is None
    host.add_peer("node-9", "10.0.0.2", 9999)  # two peers on one address: ambiguous, never guessed
    host._raft_work_queue = FakeRaft("10.0.0.2:4321")  # type: ignore[attr-defined]
    assert host._get_raft_leader_node_id() is None


def test_sync_leader_from_raft(raft_host: tuple[LegacyHost, Events], clocks: tuple[ManualClock, ManualClock]) -> None:
    _, wall = clocks
    host, events = raft_host
    host.role, host.leader_id, host.leader_lease_id = "leader", "node-1", "l1"
    assert host._sync_leader_from_raft() is True
    assert (host.role, host.leader_id, host.leader_lease_id, host.leader_lease_expires) == ("follower", "node-2", "", 0.0)
    assert events.of("P2P_LEADER_CHANGED") == [{"old_leader": "node-1", "new_leader": "node-2", "source": "raft_sync"}]
    assert host._sync_leader_from_raft() is False  # no change
    assert host.get_authoritative_leader() == "node-2"  # Raft first
    host._raft_work_queue = FakeRaft("10.0.0.1:4321")  # type: ignore[attr-defined]
    assert host._sync_leader_from_raft() is True
    assert (host.role, host.leader_id, host.leader_lease_expires) == ("leader", "node-1", wall.now + 300)
    assert events.of("LEADER_ELECTED") == [{"leader_id": "node-1", "source": "raft"}]
    report = host.election_health_check()
    assert report["using_raft_for_leadership"] is True and report["raft_leader_node_id"] == "node-1"


# -- Health and leader candidates -----------------------------------------------------------------


def test_health_check_is_the_host_base_answer(tmp_path: Path) -> None:
    host, _ = make_host(tmp_path, n=3)
    report = LeaderElectionMixin.health_check(host)
    assert report["healthy"] is True and report["message"] == "Election (role=follower, leader=None)"
    assert report["details"]["mixin_type"] == "leader_election" and report["details"]["voter_count"] == 3
    host.set_alive("node-2", False)
    host.set_alive("node-3", False)
    report = LeaderElectionMixin.health_check(host)
    assert (report["healthy"], report["message"]) == (False, "No quorum")


def test_leader_candidates(tmp_path: Path, clocks: tuple[ManualClock, ManualClock]) -> None:
    _, wall = clocks
    host, _ = make_host(tmp_path, n=3, alive=2)
    host._start_time = wall.now - 50  # type: ignore[attr-defined]
    host.add_peer("node-7", "10.0.1.7", 8770)
    host.add_peer("node-8", "10.0.1.8", 8770)
    ranked = host._rank_leader_candidates()
    assert [c["node_id"] for c in ranked[:3]] == sorted(["node-1", "node-2"], key=host._compute_leader_priority) + ["node-3"]
    assert ranked[2]["is_alive"] is False and ranked[2]["is_voter"] is True  # voters first, alive first
    assert {c["node_id"] for c in ranked[3:]} == {"node-7", "node-8"}
    me = next(c for c in ranked if c["is_self"])
    assert me == {"node_id": "node-1", "priority": host._compute_leader_priority("node-1"), "is_alive": True,
                  "is_self": True, "uptime": 50.0, "is_voter": True}
    top = host.update_leader_candidates()
    assert len(top) == 3 and all(c["is_alive"] for c in top) and host._top_leader_candidates == top
    assert host._candidates_updated_at == wall.now
    assert host.get_leader_candidates(max_count=2) == top[:2]
    host.leader_id = top[0]["node_id"]
    assert host.get_backup_leader_candidates() == [c["node_id"] for c in top[1:]]
    host.set_alive("node-7", False)
    assert host.get_leader_candidates() == top  # cached for 30 s
    wall.now += 31
    assert "node-7" not in [c["node_id"] for c in host.get_leader_candidates()]


def test_compute_leader_priority_is_the_same_everywhere(tmp_path: Path) -> None:
    host, _ = make_host(tmp_path)
    priorities = {n: host._compute_leader_priority(n) for n in ("node-1", "node-2", "gpu-box-17")}
    assert all(0 <= p < 1_000_000 for p in priorities.values())
    assert priorities == {n: le._stable_priority(n) for n in priorities}
    # Not Python's per-process salted hash(): a fixed value for a fixed id.
    assert host._compute_leader_priority("node-1") == int.from_bytes(
        __import__("hashlib").sha256(b"node-1").digest()[:8], "big") % 1_000_000


async def test_every_member_reads_only_what_the_hosts_module_reads(tmp_path: Path, clocks: tuple[ManualClock, ManualClock],
                                                                    dynamic: None) -> None:
    host = candidate_host(tmp_path, clocks)

    async def no_network(action: str, node_id: str) -> int:  # the peers' addresses are not routable
        return 0

    host._broadcast_voter_change = no_network  # type: ignore[method-assign]
    host._check_election_timeout()
    host._calculate_dynamic_quorum(2)
    host._update_quorum_metrics(L, 1, 3, 2)
    host._on_quorum_health_changed(D, L, 1, 3, 2)
    host._can_enter_single_node_mode()
    host._get_voter_quorum_status()
    host.get_priority_voters_for_recovery()
    host.get_quorum_recovery_status()
    host._should_promote_voter()
    host._rank_voter_candidates()
    await host._maybe_promote_voter()
    host._check_dynamic_voter_health()
    host._check_leader_consistency()
    host._check_lease_expiry()
    host._has_voter_consensus_on_leader("node-2")
    host._count_votes_for_leader("node-2")
    host._detect_split_brain()
    host._resolve_split_brain({"node-2": ["node-2"]})
    host._use_raft_for_leadership()
    host._get_raft_leader_node_id()
    host._sync_leader_from_raft()
    LeaderElectionMixin.health_check(host)
    host.update_leader_candidates()
    host.get_leader_candidates()
    host.get_backup_leader_candidates()
    host._compute_leader_priority("node-1")
    assert host.foreign_reads() == set()
