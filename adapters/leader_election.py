"""Drop-in for the host's ``leader_election.py``: quorum, election timing, split-brain, Raft
leader sync, dynamic voters and leader candidates, as a host mixin plus the module-level names
other host code imports. Every member of the host's module is here with the host's name,
parameters, defaults and return shape; the differences are listed in README ("What changes").

**Quorum is a strict majority of the configured voters** (``len(voters) // 2 + 1``, the node
itself counting when it is a voter), computed by ``ringrift_cluster.quorum`` — the
same rule the nodes elect by. Health levels: LOST below quorum, MINIMUM at exactly quorum,
DEGRADED at quorum+1, HEALTHY above. The host's ``min(2, n)``, its quorum of the *alive* voters,
its stale-quorum grace and its single-node fallback are not reproduced: they let two disjoint
groups both believe they had quorum. With **no voters configured** quorum checks are off, as in
the host: quorum is met and the health is HEALTHY.

Without a node the mixin reads the host attributes the host's module reads (``node_id``,
``peers`` + ``peers_lock``, ``role``, ``leader_id``, ``leader_lease_*``, ``voter_node_ids``,
``voter_grant_*``, ...), keeps its statistics in the host object and touches no process-global
Prometheus registry. With a node attached (``ringrift_cluster.host_bridge.attach(host, node)``):

- voters are the node's configured voters, alive peers come from its membership;
- the leader is ``node.consensus.leadership().leader`` (the Raft leader in raft mode, the leased
  leader in bully/hybrid mode), always a node id;
- split-brain is two nodes holding unexpired leases at once (bully) or claiming leadership in
  the same term (raft), from the node's own lease and the leader reports membership carries;
  resolving it asks the node's backend to step down (``host_bridge.step_down``);
- the voter set is the node's configuration: the adapter never promotes voters;
- metrics go into ``node.metrics`` and the node's own elections count in the latency stats.

Voter lists may hold addresses (a SWIM ``ip:7947`` leaked into the host's voter list); each is
mapped to its node id, and one that maps to no node still counts in the total but never as alive,
so a bad entry can only make quorum harder to reach, never easier.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import hashlib
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping
from uuid import uuid4

from ringrift_cluster.quorum import QuorumHealth, alive_voters, quorum_health, quorum_size
from ringrift_cluster.errors import ConfigError
from ringrift_cluster.host_bridge import (
    alive_peer_ids,
    attached_node,
    drain_leadership_events,
    leader_reports,
    raft_leads,
    step_down,
    to_node_id,
)
from ringrift_cluster.model import ElectionOutcome, node_id_problem

__all__ = [
    "ALLOW_SINGLE_NODE_FALLBACK",
    "CONSENSUS_MODE",
    "DYNAMIC_VOTER_ENABLED",
    "DYNAMIC_VOTER_PROMOTION_DELAY",
    "LEADER_LEASE_EXPIRY_GRACE_SECONDS",
    "QUORUM_STALE_GRACE_SECONDS",
    "RAFT_ENABLED",
    "SINGLE_NODE_FALLBACK_TIMEOUT",
    "VOTER_MAX_ERROR_RATE",
    "VOTER_MIN_QUORUM",
    "VOTER_MIN_UPTIME_SECONDS",
    "VOTER_PROMOTION_CIRCUIT_BREAKER_FAILURES",
    "VOTER_PROMOTION_CIRCUIT_BREAKER_TIMEOUT",
    "VOTER_PROMOTION_COOLOFF_PERIOD",
    "VOTER_QUORUM_MARGIN",
    "LeaderElectionMixin",
    "QuorumFailureEvent",
    "QuorumHealthLevel",
    "VoterPromotionCircuitBreaker",
    "check_quorum",
    "check_quorum_strict",
    "should_block_election",
]

log = logging.getLogger("ringrift.adapters.leader_election")
logger = log  # the host's module-level name

# -- Constants (the host's names and defaults; RINGRIFT_* overrides read at import) -------------


def _env_int(var: str, default: int, env: Mapping[str, str] | None = None) -> int:
    """``default``, or the non-negative integer in ``var``; a bad value is a ConfigError naming it."""
    raw = (os.environ if env is None else env).get(var, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise ConfigError(var, raw, "a whole number of seconds >= 0")
    return int(raw)


def _env_flag(var: str, default: bool, env: Mapping[str, str] | None = None) -> bool:
    raw = (os.environ if env is None else env).get(var, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(var, raw, "true or false")


def _env_mode(var: str, default: str, env: Mapping[str, str] | None = None) -> str:
    raw = (os.environ if env is None else env).get(var, "").strip().lower()
    if not raw:
        return default
    if raw not in ("bully", "raft", "hybrid"):
        raise ConfigError(var, raw, "bully, raft or hybrid")
    return raw


# Kept for the host code that imports it; it does NOT decide quorum (a strict majority does).
VOTER_MIN_QUORUM: int = _env_int("RINGRIFT_VOTER_MIN_QUORUM", 2)
CONSENSUS_MODE: str = _env_mode("RINGRIFT_CONSENSUS_MODE", "bully")
RAFT_ENABLED: bool = _env_flag("RINGRIFT_RAFT_ENABLED", False)
LEADER_LEASE_EXPIRY_GRACE_SECONDS: int = _env_int("RINGRIFT_LEADER_LEASE_EXPIRY_GRACE_SECONDS", 60)
# Read for compatibility; the strict quorum never falls back to a single node or a stale quorum.
SINGLE_NODE_FALLBACK_TIMEOUT: int = _env_int("RINGRIFT_SINGLE_NODE_FALLBACK_TIMEOUT", 180)
ALLOW_SINGLE_NODE_FALLBACK: bool = _env_flag("RINGRIFT_ALLOW_SINGLE_NODE", True)
QUORUM_STALE_GRACE_SECONDS: int = _env_int("RINGRIFT_QUORUM_STALE_GRACE", 60)
DYNAMIC_VOTER_ENABLED: bool = _env_flag("RINGRIFT_P2P_DYNAMIC_VOTER", False)
VOTER_QUORUM_MARGIN = 1  # promote when alive voters <= quorum + margin
VOTER_MIN_UPTIME_SECONDS = 300.0
VOTER_MAX_ERROR_RATE = 0.10
DYNAMIC_VOTER_PROMOTION_DELAY: int = _env_int("RINGRIFT_P2P_DYNAMIC_VOTER_PROMOTION_DELAY", 60)
VOTER_PROMOTION_CIRCUIT_BREAKER_FAILURES = 3
VOTER_PROMOTION_CIRCUIT_BREAKER_TIMEOUT = 300
VOTER_PROMOTION_COOLOFF_PERIOD = VOTER_PROMOTION_CIRCUIT_BREAKER_TIMEOUT

LATENCY_SAMPLES_KEPT = 200
LATENCY_WINDOW = 10  # the host's rolling window for avg/min/max
QUORUM_FAILURES_KEPT = 50
NOTIFY_TIMEOUT_S = 5.0
CANDIDATES_STALE_S = 30.0

_monotonic = time.monotonic  # tests replace these to move the clocks
_wall = time.time


class QuorumHealthLevel(str, enum.Enum):
    HEALTHY = "healthy"  # more than one voter to spare
    DEGRADED = "degraded"  # exactly one voter to spare
    MINIMUM = "minimum"  # exactly a quorum: one more loss and it is gone
    LOST = "lost"  # below quorum: no leader may act, training dispatch stops

    @classmethod
    def from_quorum_health(cls, health: QuorumHealth) -> "QuorumHealthLevel":
        return cls(health.value)

    @property
    def level(self) -> int:
        """The numeric value of ``ringrift_quorum_health_level``: 3 healthy .. 0 lost."""
        return QuorumHealth(self.value).level


@dataclass
class QuorumFailureEvent:
    """One loss of quorum (the host's ``timestamp, previous_level, failure_id``), with what was
    missing."""

    timestamp: float
    previous_level: QuorumHealthLevel
    failure_id: str = field(default_factory=lambda: uuid4().hex[:8])
    node_id: str = ""
    alive_voters: int = 0
    total_voters: int = 0
    quorum_required: int = 0
    missing_voters: tuple[str, ...] = ()
    level: QuorumHealthLevel = QuorumHealthLevel.LOST

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["previous_level"] = QuorumHealthLevel(self.previous_level).value
        out["level"] = QuorumHealthLevel(self.level).value
        out["missing_voters"] = list(self.missing_voters)
        return out


class VoterPromotionCircuitBreaker:
    """The host's breaker for voter promotion: ``failure_threshold`` failures (each within
    ``timeout_seconds`` of the previous one) open it for ``timeout_seconds``; a success closes
    it and starts a cool-off of ``VOTER_PROMOTION_COOLOFF_PERIOD`` during which no promotion runs.
    """

    def __init__(self, failure_threshold: int = VOTER_PROMOTION_CIRCUIT_BREAKER_FAILURES,
                 timeout_seconds: float = VOTER_PROMOTION_CIRCUIT_BREAKER_TIMEOUT):
        self._failure_threshold = failure_threshold
        self._timeout_seconds = timeout_seconds
        self._failure_count = 0
        self._last_failure_time = 0.0
        self._opened_at = 0.0
        self._last_promotion_time = 0.0
        self._lock = threading.RLock()

    @property
    def is_open(self) -> bool:
        """True while promotions are blocked; closes itself once ``timeout_seconds`` passed."""
        with self._lock:
            if self._opened_at == 0.0:
                return False
            if _wall() - self._opened_at > self._timeout_seconds:
                self._reset()
                return False
            return True

    @property
    def cooloff_active(self) -> bool:
        """True within ``VOTER_PROMOTION_COOLOFF_PERIOD`` after a successful promotion."""
        with self._lock:
            if self._last_promotion_time == 0.0:
                return False
            return _wall() - self._last_promotion_time < VOTER_PROMOTION_COOLOFF_PERIOD

    def record_failure(self) -> None:
        with self._lock:
            now = _wall()
            if now - self._last_failure_time > self._timeout_seconds:
                self._failure_count = 0  # the previous failure is too old to count
            self._failure_count += 1
            self._last_failure_time = now
            if self._failure_count >= self._failure_threshold:
                if self._opened_at == 0.0:
                    log.warning("voter promotion circuit breaker opened after %d failures", self._failure_count)
                self._opened_at = now

    def record_success(self) -> None:
        with self._lock:
            self._failure_count = 0
            self._last_failure_time = 0.0
            self._last_promotion_time = _wall()
            if self._opened_at > 0:
                log.info("voter promotion circuit breaker closed after a successful promotion")
                self._opened_at = 0.0

    def _reset(self) -> None:
        with self._lock:
            self._failure_count = 0
            self._last_failure_time = 0.0
            self._opened_at = 0.0

    def get_status(self) -> dict[str, Any]:
        """What the host's ``GET /circuit-breakers/status`` shows."""
        with self._lock:
            now = _wall()
            return {
                "is_open": self.is_open,
                "cooloff_active": self.cooloff_active,
                "failure_count": self._failure_count,
                "failure_threshold": self._failure_threshold,
                "time_since_last_failure": now - self._last_failure_time if self._last_failure_time else None,
                "time_until_reset": (max(0, self._timeout_seconds - (now - self._opened_at))
                                     if self._opened_at else None),
                "cooloff_remaining": (max(0, VOTER_PROMOTION_COOLOFF_PERIOD - (now - self._last_promotion_time))
                                      if self._last_promotion_time else None),
            }


