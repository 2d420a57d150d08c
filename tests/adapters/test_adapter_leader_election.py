"""Contract of adapters/leader_election.py (legacy-contract.md §1) on a host with only the §1
attributes and no node attached."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import prometheus_client
import pytest
from adapter_hosts import D, H, L, M, LegacyHost

import adapters.leader_election as le
from adapters.leader_election import (
    VOTER_MIN_QUORUM,
    QuorumFailureEvent,
    QuorumHealthLevel,
    VoterPromotionCircuitBreaker,
    check_quorum,
    check_quorum_strict,
    should_block_election,
)
from ringrift_cluster.quorum import QuorumHealth
from ringrift_cluster.testing.stubs import ManualClock

def voters(n: int) -> list[str]:
    return [f"node-{i}" for i in range(1, n + 1)]


def cluster_host(tmp_path: Path, n: int, alive: int, *, self_voter: bool = True) -> LegacyHost:
    """A host among ``n`` voters of which ``alive`` (this node included when it votes) are alive."""
    vs = voters(n)
    me = vs[0] if self_voter else "node-observer"
    host = LegacyHost(tmp_path / "p2p.db", me, voters=vs)
    others = [v for v in vs if v != me]
    up = alive - 1 if self_voter else alive
    for i, v in enumerate(others):
        host.add_peer(v, f"10.0.0.{i + 2}", 8770, alive=i < up)
    return host


# -- Module names ---------------------------------------------------------------------------------


def test_quorum_health_level_is_a_str_enum_mapped_from_ours() -> None:
    assert [lvl.value for lvl in QuorumHealthLevel] == ["healthy", "degraded", "minimum", "lost"]
    assert isinstance(QuorumHealthLevel.LOST, str) and QuorumHealthLevel.LOST == "lost"
    for ours in QuorumHealth:
        mapped = QuorumHealthLevel.from_quorum_health(ours)
        assert mapped.value == ours.value and mapped.level == ours.level
    assert [lvl.level for lvl in QuorumHealthLevel] == [3, 2, 1, 0]


def test_voter_min_quorum_is_exported() -> None:
    assert VOTER_MIN_QUORUM == 2


@pytest.mark.parametrize("n", range(1, 10))
def test_check_quorum_is_a_strict_majority_at_every_voter_count(n: int) -> None:
    vs = voters(n)
    need = n // 2 + 1
    for alive in range(0, n + 1):
        # This node is a voter and alive: it counts.
        if alive >= 1:
            peers = vs[1:alive]
            assert check_quorum(vs, peers, vs[0]) is (alive >= need), (n, alive)
            ok, reason = check_quorum_strict(vs, peers, vs[0])
            assert ok is (alive >= need)
            assert reason == "OK" if ok else reason.startswith(f"Quorum lost: {alive}/{n} voters alive (quorum {need};")
        # This node is not a voter: only the voters alive count.
        assert check_quorum(vs, vs[:alive], "node-observer") is (alive >= need), (n, alive)
    # The host's min(2, n) is gone: 2 of 5 is no quorum.
    if n >= 4:
        assert check_quorum(vs, vs[1:2], vs[0]) is False


def test_check_quorum_inputs() -> None:
    vs = voters(3)
    # No voters configured: quorum checks are off, as in the host.
    assert check_quorum([], ["node-2"], "node-1") is True
    assert check_quorum_strict([], [], "node-1") == (True, "OK")
    assert check_quorum(vs + vs, ["node-2"], "node-1") is True  # duplicates count once
    # A peers mapping: only entries alive count.
    host = LegacyHost(Path("/nonexistent"), "node-1")
    host.add_peer("node-2", "10.0.0.2", 8770, alive=False)
    host.add_peer("node-3", "10.0.0.3", 8770, alive=False)
    assert check_quorum(vs, host.peers, "node-1") is False
    host.set_alive("node-3", True)
    assert check_quorum(vs, host.peers, "node-1") is True
    # An address in the voter list counts in the total and is never alive.
    ok, reason = check_quorum_strict(["node-1", "node-2", "10.0.0.3:7947"], ["node-2", "10.0.0.3:7947"], "node-1")
    assert (ok, reason) == (True, "OK")
    ok, reason = check_quorum_strict(["node-1", "10.0.0.2:7947", "10.0.0.3:7947"], ["10.0.0.2:7947"], "node-1")
    assert ok is False and "not node ids (never counted alive): 10.0.0.2:7947, 10.0.0.3:7947" in reason
    ok, reason = check_quorum_strict(["node-1", "node-2", "node-3"], [], "node-1")
    assert ok is False and reason.startswith("Quorum lost: 1/3 voters alive") and "missing node-2, node-3" in reason


def test_should_block_election() -> None:
    vs = voters(3)
    # The host's three arguments: blocked exactly when there is no quorum.
    assert should_block_election(vs, ["node-2"], "node-1") == (False, "OK")
    assert should_block_election([], [], "node-1") == (False, "OK")  # no voters: quorum checks off
    assert should_block_election(vs, ["node-2", "node-3"], "node-9") == (False, "OK")
    blocked, reason = should_block_election(vs, [], "node-1")
    assert blocked and reason.startswith("Quorum lost")
    # Our gates, by keyword: only a voter among the coordinators; not under another's lease.
    blocked, reason = should_block_election(vs, ["node-2", "node-3"], "node-9", coordinators=["node-9"])
    assert blocked and reason.startswith("not_a_voter")
    blocked, reason = should_block_election(vs, ["node-2"], "node-1", coordinators=["node-2", "node-3"])
    assert blocked and reason.startswith("not_a_coordinator")
    blocked, reason = should_block_election(vs, ["node-2"], "node-1", current_leader="node-3",
                                            leader_lease_expires=110.0, now=100.0)
    assert blocked and reason.startswith("leader_lease_valid")
    assert should_block_election(vs, ["node-2"], "node-1", current_leader="node-3",
                                 leader_lease_expires=90.0, now=100.0) == (False, "OK")
    assert should_block_election(vs, ["node-2"], "node-1", current_leader="node-1",
                                 leader_lease_expires=110.0, now=100.0) == (False, "OK")


# -- The mixin: quorum ------------------------------------------------------------------------------


@pytest.mark.parametrize("n", range(1, 10))
def test_health_levels_at_every_voter_count(tmp_path: Path, n: int) -> None:
    need = n // 2 + 1
    for alive in range(1, n + 1):
        host = cluster_host(tmp_path, n, alive)
        expected = L if alive < need else M if alive == need else D if alive == need + 1 else H
        assert host._check_quorum_health() is expected, (n, alive)
        assert host._has_voter_quorum() is (alive >= need)
    observer = cluster_host(tmp_path, n, 0, self_voter=False)
    assert observer._check_quorum_health() is L and observer._has_voter_quorum() is False


def test_health_level_table(tmp_path: Path) -> None:
    table = {3: [M, M, D], 5: [L, M, D, H], 7: [L, L, M, D, H, H]}  # alive = 2.. for n=3 starts at 1
    assert [cluster_host(tmp_path, 3, a)._check_quorum_health() for a in (1, 2, 3)] == [L, M, D]
    assert [cluster_host(tmp_path, 5, a)._check_quorum_health() for a in (2, 3, 4, 5)] == table[5]
    assert [cluster_host(tmp_path, 7, a)._check_quorum_health() for a in (2, 3, 4, 5, 6, 7)] == table[7]
    assert cluster_host(tmp_path, 1, 1)._check_quorum_health() is M
    alone = LegacyHost(tmp_path / "x.db", "node-1")  # no voters at all: quorum checks off, as in the host
    assert alone._check_quorum_health() is H and alone._has_voter_quorum() is True
    assert alone.election_health_check()["is_healthy"] is True


def test_voter_addresses_are_mapped_to_node_ids(tmp_path: Path) -> None:
    host = LegacyHost(tmp_path / "p2p.db", "node-1", voters=["node-1", "10.0.0.2:8770", "10.0.0.3"])
    host.add_peer("node-2", "10.0.0.2", 8770)
    host.add_peer("node-3", "10.0.0.3", 8770, alive=False)
    status = host.get_quorum_health_status()
    assert status["voters"] == ["node-1", "node-2", "node-3"]
    assert status["alive_voter_ids"] == ["node-1", "node-2"] and status["level"] == "minimum"
    # An address that maps to no node stays in the total and is never alive.
    host.voter_node_ids = ["node-1", "node-2", "10.9.9.9:7947"]
    status = host.get_quorum_health_status()
    assert status["total_voters"] == 3 and status["missing_voters"] == ["10.9.9.9:7947"]


def test_quorum_health_status_and_failure_events(tmp_path: Path, clocks: tuple[ManualClock, ManualClock]) -> None:
    host = cluster_host(tmp_path, 5, 5)
    status = host.get_quorum_health_status()
    assert {k: status[k] for k in ("level", "level_value", "has_quorum", "alive_voters", "total_voters",
                                    "quorum_required", "missing_voters", "recent_failures", "source")} == {
        "level": "healthy", "level_value": 3, "has_quorum": True, "alive_voters": 5, "total_voters": 5,
        "quorum_required": 3, "missing_voters": [], "recent_failures": [], "source": "host_peers"}
    for peer in ("node-2", "node-3"):
        host.set_alive(peer, False)
    assert host._check_quorum_health() is M
    host.set_alive("node-4", False)
    assert host._check_quorum_health() is L
    assert host._check_quorum_health() is L  # staying lost is one failure, not two
    failures = host.get_quorum_health_status()["recent_failures"]
    assert len(failures) == 1
    assert failures[0] == QuorumFailureEvent(
        node_id="node-1", previous_level=M, alive_voters=2, total_voters=5, quorum_required=3,
        missing_voters=("node-2", "node-3", "node-4"), timestamp=clocks[1].now,
        failure_id=failures[0]["failure_id"]).to_dict()
    assert host._current_failure_event is not None and host._current_failure_event.failure_id == failures[0]["failure_id"]
    assert failures[0]["level"] == "lost" and failures[0]["previous_level"] == "minimum"


# -- Election timing --------------------------------------------------------------------------------


def test_election_latency_is_timed_and_summarised(tmp_path: Path, clocks: tuple[ManualClock, ManualClock]) -> None:
    mono, _ = clocks
    host = LegacyHost(tmp_path / "p2p.db", "node-1")
    assert host._record_election_latency("won") == 0.0  # never started: nothing recorded
    assert host.get_election_latency_stats()["total_elections"] == 0
    for outcome, took in (("won", 1.0), ("lost", 3.0), ("timeout", 10.0), ("adopted", 0.5), ("won", 2.0)):
        host._start_election_timing()
        assert host.get_election_latency_stats()["in_progress"] is True
        mono.now += took
        assert host._record_election_latency(outcome) == pytest.approx(took)
    stats = host.get_election_latency_stats()
    assert stats["outcomes"] == {"won": 2, "lost": 1, "timeout": 1, "adopted": 1}
    assert stats["total_elections"] == 5 and stats["samples"] == 5 and stats["in_progress"] is False
    assert stats["mean_latency_s"] == pytest.approx(16.5 / 5)
    assert stats["mean_latency_by_outcome_s"]["won"] == pytest.approx(1.5)
    assert (stats["min_latency_seconds"], stats["p50_latency_s"], stats["max_latency_seconds"]) == (0.5, 2.0, 10.0)
    assert stats["p95_latency_s"] == 10.0
    assert (stats["last_latency_seconds"], stats["last_outcome"], stats["last_source"]) == (2.0, "won", "host")
    # The host's keys
    assert {k: stats[k] for k in ("elections_completed", "elections_won", "elections_lost", "elections_timeout",
                                  "election_in_progress", "latency_samples")} == {
        "elections_completed": 5, "elections_won": 2, "elections_lost": 1, "elections_timeout": 1,
        "election_in_progress": False, "latency_samples": 5}
    assert stats["avg_latency_seconds"] == pytest.approx(16.5 / 5)
    assert (host._elections_completed, host._elections_won, host._last_election_latency_seconds) == (5, 2, 2.0)
    # Any outcome is accepted, as in the host; only won/lost/timeout have their own counter.
    host._start_election_timing()
    mono.now += 1
    assert host._record_election_latency("draw") == 1.0
    assert host.get_election_latency_stats()["elections_completed"] == 6


# -- Voters -----------------------------------------------------------------------------------------


def test_voter_config_version_and_hash(tmp_path: Path) -> None:
    a = LegacyHost(tmp_path / "a.db", "node-1", voters=["node-3", "node-1", "node-2"])
    b = LegacyHost(tmp_path / "b.db", "node-2", voters=["node-1", "node-2", "node-3", "node-2"])
    assert a._get_voter_config_hash() == b._get_voter_config_hash()
    assert len(a._get_voter_config_hash()) == 16 and isinstance(a._get_voter_config_version(), int)
    assert a._get_voter_config_version() == 1
    assert a._get_voter_config_version() == 1  # unchanged set, unchanged version
    before = a._get_voter_config_hash()
    a.voter_node_ids = ["node-1", "node-2", "node-3", "node-4"]
    assert a._get_voter_config_version() == 2 and a._get_voter_config_hash() != before


def test_voter_promotion_circuit_breaker(tmp_path: Path, clocks: tuple[ManualClock, ManualClock]) -> None:
    _, wall = clocks
    host = LegacyHost(tmp_path / "p2p.db", "node-1")
    assert host._get_voter_promotion_cb() is host._get_voter_promotion_cb() is host._voter_promotion_cb
    assert isinstance(host._get_voter_promotion_cb(), VoterPromotionCircuitBreaker)
    cb = VoterPromotionCircuitBreaker(failure_threshold=2, timeout_seconds=60)
    assert not cb.is_open and not cb.cooloff_active
    cb.record_failure()
    assert not cb.is_open
    wall.now += 61
    cb.record_failure()  # the first failure is too old to count
    assert not cb.is_open and cb.get_status()["failure_count"] == 1
    wall.now += 1
    cb.record_failure()
    assert cb.is_open
    status = cb.get_status()
    assert status == {"is_open": True, "cooloff_active": False, "failure_count": 2, "failure_threshold": 2,
                      "time_since_last_failure": 0.0, "time_until_reset": 60, "cooloff_remaining": None}
    wall.now += 61
    assert not cb.is_open and cb.get_status()["failure_count"] == 0  # timed out: reset
    cb.record_success()
    assert cb.cooloff_active and cb.get_status()["cooloff_remaining"] == le.VOTER_PROMOTION_COOLOFF_PERIOD
    wall.now += le.VOTER_PROMOTION_COOLOFF_PERIOD
    assert not cb.cooloff_active
    cb.record_failure()
    cb.record_failure()
    assert cb.is_open
    cb._reset()
    assert not cb.is_open and cb.get_status()["time_until_reset"] is None


# -- Leases and the leader ---------------------------------------------------------------------------


def test_release_voter_grant_if_self(tmp_path: Path) -> None:
    host = LegacyHost(tmp_path / "p2p.db", "node-1")
    host.voter_grant_leader_id, host.voter_grant_lease_id, host.voter_grant_expires = "node-3", "l3", 99.0
    assert host._release_voter_grant_if_self() is None
    assert (host.voter_grant_leader_id, host.voter_grant_lease_id, host.voter_grant_expires) == ("node-3", "l3", 99.0)
    host.voter_grant_leader_id, host.voter_grant_lease_id = "node-1", "l1"
    assert host._release_voter_grant_if_self() is None
    assert (host.voter_grant_leader_id, host.voter_grant_lease_id, host.voter_grant_expires) == ("", "", 0.0)


class _Voter(BaseHTTPRequestHandler):
    status = 200
    delay_s = 0.0
    received: list[tuple[str, dict[str, Any], str]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        time.sleep(self.delay_s)  # a slow voter (its own thread): the caller's loop must keep running
        type(self).received.append((self.path, body, self.headers.get("Authorization", "")))
        payload = json.dumps({"revoked": True}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def voter_servers() -> Iterator[list[ThreadingHTTPServer]]:
    _Voter.received = []
    refusing = type("_Refusing", (_Voter,), {"status": 409})
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Voter), ThreadingHTTPServer(("127.0.0.1", 0), _Voter),
               ThreadingHTTPServer(("127.0.0.1", 0), refusing)]
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True) for s in servers]
    for t in threads:
        t.start()
    yield servers
    for s in servers:
        s.shutdown()
        s.server_close()


async def test_notify_voters_lease_revoked(tmp_path: Path, voter_servers: list[ThreadingHTTPServer],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RINGRIFT_CLUSTER_AUTH_TOKEN", "sekrit")
    host = LegacyHost(tmp_path / "p2p.db", "node-1", voters=["node-1", "node-2", "node-3", "node-4", "node-5"])
    for name, server in zip(("node-2", "node-3", "node-4"), voter_servers):
        host.add_peer(name, "127.0.0.1", server.server_address[1])
    host.add_peer("node-5", "127.0.0.1", 1)  # nobody listens there
    assert await host._notify_voters_lease_revoked() == 1  # no lease to give back: only our own grant
    host.lease("node-1")
    host.voter_grant_leader_id, host.voter_grant_lease_id = "node-1", host.leader_lease_id
    # self (its own grant released) + node-2 + node-3; node-4 refuses (409), node-5 is down
    assert await host._notify_voters_lease_revoked() == 3
    assert host.voter_grant_leader_id == ""
    assert len(_Voter.received) == 3
    for path, body, auth in _Voter.received:
        assert path == "/election/lease_revoke"
        assert body == {"leader_id": "node-1", "lease_id": host.leader_lease_id, "epoch": 0}
        assert auth == "Bearer sekrit"


def test_notify_does_not_block_the_loop(tmp_path: Path, voter_servers: list[ThreadingHTTPServer]) -> None:
    host = LegacyHost(tmp_path / "p2p.db", "node-1", voters=["node-1", "node-2"])
    host.add_peer("node-2", "127.0.0.1", voter_servers[0].server_address[1])
    host.lease("node-1")
    _Voter.delay_s = 0.3

    async def main() -> tuple[int, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        count = await host._notify_voters_lease_revoked()
        task.cancel()
        return count, ticks

    try:
        count, ticks = asyncio.run(main())
    finally:
        _Voter.delay_s = 0.0
    # A ``sleep(0)`` ticker spins thousands of times while a request waits 0.3 s on a slow voter,
    # even on a loaded machine; an implementation blocking the loop on each HTTP call lets it
    # tick only between calls.
    assert count == 2 and ticks > 20, ticks


def test_authoritative_leader_is_the_leased_leader_as_a_node_id(tmp_path: Path, clocks: tuple[ManualClock, ManualClock]) -> None:
    _, wall = clocks
    host = LegacyHost(tmp_path / "p2p.db", "node-1", voters=voters(3))
    host.add_peer("node-3", "10.0.0.3", 8770)
    assert host.get_authoritative_leader() is None  # no leader
    host.leader_id, host.leader_lease_expires = "node-3", wall.now + 30
    assert host.get_authoritative_leader() == "node-3"
    wall.now += 31
    assert host.get_authoritative_leader() is None  # lease ran out
    host.leader_id, host.leader_lease_expires = "10.0.0.3:8770", wall.now + 30  # an address: mapped
    assert host.get_authoritative_leader() == "node-3"
    host.leader_id = "10.9.9.9:8770"  # an address of nobody: never reported
    assert host.get_authoritative_leader() is None
    host.leader_id = "node-3"
    host.set_alive("node-3", False)  # known dead: its lease is not trusted
    assert host.get_authoritative_leader() is None
    host.leader_id, host.role = "node-1", "leader"
    assert host.get_authoritative_leader() == "node-1"


def test_election_health_check(tmp_path: Path, clocks: tuple[ManualClock, ManualClock]) -> None:
    _, wall = clocks
    host = cluster_host(tmp_path, 3, 3)
    report = host.election_health_check()
    # Quorum and no leader yet is not unhealthy (the host's rule).
    assert report["is_healthy"] is True and report["has_quorum"] is True and report["has_leader"] is False
    assert (report["voter_count"], report["lease_remaining_seconds"]) == (3, 0.0)
    host.leader_id, host.leader_lease_expires, host.role = "node-1", wall.now + 20, "leader"
    report = host.election_health_check()
    assert {k: report[k] for k in ("is_healthy", "role", "leader_id", "is_leader", "has_leader", "has_quorum",
                                    "quorum_health", "alive_voters", "total_voters", "quorum_required",
                                    "lease_expires_in_s", "source")} == {
        "is_healthy": True, "role": "leader", "leader_id": "node-1", "is_leader": True, "has_leader": True,
        "has_quorum": True, "quorum_health": "degraded", "alive_voters": 3, "total_voters": 3,
        "quorum_required": 2, "lease_expires_in_s": 20.0, "source": "host_peers"}
    assert report["lease_remaining_seconds"] == 20.0 and report["split_brain_detected"] is False
    host.set_alive("node-2", False)
    host.set_alive("node-3", False)
    report = host.election_health_check()
    assert report["is_healthy"] is False and report["quorum_health"] == "lost"


# -- Metrics ----------------------------------------------------------------------------------------


def test_metrics_are_updated_in_the_object_and_never_globally(tmp_path: Path, clocks: tuple[ManualClock, ManualClock]) -> None:
    mono, wall = clocks
    before = {m.name for m in prometheus_client.REGISTRY.collect()}
    host = cluster_host(tmp_path, 5, 5)
    m = host.get_cluster_metrics()
    assert set(m) == {"ringrift_cluster_peers_alive", "ringrift_p2p_peer_count", "ringrift_is_leader",
                      "ringrift_quorum_health_level", "ringrift_quorum_alive_voters",
                      "ringrift_quorum_total_voters", "ringrift_quorum_margin", "ringrift_p2p_quorum_status",
                      "ringrift_p2p_leader_changes_total", "ringrift_leader_election_latency_seconds"}
    assert (m["ringrift_quorum_health_level"], m["ringrift_quorum_alive_voters"], m["ringrift_quorum_total_voters"],
            m["ringrift_p2p_quorum_status"], m["ringrift_cluster_peers_alive"]) == (3, 5, 5, 1, 4)
    assert m["ringrift_is_leader"] == 0 and m["ringrift_p2p_leader_changes_total"] == 0
    host.leader_id, host.leader_lease_expires, host.role = "node-1", wall.now + 20, "leader"
    host._start_election_timing()
    mono.now += 0.25
    host._record_election_latency("won")
    for peer in ("node-2", "node-3", "node-4"):
        host.set_alive(peer, False)
    m = host.get_cluster_metrics()
    assert (m["ringrift_quorum_health_level"], m["ringrift_quorum_alive_voters"], m["ringrift_p2p_quorum_status"],
            m["ringrift_cluster_peers_alive"]) == (0, 2, 0, 1)
    assert m["ringrift_p2p_peer_count"] == {"alive": 1, "suspect": 0, "failed": 3, "left": 0}
    assert m["ringrift_is_leader"] == 1 and m["ringrift_p2p_leader_changes_total"] == 1
    assert m["ringrift_leader_election_latency_seconds"]["won"] == {"count": 1, "sum": 0.25}
    host.leader_id = "node-5"
    assert host.get_cluster_metrics()["ringrift_p2p_leader_changes_total"] == 2
    after = {m.name for m in prometheus_client.REGISTRY.collect()}
    assert after == before and not any(name.startswith("ringrift") for name in after)


def test_only_contract_attributes_are_read(tmp_path: Path, voter_servers: list[ThreadingHTTPServer]) -> None:
    host = cluster_host(tmp_path, 3, 2)
    host.add_peer("node-2", "127.0.0.1", voter_servers[0].server_address[1])
    host.lease("node-1")
    host._has_voter_quorum()
    host._check_quorum_health()
    host._start_election_timing()
    host._record_election_latency("won")
    host.get_election_latency_stats()
    host._get_voter_config_version()
    host._get_voter_config_hash()
    host._get_voter_promotion_cb()
    host._release_voter_grant_if_self()
    asyncio.run(host._notify_voters_lease_revoked())
    host.get_authoritative_leader()
    host.get_quorum_health_status()
    host.election_health_check()
    host.get_cluster_metrics()
    assert host.foreign_reads() == set()
