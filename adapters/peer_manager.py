"""Drop-in for the host's ``peer_manager.py``: a peer cache with reputation, as a host mixin.

The mixin keeps the host's SQLite table ``peer_cache`` (in the file at ``host.db_path``, created
when missing), every member of the host's module (names, parameters, defaults, return shapes,
the ``_peer_manager`` singleton) and the host's health answer. It reads only the host attributes
the host's module reads: ``node_id``, ``peers`` (+ ``peers_lock``), ``db_path``,
``bootstrap_seeds``, ``verbose``, ``_peer_reputations``, ``_p2p_sync_results`` and
``_nat_blocked_peers``.

When a ClusterNode is attached (``ringrift_cluster.host_bridge.attach(host, node)``):

- alive peers and liveness come from the node's membership (``active_peers``, pruning never drops
  a member alive now), and the alive members' addresses are written into the cache before it is
  read for bootstrapping or health, so the cache is fed by membership rather than by the host;
- every peer is stored under its **node id**. A method given an address where a node id is
  expected (``"10.0.0.5:8770"``, a SWIM address ``"10.0.0.5:7947"``, a bare IP) maps it to the
  node id owning that address (from the config's hosts and the membership; without a node, from
  ``host.peers`` and the cache's own rows). An address that maps to no single node is **refused**:
  the call does nothing (logged), so an address never becomes a row of its own.

Reputation: an exponential moving average of success (1) / failure (0) with weight
``PEER_REPUTATION_ALPHA``, starting at 0.5, plus success/failure counts, all in the peer's row. A
success also refreshes ``last_seen``; a failure does not (a peer failing every call must not look
fresh for bootstrapping). As in the host, the health score of a peer is ``0.7 * reputation +
0.3 * success rate of its last 10 sync results`` from the host's in-memory inputs: the reputation
in ``host._peer_reputations`` (0.5 when absent) and the results in ``host._p2p_sync_results``
(peer -> list of bools, the last 50 kept; 0.5 when none).

The three constants can be overridden by ``RINGRIFT_P2P_<NAME>``; a bad value is a ConfigError
naming the variable, raised at import.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from typing import Any, Callable, Iterator, Mapping

from ringrift_cluster.errors import ConfigError
from ringrift_cluster.host_bridge import alive_peer_ids, attached_node, split_address, to_node_id

__all__ = [
    "PEER_CACHE_MAX_ENTRIES",
    "PEER_CACHE_TTL_SECONDS",
    "PEER_REPUTATION_ALPHA",
    "PeerManagerMixin",
    "get_peer_manager",
    "set_peer_manager",
]

log = logging.getLogger("ringrift.adapters.peer_manager")


def _env_number(name: str, default: Any, parse: Callable[[str], Any], ok: Callable[[Any], bool],
                expected: str, env: Mapping[str, str] | None = None) -> Any:
    """``default``, or the value of ``RINGRIFT_P2P_<name>`` when set; ConfigError naming it if bad."""
    var = f"RINGRIFT_P2P_{name}"
    raw = (os.environ if env is None else env).get(var)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = parse(raw.strip())
    except ValueError:
        raise ConfigError(var, raw, expected) from None
    if not ok(value):
        raise ConfigError(var, raw, expected)
    return value


def _seconds(text: str) -> int | float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(text)
    return int(value) if value.is_integer() else value


PEER_CACHE_MAX_ENTRIES: int = _env_number(
    "PEER_CACHE_MAX_ENTRIES", 200, int, lambda v: v >= 1, "an integer >= 1")
PEER_CACHE_TTL_SECONDS: int | float = _env_number(
    "PEER_CACHE_TTL_SECONDS", 7 * 24 * 3600, _seconds, lambda v: v > 0, "a number of seconds > 0")
PEER_REPUTATION_ALPHA: float = _env_number(
    "PEER_REPUTATION_ALPHA", 0.2, float, lambda v: 0 < v <= 1, "a number in (0, 1]")

REPUTATION_START = 0.5
SYNC_RESULTS_KEPT = 50
SYNC_RESULTS_SCORED = 10
HEALTH_WEIGHT_REPUTATION = 0.7
HEALTH_WEIGHT_SYNC = 0.3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS peer_cache (
    node_id TEXT PRIMARY KEY,
    host TEXT,
    port INTEGER,
    tailscale_ip TEXT,
    last_seen REAL,
    success_count INTEGER DEFAULT 0,
    failure_count INTEGER DEFAULT 0,
    reputation_score REAL DEFAULT 0.5,
    is_bootstrap_seed INTEGER DEFAULT 0
)
"""