# -- Quorum functions (pure) ------------------------------------------------------------------


def _alive_ids(alive_peers: Iterable[str] | Mapping[str, Any] | None) -> set[str]:
    """Node ids from a list of ids, or from a peers mapping (its alive entries)."""
    if alive_peers is None:
        return set()
    if isinstance(alive_peers, Mapping):
        out = set()
        for key, info in alive_peers.items():
            check = getattr(info, "is_alive", None)
            if check is None or (check() if callable(check) else check):
                out.add(key)
        return out
    return {p for p in alive_peers if isinstance(p, str)}


def _quorum(voters: Iterable[str] | None, alive_peers: Any, self_node_id: str | None) -> tuple[list[str], set[str], int]:
    voter_list = sorted({v for v in (voters or ()) if isinstance(v, str) and v})
    alive = {a for a in _alive_ids(alive_peers) if node_id_problem(a) is None}  # an address is never alive
    if self_node_id:
        alive.add(self_node_id)
    return voter_list, alive, alive_voters(voter_list, alive)


def check_quorum(voters: list[str], alive_peers: dict[str, Any], self_node_id: str) -> bool:
    """True when a strict majority of ``voters`` is alive (``self_node_id`` counts as alive), or
    when no voters are configured (quorum checks off, as in the host)."""
    return check_quorum_strict(voters, alive_peers, self_node_id)[0]


def check_quorum_strict(voters: list[str], alive_peers: dict[str, Any], self_node_id: str) -> tuple[bool, str]:
    """The same decision as ``check_quorum``, with the reason: ``(True, "OK")`` or
    ``(False, "Quorum lost: a/n voters alive ...")``.

    ``alive_peers`` is a peers mapping (entries whose ``is_alive()`` is true count) or an iterable
    of node ids. Voter entries that are not node ids (addresses) count in the total and never as
    alive, and are named in the reason.
    """
    voter_list, alive, alive_count = _quorum(voters, alive_peers, self_node_id)
    if not voter_list:
        return True, "OK"
    need = quorum_size(len(voter_list))
    if alive_count >= need:
        return True, "OK"
    missing = [v for v in voter_list if v not in alive]
    reason = f"Quorum lost: {alive_count}/{len(voter_list)} voters alive (quorum {need}; missing {', '.join(missing)})"
    bad = [v for v in voter_list if node_id_problem(v) is not None]
    if bad:
        reason += f"; not node ids (never counted alive): {', '.join(bad)}"
    return False, reason


def should_block_election(
    voters: list[str],
    alive_peers: dict[str, Any],
    self_node_id: str,
    *,
    coordinators: Iterable[str] | None = None,
    current_leader: str | None = None,
    leader_lease_expires: float | None = None,
    now: float | None = None,
) -> tuple[bool, str]:
    """Whether an election must not start now, and why (the host's ``(not quorum_ok, reason)``).

    With the host's three arguments: blocked exactly when there is no quorum. The keyword
    arguments add our gates: with ``coordinators``, only a voter among them may start one; with
    ``current_leader`` and ``leader_lease_expires`` (wall clock), not while another leader's lease
    is unexpired.
    """
    if coordinators is not None:
        voter_set = {v for v in (voters or ()) if isinstance(v, str)}
        if voter_set and self_node_id not in voter_set:
            return True, f"not_a_voter: {self_node_id} is not among the voters"
        if self_node_id not in set(coordinators):
            return True, f"not_a_coordinator: {self_node_id} is not allowed to coordinate"
    ok, reason = check_quorum_strict(voters, alive_peers, self_node_id)
    if not ok:
        return True, reason
    now = _wall() if now is None else now
    if current_leader and current_leader != self_node_id and leader_lease_expires and leader_lease_expires > now:
        return True, f"leader_lease_valid: {current_leader} holds a lease for {leader_lease_expires - now:.1f}s more"
    return False, reason


# -- Per-host state ---------------------------------------------------------------------------


@dataclass
class _Sample:
    outcome: str
    latency_s: float
    at: float
    source: str  # "host" (recorded by the host) | "node" (the attached node's own election)


