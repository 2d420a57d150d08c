"""Contract of adapters/peer_manager.py (legacy-contract.md §1) on a host with only the §1
attributes and no node attached."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from adapter_hosts import LegacyHost

import adapters.peer_manager as pm
from ringrift_cluster.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
DAY = 86400.0


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The adapter's wall clock, moved by hand: ``clock[0] += 10``."""
    now = [1_700_000_000.0]
    monkeypatch.setattr(pm, "_wall", lambda: now[0])
    return now


@pytest.fixture
def host(tmp_path: Path, clock: list[float]) -> LegacyHost:
    return LegacyHost(tmp_path / "p2p.db", "node-a", seeds=["10.0.0.9:8770"])


def row(host: LegacyHost, node_id: str) -> dict | None:
    with sqlite3.connect(host.db_path) as db:
        db.row_factory = sqlite3.Row
        found = db.execute("SELECT * FROM peer_cache WHERE node_id = ?", (node_id,)).fetchone()
    return dict(found) if found else None


def ids(host: LegacyHost) -> set[str]:
    with sqlite3.connect(host.db_path) as db:
        return {r[0] for r in db.execute("SELECT node_id FROM peer_cache")}


# -- Module names and constants ------------------------------------------------------------------


def test_constants_have_the_host_defaults() -> None:
    assert pm.PEER_CACHE_MAX_ENTRIES == 200 and isinstance(pm.PEER_CACHE_MAX_ENTRIES, int)
    assert pm.PEER_CACHE_TTL_SECONDS == 7 * 24 * 3600
    assert pm.PEER_REPUTATION_ALPHA == 0.2


@pytest.mark.parametrize("name, raw, expected", [
    ("PEER_CACHE_MAX_ENTRIES", "50", 50),
    ("PEER_CACHE_TTL_SECONDS", "3600", 3600),
    ("PEER_CACHE_TTL_SECONDS", "90.5", 90.5),
    ("PEER_REPUTATION_ALPHA", "0.5", 0.5),
    ("PEER_REPUTATION_ALPHA", "1", 1.0),
])
def test_env_override_values(name: str, raw: str, expected: object) -> None:
    parse, ok, what = _RULES[name]
    assert pm._env_number(name, "default", parse, ok, what, env={f"RINGRIFT_P2P_{name}": raw}) == expected
    assert pm._env_number(name, "default", parse, ok, what, env={}) == "default"


@pytest.mark.parametrize("name, raw", [
    ("PEER_CACHE_MAX_ENTRIES", "abc"), ("PEER_CACHE_MAX_ENTRIES", "0"), ("PEER_CACHE_MAX_ENTRIES", "2.5"),
    ("PEER_CACHE_TTL_SECONDS", "-1"), ("PEER_CACHE_TTL_SECONDS", "nan"), ("PEER_CACHE_TTL_SECONDS", "week"),
    ("PEER_REPUTATION_ALPHA", "0"), ("PEER_REPUTATION_ALPHA", "1.5"), ("PEER_REPUTATION_ALPHA", "x"),
])
def test_env_override_bad_values_name_the_variable(name: str, raw: str) -> None:
    parse, ok, what = _RULES[name]
    with pytest.raises(ConfigError) as info:
        pm._env_number(name, None, parse, ok, what, env={f"RINGRIFT_P2P_{name}": raw})
    assert f"RINGRIFT_P2P_{name}" in str(info.value) and repr(raw) in str(info.value)


_RULES = {
    "PEER_CACHE_MAX_ENTRIES": (int, lambda v: v >= 1, "an integer >= 1"),
    "PEER_CACHE_TTL_SECONDS": (pm._seconds, lambda v: v > 0, "a number of seconds > 0"),
    "PEER_REPUTATION_ALPHA": (float, lambda v: 0 < v <= 1, "a number in (0, 1]"),
}