_wall = time.time  # tests replace this to move the clock

# The host's singleton, under the host's name.
_peer_manager: PeerManagerMixin | None = None
_peer_manager_lock = threading.Lock()


def get_peer_manager() -> PeerManagerMixin | None:
    """The peer manager the host registered with ``set_peer_manager``, or None."""
    return _peer_manager


def set_peer_manager(instance: PeerManagerMixin) -> None:
    """Register the process-wide peer manager (None clears it)."""
    global _peer_manager
    with _peer_manager_lock:
        _peer_manager = instance


class _PeerManagerState:
    """What the mixin keeps in memory, per host object (created on first use)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.schema_ready: set[str] = set()


class PeerManagerMixin:
    """Peer cache, reputation and bootstrap selection, mixed into the host's orchestrator."""

    MIXIN_TYPE = "peer_manager"

    # -- Reputation ----------------------------------------------------------------------------

    def _update_peer_reputation(self, peer_addr_or_node_id: str, success: bool) -> None:
        """Fold one success or failure into the peer's reputation (EMA) and counts, persisted."""
        node_id = self._pm_peer_id(peer_addr_or_node_id, "_update_peer_reputation")
        if node_id is None:
            return
        alpha = PEER_REPUTATION_ALPHA
        outcome = 1.0 if success else 0.0
        now = _wall()
        with self._pm_db(write=True) as db:
            row = db.execute("SELECT reputation_score FROM peer_cache WHERE node_id = ?", (node_id,)).fetchone()
            if row is None:
                reputation = alpha * outcome + (1 - alpha) * REPUTATION_START
                db.execute(
                    "INSERT INTO peer_cache (node_id, host, port, tailscale_ip, last_seen, success_count,"
                    " failure_count, reputation_score, is_bootstrap_seed) VALUES (?, '', 0, NULL, ?, ?, ?, ?, 0)",
                    (node_id, now, int(success), int(not success), reputation))
                self._pm_evict(db)
                return
            old = REPUTATION_START if row[0] is None else float(row[0])
            reputation = alpha * outcome + (1 - alpha) * old
            if success:
                db.execute("UPDATE peer_cache SET reputation_score = ?, success_count = COALESCE(success_count, 0) + 1,"
                           " last_seen = ? WHERE node_id = ?", (reputation, now, node_id))
            else:
                db.execute("UPDATE peer_cache SET reputation_score = ?, failure_count = COALESCE(failure_count, 0) + 1"
                           " WHERE node_id = ?", (reputation, node_id))

    def _record_p2p_sync_result(self, peer_id: str, success: bool) -> None:
        """Append one sync result to the host's ``_p2p_sync_results[peer]`` (the last 50 kept) and
        update the peer's reputation."""
        node_id = self._pm_peer_id(peer_id, "_record_p2p_sync_result")
        if node_id is None:
            return
        with self._pm_state().lock:
            results = self._pm_sync_results()
            history = list(results.get(node_id) or [])
            history.append(bool(success))
            results[node_id] = history[-SYNC_RESULTS_KEPT:]
        self._update_peer_reputation(node_id, success)

    def _get_peer_health_score(self, peer_id: str) -> float:
        """0.7 x the host's in-memory reputation (``_peer_reputations[peer]``, 0.5 if unknown) +
        0.3 x the success rate of its last 10 results in ``_p2p_sync_results`` (0.5 if none)."""
        node_id = self._pm_peer_id(peer_id, "_get_peer_health_score")
        keys = [k for k in (node_id, peer_id) if isinstance(k, str)]
        reputations = getattr(self, "_peer_reputations", None) or {}
        reputation = next((reputations[k] for k in keys if k in reputations), REPUTATION_START)
        try:
            reputation = float(reputation)
        except (TypeError, ValueError):
            reputation = REPUTATION_START
        with self._pm_state().lock:
            results = self._pm_sync_results()
            history = next((results[k] for k in keys if results.get(k)), [])
            recent = list(history)[-SYNC_RESULTS_SCORED:]
        rate = sum(1 for r in recent if r) / len(recent) if recent else REPUTATION_START
        score = HEALTH_WEIGHT_REPUTATION * reputation + HEALTH_WEIGHT_SYNC * rate
        return min(1.0, max(0.0, score))

    # -- The cache -----------------------------------------------------------------------------

    def _save_peer_to_cache(self, node_id: str, host: str, port: int, tailscale_ip: str | None = None) -> None:
        """Upsert a peer. Ignores an empty id or our own; keeps the old host/port when the new ones
        are empty; marks bootstrap seeds; evicts the lowest (reputation, last_seen) non-seed rows
        beyond ``PEER_CACHE_MAX_ENTRIES``."""
        if not node_id:
            return
        peer = self._pm_peer_id(node_id, "_save_peer_to_cache")
        if peer is None or peer == getattr(self, "node_id", None):
            return
        self._pm_upsert(peer, host, port, tailscale_ip)

    def _get_bootstrap_peers_by_reputation(self, limit: int = 5) -> list[str]:
        """``host:port`` of up to ``limit`` fresh cached peers (seen within the TTL, with a real
        address): seeds first, then by reputation; the tailscale address when there is one."""
        if limit <= 0:
            return []
        self._pm_cache_alive_members()
        cutoff = _wall() - PEER_CACHE_TTL_SECONDS
        with self._pm_db() as db:
            rows = db.execute(
                "SELECT node_id, host, port, tailscale_ip FROM peer_cache"
                " WHERE last_seen >= ? AND host IS NOT NULL AND host != '' AND port > 0"
                " ORDER BY is_bootstrap_seed DESC, reputation_score DESC, last_seen DESC, node_id",
                (cutoff,)).fetchall()
        me = getattr(self, "node_id", None)
        out: list[str] = []
        for node_id, host, port, tailscale_ip in rows:
            if node_id == me:
                continue
            address = _join(tailscale_ip or host, int(port))
            if address not in out:
                out.append(address)
            if len(out) >= limit:
                break
        return out

    def _get_cached_peer_count(self) -> int:
        """Rows in the peer cache."""
        with self._pm_db() as db:
            return int(db.execute("SELECT COUNT(*) FROM peer_cache").fetchone()[0])

    def _clear_peer_cache(self) -> int:
        """Delete every cached peer except the bootstrap seeds; returns how many were deleted."""
        with self._pm_db(write=True) as db:
            gone = [r[0] for r in db.execute("SELECT node_id FROM peer_cache WHERE NOT COALESCE(is_bootstrap_seed, 0)")]
            db.execute("DELETE FROM peer_cache WHERE NOT COALESCE(is_bootstrap_seed, 0)")
        return len(gone)

    def _prune_stale_peers(self, max_age_seconds: float = 86400) -> int:
        """Delete non-seed peers not seen for ``max_age_seconds``; returns how many were deleted.
        With a node attached, a member alive now is never pruned."""
        cutoff = _wall() - max_age_seconds
        keep = alive_peer_ids(self) if attached_node(self) is not None else frozenset()
        with self._pm_db(write=True) as db:
            stale = [r[0] for r in db.execute(
                "SELECT node_id FROM peer_cache WHERE NOT COALESCE(is_bootstrap_seed, 0)"
                " AND COALESCE(last_seen, 0) < ?", (cutoff,)) if r[0] not in keep]
            db.executemany("DELETE FROM peer_cache WHERE node_id = ?", [(n,) for n in stale])
        return len(stale)

    def peer_health_check(self) -> dict[str, Any]:
        """``is_healthy, cached_peers, active_peers, bootstrap_seeds, nat_blocked_count``.

        Healthy when at least one peer is alive, or when there is nobody else to reach (a node
        alone in its cluster). ``active_peers`` comes from membership when a node is attached.
        """
        self._pm_cache_alive_members()
        active = alive_peer_ids(self)
        cached = self._get_cached_peer_count()
        seeds = list(getattr(self, "bootstrap_seeds", None) or [])
        node = attached_node(self)
        me = getattr(self, "node_id", None)
        if node is not None:
            others = [h for n, h in node.config.hosts.items() if n != me]
            known = len(others) + len(set(node.membership.members()) - {h.node_id for h in others})
            nat_blocked = sum(1 for h in others if h.nat_blocked)
        else:
            peers = [info for _, info in _host_peers_snapshot(self)]
            known = len(peers) + cached + len(seeds)
            blocked = getattr(self, "_nat_blocked_peers", None)
            nat_blocked = (len(blocked) if blocked is not None
                           else sum(1 for info in peers if getattr(info, "nat_blocked", False)))
        return {
            "is_healthy": bool(active) or known == 0,
            "cached_peers": cached,
            "active_peers": len(active),
            "bootstrap_seeds": len(seeds),
            "nat_blocked_count": nat_blocked,
        }

    def health_check(self) -> dict[str, Any]:
        """``{"healthy", "message", "details": {"mixin_type": "peer_manager", ...}}`` from
        ``peer_health_check()``: "Peer manager (N active, M cached)" or "No peers available"."""
        status = self.peer_health_check()
        healthy = bool(status.get("is_healthy", False))
        message = (f"Peer manager ({status['active_peers']} active, {status['cached_peers']} cached)"
                   if healthy else "No peers available")
        return {"healthy": healthy, "message": message,
                "details": {"mixin_type": PeerManagerMixin.MIXIN_TYPE, **status}}

    # -- Internals (prefixed _pm_ so they cannot collide with the host's other mixins) -----------

    def _pm_sync_results(self) -> dict[str, Any]:
        """The host's ``_p2p_sync_results`` dict (peer -> list of bools), created when missing."""
        results = getattr(self, "_p2p_sync_results", None)
        if not isinstance(results, dict):
            results = {}
            self._p2p_sync_results = results
        return results

    def _pm_state(self) -> _PeerManagerState:
        state = self.__dict__.get("_ringrift_pm_state")
        if state is None:
            state = self.__dict__.setdefault("_ringrift_pm_state", _PeerManagerState())
        return state

    @contextlib.contextmanager
    def _pm_db(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection to ``db_path`` for one operation (a write is one IMMEDIATE transaction)."""
        path = os.fspath(self.db_path)
        state = self._pm_state()
        db = sqlite3.connect(path, timeout=10.0, isolation_level=None)
        try:
            if path not in state.schema_ready:
                db.execute(_SCHEMA)
                state.schema_ready.add(path)
            if not write:
                yield db
                return
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()

    def _pm_peer_id(self, value: object, caller: str) -> str | None:
        """The node id ``value`` names (an address mapped through the node or the cache), or None."""
        node_id = to_node_id(self, value)
        if node_id is None and isinstance(value, str) and value.strip():
            node_id = self._pm_id_from_cache(value)
        if node_id is None:
            level = logging.INFO if getattr(self, "verbose", False) else logging.DEBUG
            log.log(level, "%s: %r is not a node id and maps to no known node; ignored", caller, value)
        return node_id

    def _pm_id_from_cache(self, value: str) -> str | None:
        address, port = split_address(value)
        if not address:
            return None
        with self._pm_db() as db:
            rows = db.execute("SELECT node_id, port FROM peer_cache WHERE lower(host) = ? OR lower(tailscale_ip) = ?",
                              (address, address)).fetchall()
        ids = {n for n, p in rows if port is None or p == port}
        return ids.pop() if len(ids) == 1 else None

    def _pm_upsert(self, node_id: str, host: str | None, port: Any, tailscale_ip: str | None) -> None:
        host = (host or "").strip()
        port_number = _port(port)
        tailscale_ip = (tailscale_ip or "").strip() or None
        now = _wall()
        seeds = {s.strip().lower() for s in (getattr(self, "bootstrap_seeds", None) or []) if isinstance(s, str)}
        with self._pm_db(write=True) as db:
            row = db.execute("SELECT host, port, tailscale_ip, is_bootstrap_seed FROM peer_cache WHERE node_id = ?",
                             (node_id,)).fetchone()
            if row is not None:
                host = host or (row[0] or "")
                port_number = port_number or _port(row[1])
                tailscale_ip = tailscale_ip or row[2]
            seed = bool(row is not None and row[3]) or any(
                a and port_number and _join(a, port_number).lower() in seeds for a in (host, tailscale_ip))
            if row is None:
                db.execute(
                    "INSERT INTO peer_cache (node_id, host, port, tailscale_ip, last_seen, success_count,"
                    " failure_count, reputation_score, is_bootstrap_seed) VALUES (?, ?, ?, ?, ?, 0, 0, ?, ?)",
                    (node_id, host, port_number, tailscale_ip, now, REPUTATION_START, int(seed)))
            else:
                db.execute("UPDATE peer_cache SET host = ?, port = ?, tailscale_ip = ?, last_seen = ?,"
                           " is_bootstrap_seed = ? WHERE node_id = ?",
                           (host, port_number, tailscale_ip, now, int(seed), node_id))
            self._pm_evict(db)

    def _pm_evict(self, db: sqlite3.Connection) -> None:
        """Keep at most PEER_CACHE_MAX_ENTRIES rows: drop the lowest (reputation, last_seen) non-seeds."""
        excess = int(db.execute("SELECT COUNT(*) FROM peer_cache").fetchone()[0]) - PEER_CACHE_MAX_ENTRIES
        if excess <= 0:
            return
        victims = [r[0] for r in db.execute(
            "SELECT node_id FROM peer_cache WHERE NOT COALESCE(is_bootstrap_seed, 0)"
            " ORDER BY COALESCE(reputation_score, 0.5) ASC, COALESCE(last_seen, 0) ASC, node_id ASC LIMIT ?",
            (excess,))]
        db.executemany("DELETE FROM peer_cache WHERE node_id = ?", [(n,) for n in victims])

    def _pm_cache_alive_members(self) -> None:
        """With a node attached, write the alive members' addresses into the cache (by node id)."""
        node = attached_node(self)
        if node is None:
            return
        me = getattr(self, "node_id", None)
        for node_id, member in node.membership.members().items():
            if not member.is_alive or node_id == me:
                continue
            configured = node.config.hosts.get(node_id)
            host = member.host or (configured.address if configured else "")
            port = member.api_port or (configured.api_port if configured else 0)
            tailscale_ip = configured.tailscale_ip if configured else None
            self._pm_upsert(node_id, host, port, tailscale_ip)


def _host_peers_snapshot(host: Any) -> list[tuple[Any, Any]]:
    lock = getattr(host, "peers_lock", None)
    with lock if lock is not None else contextlib.nullcontext():
        return list((getattr(host, "peers", None) or {}).items())


def _port(value: Any) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        return 0
    return port if 0 < port < 65536 else 0


def _join(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