class _LeaderElectionState:
    """What the mixin keeps per host object besides the host's own attribute names."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.election_started: float | None = None  # monotonic
        self.samples: collections.deque[_Sample] = collections.deque(maxlen=LATENCY_SAMPLES_KEPT)
        self.outcomes = {o.value: 0 for o in ElectionOutcome}
        self.latency_sum = {o.value: 0.0 for o in ElectionOutcome}
        self.timeouts_detected = 0  # stuck elections abandoned by _check_election_timeout
        self.failures: collections.deque[QuorumFailureEvent] = collections.deque(maxlen=QUORUM_FAILURES_KEPT)
        self.last_level: QuorumHealthLevel | None = None
        self.voter_key: tuple[str, ...] | None = None
        self.voter_version = 0
        # Metric values kept in the object when no node is attached (§7 names).
        self.is_leader = 0
        self.quorum_level = 0
        self.quorum_alive = 0
        self.quorum_total = 0
        self.quorum_margin = 0
        self.quorum_status = 0
        self.leader_changes = 0
        self.last_leader: str | None = None
        self.leader_seen = False


@dataclass(frozen=True)
class _QuorumView:
    voters: tuple[str, ...]
    alive_voter_ids: tuple[str, ...]
    required: int
    level: QuorumHealthLevel
    source: str

    @property
    def has_quorum(self) -> bool:
        return self.level is not QuorumHealthLevel.LOST

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(v for v in self.voters if v not in self.alive_voter_ids)


def _role_value(role: object) -> str | None:
    value = getattr(role, "value", role)
    return str(value) if value is not None else None


def _leader_role(current: object, name: str) -> Any:
    """``name`` ("leader"/"follower") in the type of the host's ``role`` (its NodeRole enum when
    it uses one, else a string)."""
    if isinstance(current, enum.Enum):
        try:
            return type(current)(name)
        except ValueError:
            pass
    return name


def _stable_priority(node_id: str) -> int:
    """The same number for a node id on every node and in every process (lower leads first)."""
    return int.from_bytes(hashlib.sha256(node_id.encode()).digest()[:8], "big") % 1_000_000


class LeaderElectionMixin:
    """Quorum checks, election timing, split-brain, Raft sync, dynamic voters and leader
    candidates, mixed into the host's orchestrator."""

    MIXIN_TYPE = "leader_election"
    ELECTION_TIMEOUT_THRESHOLD_SECONDS: float = 30.0

    # The host's per-instance state, with its defaults (set on the instance when they change).
    _voter_promotion_cb: VoterPromotionCircuitBreaker | None = None
    _election_started_at: float = 0.0
    _last_election_latency_seconds: float = 0.0
    _election_latencies: collections.deque[float] | None = None
    _elections_completed: int = 0
    _elections_won: int = 0
    _elections_lost: int = 0
    _elections_timeout: int = 0
    _last_quorum_health_level: QuorumHealthLevel | None = None
    _quorum_lost_at: float | None = None
    _single_node_mode: bool = False
    _last_healthy_quorum_at: float | None = None
    _last_healthy_voter_list: list[str] | None = None
    _current_failure_event: QuorumFailureEvent | None = None
    _top_leader_candidates: list[dict[str, Any]] = []
    _candidates_updated_at: float = 0.0

    # -- Election timing -----------------------------------------------------------------------

    def _start_election_timing(self) -> None:
        """Mark the start of an election attempt (a second call restarts the clock)."""
        state = self._le_state()
        with state.lock:
            state.election_started = _monotonic()
        self._election_started_at = _wall()

    def _record_election_latency(self, outcome: str) -> float:
        """End the attempt started by ``_start_election_timing``: record and return its latency in
        seconds (``outcome``: won / lost / timeout / adopted). Returns 0.0, recording nothing,
        when no attempt was started."""
        value = str(getattr(outcome, "value", outcome))
        state = self._le_state()
        with state.lock:
            started, state.election_started = state.election_started, None
            if started is None:
                return 0.0
            latency = max(0.0, _monotonic() - started)
            self._le_add_sample(state, _Sample(value, latency, _wall(), "host"))
        self._election_started_at = 0.0
        self._last_election_latency_seconds = latency
        window = self._election_latencies
        if window is None:
            window = self._election_latencies = collections.deque(maxlen=LATENCY_WINDOW)
        window.append(latency)
        self._elections_completed = self._elections_completed + 1
        if value in ("won", "lost", "timeout"):
            name = f"_elections_{value}"
            setattr(self, name, getattr(self, name) + 1)
        node = attached_node(self)
        if node is not None:
            node.metrics.election_latency.labels(outcome=value).observe(latency)
        log.info("election completed in %.2fs, outcome=%s", latency, value)
        return latency

    def get_election_latency_stats(self) -> dict[str, Any]:
        """The host's keys (last/avg/min/max over the last 10 elections, counts by outcome, whether
        one is in progress), plus counts and percentiles over all recorded elections. With a
        node attached its own elections are included."""
        state = self._le_state()
        self._le_drain_node_events(state)
        with state.lock:
            recent = sorted(s.latency_s for s in state.samples)
            window = [s.latency_s for s in list(state.samples)[-LATENCY_WINDOW:]]
            total = sum(state.outcomes.values())
            last = state.samples[-1] if state.samples else None
            started = state.election_started
            stats: dict[str, Any] = {
                "last_latency_seconds": last.latency_s if last else 0.0,
                "elections_completed": total,
                "elections_won": state.outcomes.get("won", 0),
                "elections_lost": state.outcomes.get("lost", 0),
                "elections_timeout": state.outcomes.get("timeout", 0) + state.timeouts_detected,
                "election_in_progress": started is not None,
                "avg_latency_seconds": sum(window) / len(window) if window else 0.0,
                "min_latency_seconds": min(window) if window else 0.0,
                "max_latency_seconds": max(window) if window else 0.0,
                "latency_samples": len(window),
                # ours: over every election recorded
                "total_elections": total,
                "outcomes": dict(state.outcomes),
                "mean_latency_s": round(sum(state.latency_sum.values()) / total, 6) if total else 0.0,
                "mean_latency_by_outcome_s": {
                    o: round(state.latency_sum.get(o, 0.0) / n, 6) if n else 0.0 for o, n in state.outcomes.items()},
                "p50_latency_s": _percentile(recent, 0.50),
                "p95_latency_s": _percentile(recent, 0.95),
                "samples": len(recent),
                "last_outcome": last.outcome if last else None,
                "last_source": last.source if last else None,
                "in_progress": started is not None,
            }
            if started is not None:
                stats["current_election_duration_seconds"] = max(0.0, _monotonic() - started)
        return stats

    def _check_election_timeout(self) -> dict[str, Any]:
        """An election running longer than ``ELECTION_TIMEOUT_THRESHOLD_SECONDS`` is abandoned: its
        timer is reset, it counts as a timeout and ``ELECTION_TIMEOUT_DETECTED`` is emitted.
        Returns ``election_stuck, duration_seconds, should_escalate, action_taken``."""
        result: dict[str, Any] = {"election_stuck": False, "duration_seconds": 0.0,
                                  "should_escalate": False, "action_taken": None}
        state = self._le_state()
        with state.lock:
            started = state.election_started
            if started is None:
                return result
            duration = max(0.0, _monotonic() - started)
            result["duration_seconds"] = duration
            if duration < self.ELECTION_TIMEOUT_THRESHOLD_SECONDS:
                return result
            state.election_started = None
            state.timeouts_detected += 1
        result.update(election_stuck=True, should_escalate=True, action_taken="election_timer_reset")
        self._election_started_at = 0.0
        self._elections_timeout = self._elections_timeout + 1
        log.warning("election in progress for %.1fs (threshold %ss): abandoned", duration,
                    self.ELECTION_TIMEOUT_THRESHOLD_SECONDS)
        self._le_emit("ELECTION_TIMEOUT_DETECTED", {
            "node_id": getattr(self, "node_id", None), "duration_seconds": duration,
            "threshold_seconds": self.ELECTION_TIMEOUT_THRESHOLD_SECONDS,
            "current_leader": self._le_leader(), "timestamp": _wall()})
        return result

    # -- Quorum --------------------------------------------------------------------------------

    def _calculate_dynamic_quorum(self, alive_voters: int) -> int:
        """The votes needed: a strict majority of the *configured* voters, whatever
        ``alive_voters`` is (0 when no voters are configured). The host's majority of the alive
        voters is not used: two partitions could each reach it."""
        total = len(self._le_voters())
        return quorum_size(total) if total else 0

    def _has_voter_quorum(self) -> bool:
        """True when a strict majority of the voters is alive (this node counting if a voter), or
        when no voters are configured."""
        return self._le_quorum().has_quorum

    def _check_quorum_health(self) -> QuorumHealthLevel:
        """LOST below quorum, MINIMUM at quorum, DEGRADED at quorum + 1, HEALTHY above; HEALTHY
        with no voters configured. No grace period and no single-node fallback: LOST is LOST."""
        return self._le_quorum().level

    def _update_quorum_metrics(self, level: QuorumHealthLevel, alive: int, total: int, quorum: int) -> None:
        """Set the quorum gauges (level 3..0, alive, total, margin): in the attached node's
        registry (recomputed from its membership), else in this object."""
        node = attached_node(self)
        if node is not None:
            node.refresh_metrics()
            return
        state = self._le_state()
        with state.lock:
            state.quorum_level = QuorumHealthLevel(level).level
            state.quorum_alive, state.quorum_total, state.quorum_margin = alive, total, alive - quorum
            state.quorum_status = 0 if level is QuorumHealthLevel.LOST else 1

    def _on_quorum_health_changed(self, old_level: QuorumHealthLevel, new_level: QuorumHealthLevel,
                                  alive: int, total: int, quorum: int) -> None:
        """Log the change by severity, update the gauges, emit ``QUORUM_HEALTH_CHANGED``."""
        self._update_quorum_metrics(new_level, alive, total, quorum)
        if new_level is QuorumHealthLevel.LOST:
            log.error("QUORUM LOST: %d/%d voters alive, need %d", alive, total, quorum)
        elif new_level is QuorumHealthLevel.MINIMUM:
            log.warning("quorum at minimum: %d/%d voters alive (exactly %d)", alive, total, quorum)
        elif new_level is QuorumHealthLevel.DEGRADED:
            log.warning("quorum degraded: %d/%d voters alive (%d required)", alive, total, quorum)
        else:
            log.info("quorum %s -> %s: %d/%d voters alive", QuorumHealthLevel(old_level).value,
                     QuorumHealthLevel(new_level).value, alive, total)
        self._le_emit("QUORUM_HEALTH_CHANGED", {
            "old_level": QuorumHealthLevel(old_level).value, "new_level": QuorumHealthLevel(new_level).value,
            "alive_voters": alive, "total_voters": total, "quorum_required": quorum,
            "node_id": getattr(self, "node_id", None), "timestamp": _wall()})

    def get_quorum_health_status(self) -> dict[str, Any]:
        """The host's keys (``health_level``, counts, ``margin``, ``is_healthy/at_risk/lost``, the
        single-node and partition blocks) plus the voters, who is missing and recent losses."""
        view = self._le_quorum()
        state = self._le_state()
        with state.lock:
            failures = [e.to_dict() for e in state.failures]
        now = _wall()
        alive, total = len(view.alive_voter_ids), len(view.voters)
        lost_at = self._quorum_lost_at
        event = self._current_failure_event
        healthy_at = self._last_healthy_quorum_at
        return {
            "health_level": view.level.value,
            "alive_voters": alive,
            "total_voters": total,
            "quorum_required": view.required,
            "margin": alive - view.required,
            "is_healthy": view.level is QuorumHealthLevel.HEALTHY,
            "is_at_risk": view.level in (QuorumHealthLevel.DEGRADED, QuorumHealthLevel.MINIMUM),
            "is_lost": view.level is QuorumHealthLevel.LOST,
            "single_node_fallback": {
                "enabled": ALLOW_SINGLE_NODE_FALLBACK,
                "active": bool(self._single_node_mode),
                "timeout_seconds": SINGLE_NODE_FALLBACK_TIMEOUT,
                "quorum_lost_duration": now - lost_at if lost_at else 0.0,
                "time_until_fallback": None,  # a lost quorum never falls back to one node here
            },
            "partition_tolerance": {
                "grace_period_seconds": QUORUM_STALE_GRACE_SECONDS,
                "last_healthy_at": healthy_at,
                "last_healthy_voters": self._last_healthy_voter_list,
                "time_since_healthy": now - healthy_at if healthy_at else None,
                "current_failure_event": {
                    "failure_id": event.failure_id if event else None,
                    "started_at": event.timestamp if event else None,
                    "duration": now - event.timestamp if event else None,
                    "previous_level": QuorumHealthLevel(event.previous_level).value if event else None,
                },
                "within_grace_period": False,  # no grace: a lost quorum is reported at once
            },
            # ours
            "level": view.level.value,
            "level_value": view.level.level,
            "has_quorum": view.has_quorum,
            "voters": list(view.voters),
            "alive_voter_ids": list(view.alive_voter_ids),
            "missing_voters": list(view.missing),
            "voter_config_version": self._get_voter_config_version(),
            "voter_config_hash": self._get_voter_config_hash(),
            "recent_failures": failures,
            "source": view.source,
            "timestamp": now,
        }

    def _can_enter_single_node_mode(self) -> bool:
        """Whether this node may lead alone. With voters configured: only when it is by itself a
        strict majority of them (a single-voter cluster). With none (quorum off): the host's rule —
        no preferred leader other than us, no peer already alone, lowest id among the alive."""
        me = getattr(self, "node_id", None)
        if not me:
            return False
        voters = self._le_voters()
        if voters:
            return me in voters and quorum_size(len(voters)) == 1
        preferred = self._le_preferred_leader()
        if preferred and preferred != me:
            return False
        alive = alive_peer_ids(self)
        if not alive:
            return True
        if attached_node(self) is None:
            with _peers_lock(self):
                peers = dict(getattr(self, "peers", None) or {})
            if any(getattr(info, "single_node_mode", False) for key, info in peers.items() if key != me):
                return False
        return min({me, *alive}) == me

    def _get_voter_quorum_status(self) -> dict[str, Any]:
        """``voters, alive, alive_list, total, quorum_required, quorum_met`` (the host's short form
        ``voters, alive, total, quorum_met`` when no voters are configured)."""
        view = self._le_quorum()
        if not view.voters:
            return {"voters": [], "alive": 0, "total": 0, "quorum_met": True}
        return {"voters": list(view.voters), "alive": len(view.alive_voter_ids),
                "alive_list": list(view.alive_voter_ids), "total": len(view.voters),
                "quorum_required": view.required, "quorum_met": view.has_quorum}

    def get_priority_voters_for_recovery(self) -> list[str]:
        """The voters, those alive at the last evaluation with quorum first."""
        voters = list(self._le_voters())
        if not voters:
            return []
        out: list[str] = []
        for voter in [*(self._last_healthy_voter_list or []), *voters]:
            if voter in voters and voter not in out:
                out.append(voter)
        return out

    def get_quorum_recovery_status(self) -> dict[str, Any]:
        """How far quorum is: ``quorum_required, current_alive, voters_needed_for_quorum,
        priority_voters, last_healthy_voters, offline_healthy_voters, recovery_possible``."""
        view = self._le_quorum()
        last_healthy = list(self._last_healthy_voter_list or [])
        needed = max(0, view.required - len(view.alive_voter_ids))
        offline = [v for v in last_healthy if v not in view.alive_voter_ids]
        return {
            "quorum_required": view.required,
            "current_alive": len(view.alive_voter_ids),
            "voters_needed_for_quorum": needed,
            "priority_voters": self.get_priority_voters_for_recovery(),
            "last_healthy_voters": last_healthy,
            "offline_healthy_voters": offline,
            "recovery_possible": len(offline) >= needed,
        }

    # -- Voter configuration -------------------------------------------------------------------

    def _get_voter_config_version(self) -> int:
        """A local version of the voter set: 1 for the first one seen, +1 at every change."""
        self._le_voters()
        return self._le_state().voter_version

    def _get_voter_config_hash(self) -> str:
        """sha256 (first 16 hex) of the sorted voter ids: equal on every node with the same set."""
        voters = self._le_voters()
        return hashlib.sha256(",".join(voters).encode()).hexdigest()[:16]

    def _get_voter_promotion_cb(self) -> VoterPromotionCircuitBreaker:
        if self._voter_promotion_cb is None:
            self._voter_promotion_cb = VoterPromotionCircuitBreaker()
        return self._voter_promotion_cb

    # -- Dynamic voters ------------------------------------------------------------------------

    def _should_promote_voter(self) -> bool:
        """True when ``DYNAMIC_VOTER_ENABLED``, Raft does not lead, voters are configured and the
        alive voters are at most quorum + ``VOTER_QUORUM_MARGIN`` — and a majority of them is alive
        (a minority must never grow its own voter set). Never with a node attached: there the
        voters are the node's configuration."""
        if not DYNAMIC_VOTER_ENABLED or attached_node(self) is not None or self._use_raft_for_leadership():
            return False
        view = self._le_quorum()
        if not view.voters or not view.has_quorum:
            return False
        return len(view.alive_voter_ids) <= view.required + VOTER_QUORUM_MARGIN

    def _rank_voter_candidates(self) -> list[dict[str, Any]]:
        """Alive non-voter peers (node ids only) with ``VOTER_MIN_UPTIME_SECONDS`` of uptime and at
        most ``VOTER_MAX_ERROR_RATE`` errors, best first: ``node_id, score, uptime, error_rate,
        peer_count`` (score = uptime hours (max 24) + 10 x reliability + peers seen (max 20))."""
        voters = set(self._le_voters())
        alive = alive_peer_ids(self)
        now = _wall()
        with _peers_lock(self):
            peers = dict(getattr(self, "peers", None) or {})
        candidates: list[dict[str, Any]] = []
        for key, info in peers.items():
            node_id = to_node_id(self, key) if isinstance(key, str) else None
            if node_id is None or node_id in voters or node_id not in alive or node_id == getattr(self, "node_id", None):
                continue
            uptime = now - float(getattr(info, "first_seen", now) or now)
            if uptime < VOTER_MIN_UPTIME_SECONDS:
                continue
            error_rate = float(getattr(info, "error_count", 0) or 0) / max(int(getattr(info, "request_count", 1) or 1), 1)
            if error_rate > VOTER_MAX_ERROR_RATE:
                continue
            peer_count = int(getattr(info, "peer_count", 0) or 0)
            score = min(uptime / 3600, 24) + (1.0 - error_rate) * 10 + min(peer_count, 20)
            candidates.append({"node_id": node_id, "score": score, "uptime": uptime,
                               "error_rate": error_rate, "peer_count": peer_count})
        candidates.sort(key=lambda c: (-c["score"], c["node_id"]))
        return candidates

    async def _promote_to_voter(self, node_id: str) -> bool:
        """Add an alive peer (by node id) to ``voter_node_ids``, save, broadcast; True when it is a
        voter afterwards. Refused for an address, a peer not alive, without a majority of the
        current voters alive, and with a node attached (its voters are configuration)."""
        if node_id_problem(node_id) is not None:
            log.warning("cannot promote %r: not a node id", node_id)
            return False
        if attached_node(self) is not None:
            log.warning("cannot promote %s: the voters are the node's configuration", node_id)
            return False
        if node_id not in alive_peer_ids(self):
            log.warning("cannot promote %s: peer not found or not alive", node_id)
            return False
        if not self._le_quorum().has_quorum:
            log.warning("cannot promote %s: no majority of the voters is alive", node_id)
            return False
        if self.voter_node_ids is None:
            self.voter_node_ids = []
        if node_id in self.voter_node_ids:
            return True
        self.voter_node_ids.append(node_id)
        total = len(self._le_voters())
        log.info("promoted %s to voter (total voters: %d)", node_id, total)
        self._le_emit("VOTER_PROMOTED", {"node_id": node_id, "total_voters": total,
                                         "quorum_required": quorum_size(total)})
        self._le_save_state()
        await self._broadcast_voter_change("promote", node_id)
        return True

    async def _maybe_promote_voter(self) -> bool:
        """Promote the best candidate when ``_should_promote_voter()``, unless the circuit breaker
        is open or cooling off; the result is recorded in the breaker. True when one was promoted."""
        if not self._should_promote_voter():
            return False
        breaker = self._get_voter_promotion_cb()
        if breaker.is_open or breaker.cooloff_active:
            return False
        candidates = self._rank_voter_candidates()
        if not candidates:
            log.warning("quorum at risk but no suitable candidate for voter promotion")
            return False
        best = candidates[0]
        success = await self._promote_to_voter(best["node_id"])
        if success:
            breaker.record_success()
        else:
            breaker.record_failure()
        return success

    async def _broadcast_voter_change(self, action: str, node_id: str) -> int:
        """``POST /election/voter_update`` (``action, node_id, voters, source_node, timestamp``) to
        every alive peer; returns how many answered 200. Never raises for an unreachable peer."""
        me = getattr(self, "node_id", None)
        payload = {"action": action, "node_id": node_id, "voters": list(getattr(self, "voter_node_ids", None) or []),
                   "source_node": me, "timestamp": _wall()}
        targets = [url for peer in sorted(alive_peer_ids(self)) if (url := self._le_peer_url(peer))]
        results = await asyncio.gather(
            *(asyncio.to_thread(_post, url + "/election/voter_update", json.dumps(payload).encode(),
                                self._le_headers()) for url in targets),
            return_exceptions=True)
        notified = sum(1 for r in results if r is True)
        log.info("notified %d peers of voter %s", notified, action)
        return notified

    def _check_dynamic_voter_health(self) -> dict[str, Any]:
        """``dynamic_voter_enabled, total_voters, alive_voters, quorum_required,
        margin_threshold, should_promote, candidate_count, top_candidate``."""
        view = self._le_quorum()
        candidates = self._rank_voter_candidates() if DYNAMIC_VOTER_ENABLED else []
        return {
            "dynamic_voter_enabled": DYNAMIC_VOTER_ENABLED,
            "total_voters": len(view.voters),
            "alive_voters": len(view.alive_voter_ids) if view.voters else 0,
            "quorum_required": view.required,
            "margin_threshold": view.required + VOTER_QUORUM_MARGIN,
            "should_promote": self._should_promote_voter(),
            "candidate_count": len(candidates),
            "top_candidate": candidates[0] if candidates else None,
        }

    # -- Leases --------------------------------------------------------------------------------

    def _release_voter_grant_if_self(self) -> None:
        """When this node, as a voter, granted its lease to itself, forget that grant (on
        step-down): the grant fields become ``""`` / ``""`` / ``0.0``. With a node attached the
        node's own ledger is released by the node itself when it steps down."""
        me = getattr(self, "node_id", None)
        if not me or str(getattr(self, "voter_grant_leader_id", "") or "") != me:
            return
        self.voter_grant_leader_id = ""
        self.voter_grant_lease_id = ""
        self.voter_grant_expires = 0.0

    async def _notify_voters_lease_revoked(self) -> int:
        """Tell every voter that this node's lease (``leader_lease_id``) is given back
        (``POST /election/lease_revoke``); returns how many voters took it (this node included
        when it is a voter). Never raises for an unreachable voter; never blocks the loop."""
        me = getattr(self, "node_id", None)
        lease_id = getattr(self, "leader_lease_id", None)
        voters = self._le_voters()
        if not me or not voters:
            return 0
        count = 0
        if me in voters:
            self._release_voter_grant_if_self()
            count += 1
        if not lease_id:
            return count
        targets = [(v, self._le_peer_url(v)) for v in voters if v != me]
        body = json.dumps({"leader_id": me, "lease_id": lease_id,
                           "epoch": int(getattr(self, "_lease_epoch", 0) or 0)}).encode()
        results = await asyncio.gather(
            *(asyncio.to_thread(_post, url + "/election/lease_revoke", body, self._le_headers())
              for _, url in targets if url),
            return_exceptions=True)
        count += sum(1 for r in results if r is True)
        unreachable = [v for v, url in targets if not url]
        if unreachable:
            log.info("lease revoke: no address known for voters %s", ", ".join(unreachable))
        return count

    def _check_lease_expiry(self) -> dict[str, Any]:
        """Whether the known leader's lease ran out more than ``LEADER_LEASE_EXPIRY_GRACE_SECONDS``
        ago without a new leader (``lease_stale``; ``LEADER_LEASE_EXPIRED`` is then emitted).
        Returns ``lease_stale, lease_remaining, grace_exceeded_by, event_emitted, leader_id``.
        With a node attached the node never keeps a leader whose lease ran out: never stale."""
        now = _wall()
        node = attached_node(self)
        if node is not None:
            view = node.consensus.leadership()
            leader_id = view.leader or ""
            remaining = (view.lease_expires - now) if view.lease_expires else 0.0
            return {"lease_stale": False, "lease_remaining": remaining, "grace_exceeded_by": 0,
                    "event_emitted": False, "leader_id": leader_id}
        expires = _float(getattr(self, "leader_lease_expires", 0.0))
        leader_id = to_node_id(self, getattr(self, "leader_id", None)) or ""
        remaining = expires - now
        exceeded = max(0, -remaining - LEADER_LEASE_EXPIRY_GRACE_SECONDS)
        result = {"lease_stale": False, "lease_remaining": remaining, "grace_exceeded_by": exceeded,
                  "event_emitted": False, "leader_id": leader_id}
        if not leader_id or leader_id == getattr(self, "node_id", None) or exceeded <= 0:
            return result
        result["lease_stale"] = True
        log.warning("leader %s lease expired %.1fs beyond the %ss grace", leader_id, exceeded,
                    LEADER_LEASE_EXPIRY_GRACE_SECONDS)
        self._le_emit("LEADER_LEASE_EXPIRED", {
            "leader_id": leader_id, "lease_expiry_time": expires, "current_time": now,
            "grace_seconds": LEADER_LEASE_EXPIRY_GRACE_SECONDS, "expired_by_seconds": -remaining})
        result["event_emitted"] = True
        return result

    # -- Leader consistency, votes, split-brain ------------------------------------------------

    def _check_leader_consistency(self) -> tuple[bool, str]:
        """``(False, reason)`` when the role and the leader disagree (leader_id is us but the role
        is not leader, or the other way round); ``(True, "consistent")`` otherwise. With a node
        attached: the node's role against its consensus leadership."""
        me = getattr(self, "node_id", None)
        node = attached_node(self)
        if node is not None:
            view = node.consensus.leadership()
            role, leader = node.role, view.leader
            if view.is_self != (leader == me and leader is not None):
                return False, "leadership is_self disagrees with leader_id"
        else:
            role, leader = _role_value(getattr(self, "role", None)), getattr(self, "leader_id", None)
        if leader == me and role != "leader":
            return False, "leader_id=self but role!=leader"
        if leader != me and role == "leader":
            return False, "role=leader but leader_id!=self"
        return True, "consistent"

    def _has_voter_consensus_on_leader(self, proposed_leader: str) -> bool:
        """True when a strict majority of the voters name ``proposed_leader`` (or no voters are
        configured)."""
        voters = self._le_voters()
        if not voters:
            return True
        votes = self._count_votes_for_leader(proposed_leader)
        need = quorum_size(len(voters))
        if votes < need:
            log.warning("no consensus on leader %s: %d/%d voters agree", proposed_leader, votes, need)
        return votes >= need

    def _count_votes_for_leader(self, leader_id: str) -> int:
        """How many voters name ``leader_id`` as leader (1 with no voters configured): this node by
        its own view, the other alive voters by what they last reported."""
        voters = self._le_voters()
        if not voters:
            return 1
        wanted = to_node_id(self, leader_id)
        named = self._le_named_leaders()
        return sum(1 for v in voters if wanted is not None and named.get(v) == wanted)

    def _detect_split_brain(self) -> dict[str, Any] | None:
        """None, or ``{"leaders_seen": {leader: [voters naming it]}, "severity", "recommended_action"}``
        after emitting ``SPLIT_BRAIN_DETECTED`` and calling ``_resolve_split_brain``.

        Without a node (the host's rule): the alive voters name more than one leader. With a node:
        two nodes *hold* leadership at once — in the same term (raft or bully), or (bully) each
        with an unexpired lease, proven when another node's claim was heard after this node's
        current lease was last granted. Stale views of a past leader are not a split-brain.
        """
        voters = self._le_voters()
        if not voters:
            return None
        node = attached_node(self)
        if node is None:
            named = self._le_named_leaders()
            leaders_seen: dict[str, list[str]] = {}
            for voter in voters:
                if named.get(voter):
                    leaders_seen.setdefault(named[voter], []).append(voter)
            if len(leaders_seen) == 1:
                self_info = getattr(self, "self_info", None)
                if self_info is not None:
                    self_info.leader_consensus_id = next(iter(leaders_seen))
        else:
            leaders_seen = self._le_conflicting_leaders(node)
        if len(leaders_seen) <= 1:
            return None
        severity = "critical" if len(leaders_seen) >= 3 else "warning"
        log.error("SPLIT-BRAIN DETECTED: %d different leaders seen: %s", len(leaders_seen), sorted(leaders_seen))
        self._le_emit("SPLIT_BRAIN_DETECTED", {"leaders_seen": list(leaders_seen), "voter_count": len(voters),
                                               "severity": severity})
        self._resolve_split_brain(leaders_seen)
        return {"leaders_seen": leaders_seen, "severity": severity,
                "recommended_action": "force_election" if severity == "critical" else "wait"}

    def _resolve_split_brain(self, leaders_seen: dict[str, list[str]]) -> None:
        """If this node leads and is not the canonical leader (most voters naming it, then the
        lowest id), step down. With a node attached the node's backend steps down
        (``host_bridge.step_down``); the host's fields are not touched. Without, the host's
        fields are reset as the host does (role follower, lease cleared, grant released)."""
        me = getattr(self, "node_id", None)
        node = attached_node(self)
        leading = node.consensus.leadership().is_self if node is not None else (
            _role_value(getattr(self, "role", None)) == "leader")
        if not leading:
            return
        canonical, votes = None, 0
        for leader, named_by in leaders_seen.items():
            if len(named_by) > votes or (len(named_by) == votes and (canonical is None or leader < canonical)):
                canonical, votes = leader, len(named_by)
        if canonical is None:
            return
        self_info = getattr(self, "self_info", None) if node is None else None
        if self_info is not None:
            self_info.leader_consensus_id = canonical
        if canonical == me:
            log.info("split-brain resolution: this node (%s) is the canonical leader", me)
            return
        if node is not None:
            if step_down(self, "split_brain"):
                self._le_emit("SPLIT_BRAIN_RESOLVED", {"demoted_node": me, "canonical_leader": canonical,
                                                       "canonical_votes": votes})
            return
        if getattr(self, "_forced_leader_override", False) and _wall() < _float(getattr(self, "leader_lease_expires", 0)):
            log.warning("split-brain resolution: demotion to %s ignored (forced leader override)", canonical)
            return
        log.warning("split-brain resolution: demoting %s in favour of %s (%d votes)", me, canonical, votes)
        self.role = _leader_role(getattr(self, "role", None), "follower")
        self.leader_id = canonical
        self.leader_lease_id = ""
        self.leader_lease_expires = 0.0
        self.last_lease_renewal = 0.0
        self._release_voter_grant_if_self()
        self._le_save_state()
        self._le_emit("SPLIT_BRAIN_RESOLVED", {"demoted_node": me, "canonical_leader": canonical,
                                               "canonical_votes": votes})

    # -- Raft ----------------------------------------------------------------------------------

    def _use_raft_for_leadership(self) -> bool:
        """With a node: its leader comes from its own started Raft replica. Without (the host's
        rule): ``CONSENSUS_MODE == "raft"``, ``RAFT_ENABLED``, ``_raft_initialized`` and this node
        a voter."""
        if attached_node(self) is not None:
            return raft_leads(self)
        if CONSENSUS_MODE != "raft" or not RAFT_ENABLED or not getattr(self, "_raft_initialized", False):
            return False
        return getattr(self, "node_id", None) in self._le_voters()

    def _get_raft_leader_node_id(self) -> str | None:
        """The Raft leader's node id, or None. With a node: its Raft replica's leader. Without: the
        host's ``_raft_work_queue._getLeader()`` address, mapped to this node
        (``advertise_host:RAFT_BIND_PORT``) or to the one peer with that address."""
        node = attached_node(self)
        if node is not None:
            raft = getattr(node, "raft", None)
            return raft.leadership().leader if raft is not None else None
        queue = getattr(self, "_raft_work_queue", None)
        if queue is None:
            return None
        try:
            address = queue._getLeader()
        except Exception as e:  # the host's Raft object failing must not break the caller
            log.debug("Raft leader unavailable: %s", e)
            return None
        if address is None:
            return None
        address = str(address)
        port = _env_int("RINGRIFT_RAFT_BIND_PORT", 4321)
        if address == f"{getattr(self, 'advertise_host', '')}:{port}":
            return getattr(self, "node_id", None)
        leader_host = address.rsplit(":", 1)[0].strip("[]")
        matches = set()
        with _peers_lock(self):
            for key, info in (getattr(self, "peers", None) or {}).items():
                if (getattr(info, "tailscale_ip", None) or getattr(info, "host", None)) == leader_host:
                    matches.add(to_node_id(self, key))
        matches.discard(None)
        return matches.pop() if len(matches) == 1 else None

    def _sync_leader_from_raft(self) -> bool:
        """When Raft leads, copy its leader into the host's ``leader_id`` / ``role`` (leader: lease
        300 s, ``LEADER_ELECTED``; follower: lease cleared, grant released), save, emit
        ``P2P_LEADER_CHANGED``. True when something changed."""
        if not self._use_raft_for_leadership():
            return False
        raft_leader = self._get_raft_leader_node_id()
        if raft_leader is None or getattr(self, "leader_id", None) == raft_leader:
            return False
        me = getattr(self, "node_id", None)
        if (getattr(self, "_forced_leader_override", False) and raft_leader != me
                and _wall() < _float(getattr(self, "leader_lease_expires", 0))):
            log.info("Raft leader %s ignored (forced leader override)", raft_leader)
            return False
        old = getattr(self, "leader_id", None)
        self.leader_id = raft_leader
        role = getattr(self, "role", None)
        if raft_leader == me:
            if _role_value(role) != "leader":
                self.role = _leader_role(role, "leader")
                self.leader_lease_expires = _wall() + 300
                self._le_emit("LEADER_ELECTED", {"leader_id": me, "source": "raft"})
                self._le_broadcast_leadership()
        elif _role_value(role) == "leader":
            self.role = _leader_role(role, "follower")
            self.leader_lease_id = ""
            self.leader_lease_expires = 0.0
            self._release_voter_grant_if_self()
        self._le_save_state()
        self._le_emit("P2P_LEADER_CHANGED", {"old_leader": old, "new_leader": raft_leader, "source": "raft_sync"})
        log.info("leader synced from Raft: %s -> %s", old, raft_leader)
        return True

    # -- Leader --------------------------------------------------------------------------------

    def get_authoritative_leader(self) -> str | None:
        """The leader's node id (never an address), or None when no leader is valid now.

        With a node: ``node.consensus.leadership().leader``. Without: the Raft leader when Raft
        leads, else the host's ``leader_id`` while ``leader_lease_expires`` (wall clock) is in the
        future and that leader is not known dead.
        """
        leader = self._le_leader()
        self._le_note_leader(leader)
        return leader

    def election_health_check(self) -> dict[str, Any]:
        """The host's report: healthy when there is quorum (or no voters), no split-brain, no
        stale leader lease and no stuck election — a cluster with quorum and no leader yet is
        healthy. Runs the Raft sync, split-brain detection and stuck-election check as the host's
        does. Also carries our keys (``is_leader``, ``has_leader``, quorum detail)."""
        raft_synced = self._sync_leader_from_raft()
        using_raft = self._use_raft_for_leadership()
        view = self._le_quorum()
        level = self._check_quorum_health()
        leader = self.get_authoritative_leader()
        me = getattr(self, "node_id", None)
        node = attached_node(self)
        if node is not None:
            leadership = node.consensus.leadership()
            role, is_leader, expires = node.role, leadership.is_self, leadership.lease_expires
        else:
            role = _role_value(getattr(self, "role", None))
            is_leader = leader is not None and leader == me
            expires = _float(getattr(self, "leader_lease_expires", 0.0)) or None
        split_brain = None if using_raft and node is None else self._detect_split_brain()
        dynamic = self._check_dynamic_voter_health()
        lease_info = self._check_lease_expiry()
        stale = bool(lease_info.get("lease_stale"))
        has_quorum = view.has_quorum
        healthy = has_quorum and split_brain is None and not stale
        stats = self.get_election_latency_stats()
        result: dict[str, Any] = {
            "is_healthy": healthy,
            "role": role or "unknown",
            "leader_id": leader,
            "authoritative_leader": leader,
            "has_quorum": has_quorum,
            "voter_count": len(view.voters),
            "alive_voters": len(view.alive_voter_ids),
            "lease_remaining_seconds": max(0.0, expires - _wall()) if expires else 0.0,
            "split_brain_detected": split_brain is not None,
            "split_brain_info": split_brain,
            "using_raft_for_leadership": using_raft,
            "raft_leader_synced": raft_synced,
            "dynamic_voter": dynamic,
            "stale_leader_detected": stale,
            "lease_expiry_info": lease_info,
            "quorum_health_level": level.value,
            "quorum_at_risk": level in (QuorumHealthLevel.DEGRADED, QuorumHealthLevel.MINIMUM, QuorumHealthLevel.LOST),
            "election_latency": stats,
            # ours
            "is_leader": is_leader,
            "has_leader": leader is not None,
            "quorum_health": view.level.value,
            "total_voters": len(view.voters),
            "quorum_required": view.required,
            "lease_expires_in_s": round(expires - _wall(), 3) if expires else None,
            "election_in_progress": stats["in_progress"],
            "total_elections": stats["total_elections"],
            "election_outcomes": stats["outcomes"],
            "voter_config_hash": self._get_voter_config_hash(),
            "source": view.source,
        }
        if using_raft:
            result["raft_leader_node_id"] = self._get_raft_leader_node_id()
        timeout = self._check_election_timeout()
        result["election_timeout"] = timeout
        if timeout.get("election_stuck"):
            result["is_healthy"] = False
        return result

    def health_check(self) -> dict[str, Any]:
        """``{"healthy", "message", "details": {"mixin_type": "leader_election", ...}}`` from
        ``election_health_check()``."""
        status = self.election_health_check()
        healthy = bool(status.get("is_healthy", False))
        message = (f"Election (role={status.get('role', 'unknown')}, leader={status.get('leader_id', 'none')})"
                   if healthy else "No quorum")
        return {"healthy": healthy, "message": message,
                "details": {"mixin_type": LeaderElectionMixin.MIXIN_TYPE, **status}}

    # -- Leader candidates ---------------------------------------------------------------------

    def _rank_leader_candidates(self) -> list[dict[str, Any]]:
        """This node and every known peer (node ids) as ``node_id, priority, is_alive, is_self,
        uptime, is_voter``: voters first, then alive, then priority (lower first), then uptime."""
        me = getattr(self, "node_id", None)
        voters = set(self._le_voters())
        alive = alive_peer_ids(self)
        now = _wall()
        node = attached_node(self)
        candidates: list[dict[str, Any]] = []
        if me:
            started = node.uptime_s if node is not None else now - _float(getattr(self, "_start_time", now) or now)
            candidates.append({"node_id": me, "priority": self._compute_leader_priority(me), "is_alive": True,
                               "is_self": True, "uptime": started, "is_voter": me in voters})
        with _peers_lock(self):
            peers = dict(getattr(self, "peers", None) or {})
        first_seen: dict[str, float] = {}
        for key, info in peers.items():
            node_id = to_node_id(self, key) if isinstance(key, str) else None
            if node_id is not None:
                first_seen[node_id] = _float(getattr(info, "first_seen", now) or now)
        known = set(first_seen) | set(alive)
        if node is not None:
            known |= set(node.membership.members()) | set(node.config.hosts)
        for node_id in sorted(known - {me}):
            candidates.append({"node_id": node_id, "priority": self._compute_leader_priority(node_id),
                               "is_alive": node_id in alive, "is_self": False,
                               "uptime": now - first_seen.get(node_id, now), "is_voter": node_id in voters})
        candidates.sort(key=lambda c: (not c["is_voter"], not c["is_alive"], c["priority"], -c["uptime"], c["node_id"]))
        return candidates

    def _compute_leader_priority(self, node_id: str) -> int:
        """Lower leads first: a number in [0, 1000000) from the node id, the same on every node."""
        return _stable_priority(str(node_id))

    def update_leader_candidates(self) -> list[dict[str, Any]]:
        """Compute, cache and return the top 3 alive candidates."""
        top = [c for c in self._rank_leader_candidates() if c["is_alive"]][:3]
        self._top_leader_candidates = top
        self._candidates_updated_at = _wall()
        return top

    def get_leader_candidates(self, max_count: int = 3) -> list[dict[str, Any]]:
        """The cached top candidates (recomputed when older than 30 s), at most ``max_count``."""
        if _wall() - self._candidates_updated_at > CANDIDATES_STALE_S:
            self.update_leader_candidates()
        return self._top_leader_candidates[:max_count]

    def get_backup_leader_candidates(self) -> list[str]:
        """Node ids of the alive top candidates other than the current leader."""
        current = self._le_leader() if attached_node(self) is not None else to_node_id(self, getattr(self, "leader_id", None))
        return [c["node_id"] for c in self.get_leader_candidates() if c["node_id"] != current and c["is_alive"]]

    # -- Ours ----------------------------------------------------------------------------------

    def get_cluster_metrics(self) -> dict[str, Any]:
        """The §7 metric values as this host would export them, freshly updated.

        With a node: read back from ``node.metrics`` (the same values its ``/metrics`` serves).
        Without: the values kept in this object. Histograms give ``{outcome: {count, sum}}``;
        labelled gauges ``{label: value}``.
        """
        node = attached_node(self)
        self._le_quorum()
        self.get_authoritative_leader()
        if node is not None:
            node.refresh_metrics()
            self._le_drain_node_events(self._le_state())
            r = node.metrics.registry

            def value(name: str, **labels: str) -> float:
                return r.get_sample_value(name, labels) or 0.0

            return {
                "ringrift_cluster_peers_alive": value("ringrift_cluster_peers_alive"),
                "ringrift_p2p_peer_count": {
                    s: value("ringrift_p2p_peer_count", status=s) for s in ("alive", "suspect", "failed", "left")},
                "ringrift_is_leader": value("ringrift_is_leader"),
                "ringrift_quorum_health_level": value("ringrift_quorum_health_level"),
                "ringrift_quorum_alive_voters": value("ringrift_quorum_alive_voters"),
                "ringrift_quorum_total_voters": value("ringrift_quorum_total_voters"),
                "ringrift_p2p_quorum_status": value("ringrift_p2p_quorum_status"),
                "ringrift_p2p_leader_changes_total": value("ringrift_p2p_leader_changes_total"),
                "ringrift_leader_election_latency_seconds": {
                    o.value: {"count": value("ringrift_leader_election_latency_seconds_count", outcome=o.value),
                              "sum": value("ringrift_leader_election_latency_seconds_sum", outcome=o.value)}
                    for o in ElectionOutcome},
            }
        state = self._le_state()
        alive = alive_peer_ids(self)
        with _peers_lock(self):
            known = len(getattr(self, "peers", None) or {})
        with state.lock:
            return {
                "ringrift_cluster_peers_alive": float(len(alive)),
                "ringrift_p2p_peer_count": {"alive": float(len(alive)), "suspect": 0.0,
                                            "failed": float(max(0, known - len(alive))), "left": 0.0},
                "ringrift_is_leader": float(state.is_leader),
                "ringrift_quorum_health_level": float(state.quorum_level),
                "ringrift_quorum_alive_voters": float(state.quorum_alive),
                "ringrift_quorum_total_voters": float(state.quorum_total),
                "ringrift_quorum_margin": float(state.quorum_margin),
                "ringrift_p2p_quorum_status": float(state.quorum_status),
                "ringrift_p2p_leader_changes_total": float(state.leader_changes),
                "ringrift_leader_election_latency_seconds": {
                    o: {"count": float(n), "sum": state.latency_sum.get(o, 0.0)} for o, n in state.outcomes.items()},
            }

    # -- Internals (prefixed _le_ so they cannot collide with the host's other mixins) -----------

    def _le_state(self) -> _LeaderElectionState:
        state = self.__dict__.get("_ringrift_le_state")
        if state is None:
            state = self.__dict__.setdefault("_ringrift_le_state", _LeaderElectionState())
        return state

    def _le_voters(self) -> tuple[str, ...]:
        """The voter ids: the node's configured voters, or the host's list mapped to node ids."""
        node = attached_node(self)
        if node is not None:
            voters = tuple(sorted(set(node.config.voters)))
        else:
            mapped = set()
            for raw in getattr(self, "voter_node_ids", None) or ():
                node_id = to_node_id(self, raw)
                mapped.add(node_id if node_id is not None else str(raw))
            voters = tuple(sorted(mapped))
        state = self._le_state()
        with state.lock:
            if voters != state.voter_key:
                if state.voter_key is not None:
                    log.info("voter set changed: %s -> %s", list(state.voter_key), list(voters))
                state.voter_key = voters
                state.voter_version += 1
        return voters

    def _le_alive(self, voters: Iterable[str]) -> set[str]:
        """Alive node ids among the peers and this node; without a node, a voter is judged by the
        host's ``is_peer_alive_hybrid(node_id)`` when it has one (SWIM), as the host's base does."""
        alive = set(alive_peer_ids(self))
        me = getattr(self, "node_id", None)
        if me:
            alive.add(me)
        if attached_node(self) is None:
            hybrid = getattr(self, "is_peer_alive_hybrid", None)
            if callable(hybrid):
                for voter in voters:
                    if voter == me:
                        continue
                    try:
                        up = bool(hybrid(voter))
                    except Exception:
                        continue  # the heartbeat view decides, as in the host
                    (alive.add if up else alive.discard)(voter)
        return alive

    def _le_quorum(self) -> _QuorumView:
        """Evaluate the quorum now; track losses and recoveries, update the metrics and call
        ``_on_quorum_health_changed`` on a change of level."""
        voters = self._le_voters()
        node = attached_node(self)
        source = "membership" if node else "host_peers"
        total = len(voters)
        if not total:  # quorum checks off, as in the host
            view = _QuorumView((), (), 0, QuorumHealthLevel.HEALTHY, source)
            self._update_quorum_metrics(view.level, 0, 0, 0)
            return view
        me = getattr(self, "node_id", None)
        alive = self._le_alive(voters)
        alive_voter_ids = tuple(v for v in voters if v in alive)
        required = quorum_size(total)
        level = QuorumHealthLevel.from_quorum_health(quorum_health(len(alive_voter_ids), total))
        view = _QuorumView(voters, alive_voter_ids, required, level, source)
        now = _wall()
        state = self._le_state()
        with state.lock:
            previous, state.last_level = state.last_level, level
            if level is not QuorumHealthLevel.LOST:
                self._last_healthy_quorum_at = now
                self._last_healthy_voter_list = list(alive_voter_ids)
                self._current_failure_event = None
                self._quorum_lost_at = None
            elif self._current_failure_event is None:
                event = QuorumFailureEvent(
                    timestamp=now, previous_level=previous or self._last_quorum_health_level or QuorumHealthLevel.HEALTHY,
                    node_id=me or "", alive_voters=len(alive_voter_ids), total_voters=total,
                    quorum_required=required, missing_voters=view.missing)
                self._current_failure_event = event
                self._quorum_lost_at = now
                if previous is not None and previous is not level:
                    state.failures.append(event)
            self._single_node_mode = False
        self._update_quorum_metrics(level, len(alive_voter_ids), total, required)
        if previous is not None and previous is not level:
            self._on_quorum_health_changed(previous, level, len(alive_voter_ids), total, required)
        self._last_quorum_health_level = level
        return view

    def _le_leader(self) -> str | None:
        node = attached_node(self)
        if node is not None:
            return node.consensus.leadership().leader
        if self._use_raft_for_leadership():
            raft_leader = self._get_raft_leader_node_id()
            if raft_leader is not None:
                return raft_leader
        me = getattr(self, "node_id", None)
        if not _float(getattr(self, "leader_lease_expires", None)) > _wall():
            return None
        leader = to_node_id(self, getattr(self, "leader_id", None))
        if leader is None or leader == me:
            return leader
        with _peers_lock(self):
            info = (getattr(self, "peers", None) or {}).get(leader)
        if info is not None:
            check = getattr(info, "is_alive", None)
            if check is not None and not (check() if callable(check) else check):
                return None  # the leader is known dead: its lease is not worth trusting
        return leader

    def _le_named_leaders(self) -> dict[str, str]:
        """voter/peer id -> the leader it names: this node by its own view, the alive peers by the
        ``leader_id`` they last reported (host peers, or the node's membership reports)."""
        me = getattr(self, "node_id", None)
        node = attached_node(self)
        named: dict[str, str] = {}
        if node is not None:
            for node_id, report in leader_reports(self).items():
                if report.leader:
                    named[node_id] = report.leader
            return named
        own = to_node_id(self, getattr(self, "leader_id", None))
        if me and own:
            named[me] = own
        alive = alive_peer_ids(self)
        with _peers_lock(self):
            peers = dict(getattr(self, "peers", None) or {})
        for key, info in peers.items():
            node_id = to_node_id(self, key) if isinstance(key, str) else None
            if node_id is None or node_id == me or node_id not in alive:
                continue
            leader = to_node_id(self, getattr(info, "leader_id", None))
            if leader:
                named[node_id] = leader
        return named

    def _le_conflicting_leaders(self, node: Any) -> dict[str, list[str]]:
        """With a node: the leaders that provably hold leadership at the same time, each with the
        nodes naming it ({} when there is no conflict)."""
        reports = leader_reports(self)
        claims = {n: r for n, r in reports.items() if r.claims}
        if len(claims) < 2:
            return {}
        conflicting: set[str] = set()
        by_term: dict[int, list[str]] = {}
        for node_id, report in claims.items():
            if report.term is not None:
                by_term.setdefault(report.term, []).append(node_id)
        for same_term in by_term.values():
            if len(same_term) > 1:
                conflicting.update(same_term)
        me = node.config.node_id
        mine = claims.get(me)
        if not raft_leads(self) and mine is not None and mine.lease_expires is not None:
            settings = node.config.election
            granted_at = mine.lease_expires - (settings.lease_duration_s - settings.lease_safety_margin_s)
            for node_id, report in claims.items():
                if node_id != me and report.heard_at >= granted_at and mine.lease_expires > _wall():
                    conflicting.update((me, node_id))
        leaders_seen: dict[str, list[str]] = {}
        for leader in sorted(conflicting):
            leaders_seen[leader] = sorted(n for n, r in reports.items() if r.leader == leader)
        return leaders_seen

    def _le_note_leader(self, leader: str | None) -> None:
        """Keep the leader gauge and the leader-change counter (in-object, without a node)."""
        state = self._le_state()
        self._le_drain_node_events(state)
        with state.lock:
            state.is_leader = 1 if leader is not None and leader == getattr(self, "node_id", None) else 0
            if state.leader_seen and leader != state.last_leader or not state.leader_seen and leader is not None:
                state.leader_changes += 1
            state.last_leader, state.leader_seen = leader, True

    def _le_drain_node_events(self, state: _LeaderElectionState) -> None:
        """Fold the attached node's own election results into the statistics."""
        for event in drain_leadership_events(self):
            if event.election_outcome is not None and event.election_latency_s is not None:
                with state.lock:
                    self._le_add_sample(state, _Sample(event.election_outcome.value, float(event.election_latency_s),
                                                       event.at, "node"))

    @staticmethod
    def _le_add_sample(state: _LeaderElectionState, sample: _Sample) -> None:
        state.samples.append(sample)
        state.outcomes[sample.outcome] = state.outcomes.get(sample.outcome, 0) + 1
        state.latency_sum[sample.outcome] = state.latency_sum.get(sample.outcome, 0.0) + sample.latency_s

    def _le_preferred_leader(self) -> str | None:
        node = attached_node(self)
        if node is not None:
            return node.config.preferred_leader
        return to_node_id(self, getattr(self, "_preferred_leader_id", None))

    def _le_emit(self, event_type: str, payload: dict[str, Any]) -> bool:
        """Emit through the host's event hook when it has one (``_safe_emit_event`` of its base, or
        ``_emit_event`` / ``emit_event`` / ``publish_event``); never raises."""
        for name in ("_safe_emit_event", "_emit_event", "emit_event", "publish_event"):
            hook = getattr(self, name, None)
            if callable(hook):
                try:
                    result = hook(event_type, payload)
                    return result is not False
                except Exception as e:
                    log.debug("event %s not emitted: %s", event_type, e)
                    return False
        return False

    def _le_save_state(self) -> None:
        save = getattr(self, "_save_state", None)
        if callable(save):
            try:
                save()
            except Exception as e:
                log.warning("_save_state failed: %s", e)

    def _le_broadcast_leadership(self) -> None:
        """Schedule the host's ``_broadcast_leader_to_all_peers`` when it has one and a loop runs."""
        broadcast = getattr(self, "_broadcast_leader_to_all_peers", None)
        if not callable(broadcast):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        epoch = getattr(self, "cluster_epoch", 0)
        machine = getattr(self, "_leadership_sm", None)
        if machine:
            epoch = getattr(machine, "epoch", epoch)
        coro = broadcast(getattr(self, "node_id", None), epoch, getattr(self, "leader_lease_expires", 0.0))
        if asyncio.iscoroutine(coro):
            task = loop.create_task(coro, name="election-broadcast-leadership")
            _BACKGROUND.add(task)
            task.add_done_callback(_BACKGROUND.discard)

    def _le_peer_url(self, peer: str) -> str | None:
        node = attached_node(self)
        if node is not None:
            configured = node.config.hosts.get(peer)
            if configured is not None:
                return configured.api_url
            member = node.membership.members().get(peer)
            return member.api_url() if member is not None and member.host else None
        with _peers_lock(self):
            info = (getattr(self, "peers", None) or {}).get(peer)
        host, port = getattr(info, "host", None), getattr(info, "port", None)
        if not host or not isinstance(port, int):
            return None
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def _le_headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        me = getattr(self, "node_id", None)
        if me:
            headers["X-Node-ID"] = me
        token = self._le_auth_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def _le_auth_token(self) -> str:
        node = attached_node(self)
        if node is not None:
            return node.config.auth_token
        token = os.environ.get("RINGRIFT_CLUSTER_AUTH_TOKEN", "")
        path = os.environ.get("RINGRIFT_CLUSTER_AUTH_TOKEN_FILE", "")
        if not token and path:
            try:
                with open(path) as f:
                    token = f.read().strip()
            except OSError as e:
                log.warning("cannot read RINGRIFT_CLUSTER_AUTH_TOKEN_FILE %s: %s", path, e)
        return token


_BACKGROUND: set[asyncio.Task[Any]] = set()


def _float(value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    return number if number == number else 0.0


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def _post(url: str, body: bytes, headers: dict[str, str]) -> bool:
    """One blocking POST (run in a worker thread); True on a 2xx answer."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=NOTIFY_TIMEOUT_S) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


class _peers_lock:
    """``with _peers_lock(host):`` holds ``host.peers_lock`` when the host has one."""

    def __init__(self, host: Any) -> None:
        self._lock = getattr(host, "peers_lock", None)

    def __enter__(self) -> None:
        if self._lock is not None:
            self._lock.__enter__()

    def __exit__(self, *exc: object) -> None:
        if self._lock is not None:
            self._lock.__exit__(*exc)