def _import_with(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = ("import adapters.peer_manager as pm; "
            "print(pm.PEER_CACHE_MAX_ENTRIES, pm.PEER_CACHE_TTL_SECONDS, pm.PEER_REPUTATION_ALPHA)")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RINGRIFT_P2P_")}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**clean, "PYTHONPATH": str(ROOT), **env})


def test_env_overrides_apply_at_import_and_a_bad_one_fails_the_import() -> None:
    ok = _import_with({"RINGRIFT_P2P_PEER_CACHE_MAX_ENTRIES": "7", "RINGRIFT_P2P_PEER_CACHE_TTL_SECONDS": "60",
                       "RINGRIFT_P2P_PEER_REPUTATION_ALPHA": "0.3"})
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.split() == ["7", "60", "0.3"]
    bad = _import_with({"RINGRIFT_P2P_PEER_CACHE_MAX_ENTRIES": "many"})
    assert bad.returncode != 0
    assert "RINGRIFT_P2P_PEER_CACHE_MAX_ENTRIES: got 'many', expected an integer >= 1" in bad.stderr


def test_get_and_set_peer_manager(host: LegacyHost) -> None:
    try:
        pm.set_peer_manager(None)
        assert pm.get_peer_manager() is None
        pm.set_peer_manager(host)
        assert pm.get_peer_manager() is host and pm._peer_manager is host  # the host's module global
    finally:
        pm.set_peer_manager(None)


# -- The table ------------------------------------------------------------------------------------


def test_table_is_created_with_the_host_schema(host: LegacyHost) -> None:
    assert host._get_cached_peer_count() == 0
    with sqlite3.connect(host.db_path) as db:
        columns = {r[1]: (r[2], r[4], r[5]) for r in db.execute("PRAGMA table_info(peer_cache)")}
    assert list(columns) == ["node_id", "host", "port", "tailscale_ip", "last_seen", "success_count",
                             "failure_count", "reputation_score", "is_bootstrap_seed"]
    assert columns["node_id"][2] == 1  # primary key
    assert columns["last_seen"][0] == "REAL" and columns["reputation_score"] == ("REAL", "0.5", 0)


def test_an_existing_host_table_is_used_as_it_is(tmp_path: Path, clock: list[float]) -> None:
    path = tmp_path / "host.db"
    with sqlite3.connect(path) as db:  # the host's own table, with rows already in it
        db.execute("CREATE TABLE peer_cache (node_id TEXT PRIMARY KEY, host TEXT, port INTEGER, tailscale_ip TEXT,"
                   " last_seen REAL, success_count INTEGER, failure_count INTEGER,"
                   " reputation_score REAL DEFAULT 0.5, is_bootstrap_seed BOOLEAN)")
        db.execute("INSERT INTO peer_cache VALUES ('node-old', '10.1.1.1', 8770, NULL, ?, 3, 1, 0.9, 0)", (clock[0],))
    host = LegacyHost(path)
    assert host._get_cached_peer_count() == 1
    assert host._get_bootstrap_peers_by_reputation() == ["10.1.1.1:8770"]
    host._update_peer_reputation("node-old", True)
    assert row(host, "node-old")["success_count"] == 4


# -- Reputation -----------------------------------------------------------------------------------


def test_reputation_is_an_ema_from_one_half_with_counts_persisted(host: LegacyHost, tmp_path: Path) -> None:
    host._update_peer_reputation("node-b", True)
    assert row(host, "node-b")["reputation_score"] == pytest.approx(0.6)  # 0.2*1 + 0.8*0.5
    host._update_peer_reputation("node-b", False)
    assert row(host, "node-b")["reputation_score"] == pytest.approx(0.48)  # 0.8*0.6
    host._update_peer_reputation("node-b", True)
    r = row(host, "node-b")
    assert r["reputation_score"] == pytest.approx(0.584)
    assert (r["success_count"], r["failure_count"]) == (2, 1)
    # Persisted: a new host object on the same file continues from there.
    again = LegacyHost(Path(host.db_path), "node-a")
    again._update_peer_reputation("node-b", False)
    assert row(again, "node-b")["reputation_score"] == pytest.approx(0.8 * 0.584)
    assert row(again, "node-b")["failure_count"] == 2


def test_reputation_uses_the_configured_alpha(host: LegacyHost, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pm, "PEER_REPUTATION_ALPHA", 0.5)
    host._update_peer_reputation("node-b", False)
    assert row(host, "node-b")["reputation_score"] == pytest.approx(0.25)


def test_a_success_refreshes_last_seen_a_failure_does_not(host: LegacyHost, clock: list[float]) -> None:
    host._save_peer_to_cache("node-b", "10.0.0.2", 8770)
    seen = row(host, "node-b")["last_seen"]
    clock[0] += 100
    host._update_peer_reputation("node-b", False)
    assert row(host, "node-b")["last_seen"] == seen
    host._update_peer_reputation("node-b", True)
    assert row(host, "node-b")["last_seen"] == seen + 100


def test_an_address_is_mapped_to_its_node_id_or_refused(host: LegacyHost) -> None:
    host.add_peer("node-b", "10.0.0.2", 8770, tailscale_ip="100.64.0.2")
    host._update_peer_reputation("10.0.0.2:8770", True)  # the host's peer address
    host._update_peer_reputation("100.64.0.2:8770", True)  # its tailscale address
    assert row(host, "node-b")["success_count"] == 2
    host._update_peer_reputation("10.0.0.77:8770", True)  # nobody's address
    host._update_peer_reputation("10.0.0.2", False)  # a bare IP of exactly one peer
    host._save_peer_to_cache("10.9.9.9:7947", "10.9.9.9", 7947)  # an unknown SWIM address as a node id
    assert ids(host) == {"node-b"}
    assert row(host, "node-b")["failure_count"] == 1
    # A peer known only from the cache is found by its cached address too.
    host._save_peer_to_cache("node-c", "10.0.0.3", 8770)
    host._record_p2p_sync_result("10.0.0.3:8770", False)
    assert row(host, "node-c")["failure_count"] == 1


# -- The cache ------------------------------------------------------------------------------------


def test_save_ignores_empty_and_own_id_and_keeps_old_address(host: LegacyHost, clock: list[float]) -> None:
    host._save_peer_to_cache("", "10.0.0.5", 8770)
    host._save_peer_to_cache("node-a", "10.0.0.1", 8770)
    assert host._get_cached_peer_count() == 0
    host._save_peer_to_cache("node-b", "10.0.0.2", 8770, tailscale_ip="100.64.0.2")
    clock[0] += 5
    host._save_peer_to_cache("node-b", "", 0)
    r = row(host, "node-b")
    assert (r["host"], r["port"], r["tailscale_ip"], r["last_seen"]) == ("10.0.0.2", 8770, "100.64.0.2", clock[0])
    host._save_peer_to_cache("node-b", "10.0.0.22", 9000)
    r = row(host, "node-b")
    assert (r["host"], r["port"], r["tailscale_ip"]) == ("10.0.0.22", 9000, "100.64.0.2")
    assert r["reputation_score"] == 0.5 and r["is_bootstrap_seed"] == 0


def test_save_marks_bootstrap_seeds(host: LegacyHost) -> None:
    host._save_peer_to_cache("node-s", "10.0.0.9", 8770)  # 10.0.0.9:8770 is a seed
    host._save_peer_to_cache("node-t", "10.0.0.8", 8770, tailscale_ip="10.0.0.9")  # seed by its tailscale address
    host._save_peer_to_cache("node-u", "10.0.0.9", 8771)
    assert [row(host, n)["is_bootstrap_seed"] for n in ("node-s", "node-t", "node-u")] == [1, 1, 0]


def test_eviction_drops_lowest_reputation_then_oldest_never_seeds(host: LegacyHost, clock: list[float],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pm, "PEER_CACHE_MAX_ENTRIES", 4)
    host._save_peer_to_cache("node-seed", "10.0.0.9", 8770)  # a seed...
    host._update_peer_reputation("node-seed", False)  # ...with the worst reputation: never evicted
    host._update_peer_reputation("node-seed", False)
    for i, name in enumerate(["node-old", "node-new", "node-good"]):
        clock[0] += 10
        host._save_peer_to_cache(name, f"10.0.1.{i}", 8770)
    host._update_peer_reputation("node-good", True)
    assert ids(host) == {"node-seed", "node-old", "node-new", "node-good"}
    clock[0] += 10
    host._save_peer_to_cache("node-5", "10.0.1.5", 8770)  # 5 rows: the oldest of the 0.5s goes
    assert ids(host) == {"node-seed", "node-new", "node-good", "node-5"}
    host._update_peer_reputation("node-5", True)  # node-5 now 0.6 > node-new 0.5
    clock[0] += 10
    host._save_peer_to_cache("node-6", "10.0.1.6", 8770)  # node-new (0.5, older) and node-6 (0.5, newer)
    assert ids(host) == {"node-seed", "node-good", "node-5", "node-6"}
    host._update_peer_reputation("node-7", False)  # a new row from a reputation update (0.4) is the lowest
    assert ids(host) == {"node-seed", "node-good", "node-5", "node-6"}


def test_bootstrap_is_fresh_seeds_first_then_reputation_tailscale_preferred(host: LegacyHost, clock: list[float]) -> None:
    host._save_peer_to_cache("node-stale", "10.0.0.50", 8770)
    host._update_peer_reputation("node-stale", True)
    clock[0] += pm.PEER_CACHE_TTL_SECONDS - 5
    host._save_peer_to_cache("node-low", "10.0.0.2", 8770)
    host._save_peer_to_cache("node-high", "10.0.0.3", 8770, tailscale_ip="100.64.0.3")
    host._save_peer_to_cache("node-seed", "10.0.0.9", 8770)
    host._save_peer_to_cache("node-noaddr", "", 0)
    for _ in range(3):
        host._update_peer_reputation("node-high", True)
        host._update_peer_reputation("node-seed", False)
        host._update_peer_reputation("node-noaddr", True)
    host._update_peer_reputation("node-low", False)
    assert host._get_bootstrap_peers_by_reputation() == [
        "10.0.0.9:8770", "100.64.0.3:8770", "10.0.0.50:8770", "10.0.0.2:8770"]
    clock[0] += 10  # node-stale is now older than the TTL
    assert host._get_bootstrap_peers_by_reputation() == ["10.0.0.9:8770", "100.64.0.3:8770", "10.0.0.2:8770"]
    assert host._get_bootstrap_peers_by_reputation(limit=2) == ["10.0.0.9:8770", "100.64.0.3:8770"]
    assert host._get_bootstrap_peers_by_reputation(limit=0) == []


def test_count_clear_keeps_seeds_and_prune(host: LegacyHost, clock: list[float]) -> None:
    host._save_peer_to_cache("node-seed", "10.0.0.9", 8770)
    host._save_peer_to_cache("node-b", "10.0.0.2", 8770)
    clock[0] += 2 * DAY
    host._save_peer_to_cache("node-c", "10.0.0.3", 8770)
    assert host._get_cached_peer_count() == 3
    assert host._prune_stale_peers() == 1  # node-b: older than a day; the seed is kept
    assert ids(host) == {"node-seed", "node-c"}
    clock[0] += 100
    assert host._prune_stale_peers(max_age_seconds=50) == 1
    assert ids(host) == {"node-seed"}
    host._save_peer_to_cache("node-d", "10.0.0.4", 8770)
    host._record_p2p_sync_result("node-d", True)
    assert host._clear_peer_cache() == 1
    assert ids(host) == {"node-seed"} and host._get_cached_peer_count() == 1
    # As in the host, the in-memory sync history is not tied to the cache rows.
    assert host._get_peer_health_score("node-d") == pytest.approx(0.7 * 0.5 + 0.3 * 1.0)


# -- Health ---------------------------------------------------------------------------------------


def test_health_score_is_07_reputation_plus_03_recent_sync_rate(host: LegacyHost) -> None:
    """The host's inputs: ``_peer_reputations`` (in memory, 0.5 if absent) and ``_p2p_sync_results``."""
    assert host._get_peer_health_score("node-x") == pytest.approx(0.5)  # nothing known
    host._update_peer_reputation("node-b", True)  # the cached row's reputation: not the score's input
    assert row(host, "node-b")["reputation_score"] == pytest.approx(0.6)
    assert host._get_peer_health_score("node-b") == pytest.approx(0.5)
    host._peer_reputations = {"node-b": 0.9}
    assert host._get_peer_health_score("node-b") == pytest.approx(0.7 * 0.9 + 0.3 * 0.5)
    host._record_p2p_sync_result("node-c", True)
    host._record_p2p_sync_result("node-c", False)
    assert host._p2p_sync_results["node-c"] == [True, False]
    assert row(host, "node-c")["reputation_score"] == pytest.approx(0.8 * 0.6)
    assert host._get_peer_health_score("node-c") == pytest.approx(0.7 * 0.5 + 0.3 * 0.5)
    host._p2p_sync_results["node-b"] = [True, True, True, False]  # the host's own list is read as it is
    assert host._get_peer_health_score("node-b") == pytest.approx(0.7 * 0.9 + 0.3 * 0.75)


def test_only_the_last_10_results_score_and_50_are_kept(host: LegacyHost) -> None:
    for _ in range(5):
        host._record_p2p_sync_result("node-b", False)
    for _ in range(10):
        host._record_p2p_sync_result("node-b", True)
    assert host._get_peer_health_score("node-b") == pytest.approx(0.7 * 0.5 + 0.3 * 1.0)
    for _ in range(3):
        host._record_p2p_sync_result("node-b", False)
    assert host._get_peer_health_score("node-b") == pytest.approx(0.7 * 0.5 + 0.3 * 0.7)
    for _ in range(60):
        host._record_p2p_sync_result("node-b", True)
    assert len(host._p2p_sync_results["node-b"]) == 50
    assert row(host, "node-b")["success_count"] == 70 and row(host, "node-b")["failure_count"] == 8
    assert 0.0 <= host._get_peer_health_score("node-b") <= 1.0


def test_peer_health_check_keys_and_values(host: LegacyHost) -> None:
    report = host.peer_health_check()
    assert set(report) == {"is_healthy", "cached_peers", "active_peers", "bootstrap_seeds", "nat_blocked_count"}
    # A seed to look for but nobody alive: unhealthy.
    assert report == {"is_healthy": False, "cached_peers": 0, "active_peers": 0, "bootstrap_seeds": 1,
                      "nat_blocked_count": 0}
    host.add_peer("node-b", "10.0.0.2", 8770)
    host.add_peer("node-c", "10.0.0.3", 8770, alive=False, nat_blocked=True)
    host._save_peer_to_cache("node-b", "10.0.0.2", 8770)
    assert host.peer_health_check() == {"is_healthy": True, "cached_peers": 1, "active_peers": 1,
                                        "bootstrap_seeds": 1, "nat_blocked_count": 1}
    host._nat_blocked_peers = {"node-c", "node-d"}  # the host's own set, when it keeps one
    assert host.peer_health_check()["nat_blocked_count"] == 2
    alone = LegacyHost(Path(host.db_path).with_name("alone.db"), "node-z")
    assert alone.peer_health_check()["is_healthy"] is True  # nobody else to reach


def test_health_check_is_the_host_base_answer(host: LegacyHost) -> None:
    assert host.health_check() == {
        "healthy": False, "message": "No peers available",
        "details": {"mixin_type": "peer_manager", **host.peer_health_check()}}
    host.add_peer("node-b", "10.0.0.2", 8770)
    host._save_peer_to_cache("node-b", "10.0.0.2", 8770)
    report = host.health_check()
    assert report["healthy"] is True and report["message"] == "Peer manager (1 active, 1 cached)"
    assert report["details"]["mixin_type"] == "peer_manager" and report["details"]["active_peers"] == 1


def test_only_contract_attributes_are_read(host: LegacyHost) -> None:
    host.add_peer("node-b", "10.0.0.2", 8770)
    host._save_peer_to_cache("node-b", "10.0.0.2", 8770)
    host._update_peer_reputation("10.0.0.2:8770", True)
    host._record_p2p_sync_result("node-b", False)
    host._get_peer_health_score("node-b")
    host._get_bootstrap_peers_by_reputation()
    host._get_cached_peer_count()
    host._prune_stale_peers()
    host.peer_health_check()
    host.health_check()
    host._clear_peer_cache()
    assert host.foreign_reads() == set()
