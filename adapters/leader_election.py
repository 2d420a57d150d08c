"""Drop-in for the host's ``leader_election.py``: quorum, election timing and leader views, as a
host mixin plus the module-level helpers other host code imports.

**Quorum is a strict majority of the voters** (``len(voters) // 2 + 1``, the node itself counting
when it is a voter), computed by ``ringrift_cluster.consensus.lease_rules`` — the same rule the
nodes elect by. Health levels: LOST below quorum, MINIMUM at exactly quorum, DEGRADED at quorum+1,
HEALTHY above. The host's ``min(2, n)`` / dynamic quorum is not reproduced: it allowed two
disjoint quorums and never reported LOST.

Without a node the mixin reads only the host attributes of the legacy contract (``node_id``,
``peers`` + ``peers_lock``, ``role``, ``leader_id``, ``leader_lease_id``, ``leader_lease_expires``,
``voter_node_ids``, ``voter_grant_*``, ``verbose``) and keeps its statistics and metric values in
the host object (no process-global Prometheus registry is touched). With a node attached
(``ringrift_cluster.host_bridge.attach(host, node)``):

- voters are the node's configured voters, alive peers come from its membership;
- the authoritative leader is ``node.consensus.leadership().leader``: the Raft leader in raft
  mode, the leased leader in bully/hybrid mode — always a node id, never ``host:port``;
- metrics go into ``node.metrics`` (the node's own registry, served on its ``/metrics``), and the
  node's own elections (its leadership events) are counted in ``get_election_latency_stats()``.

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
from typing import Any, Callable, Iterable, Mapping

from ringrift_cluster.consensus.lease_rules import QuorumHealth, alive_voters, quorum_health, quorum_size
from ringrift_cluster.host_bridge import alive_peer_ids, attached_node, drain_leadership_events, to_node_id
from ringrift_cluster.model import ElectionOutcome, node_id_problem

__all__ = [
    "VOTER_MIN_QUORUM",
    "LeaderElectionMixin",
    "QuorumFailureEvent",
    "QuorumHealthLevel",
    "VoterPromotionCircuitBreaker",
    "check_quorum",
    "check_quorum_strict",
    "should_block_election",
]

log = logging.getLogger("ringrift.adapters.leader_election")

# Kept for the host code that imports it: the smallest quorum of a cluster that can survive a
# failure (a majority of 2 or 3 voters). It is NOT used to decide quorum: quorum is always
# quorum_size(len(voters)), a strict majority.
VOTER_MIN_QUORUM = 2

LATENCY_SAMPLES_KEPT = 200
QUORUM_FAILURES_KEPT = 50
NOTIFY_TIMEOUT_S = 5.0

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


@dataclass(frozen=True)
class QuorumFailureEvent:
    """Quorum was lost: the health went from a level with quorum to LOST."""

    node_id: str
    previous_level: QuorumHealthLevel
    alive_voters: int
    total_voters: int
    quorum_required: int
    missing_voters: tuple[str, ...]
    timestamp: float = field(default_factory=lambda: _wall())
    level: QuorumHealthLevel = QuorumHealthLevel.LOST

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["previous_level"] = self.previous_level.value
        out["level"] = self.level.value
        out["missing_voters"] = list(self.missing_voters)
        return out


class VoterPromotionCircuitBreaker:
    """A circuit breaker for promoting a node to voter.

    Closed: attempts are allowed. After ``failure_threshold`` consecutive failures it opens and
    refuses attempts for ``reset_timeout_s``; then it is half-open and allows one trial, whose
    success closes it and whose failure opens it again. ringrift-cluster itself never promotes
    voters (the voter set is configuration); the breaker serves host code that does.
    """

    CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

    def __init__(self, failure_threshold: int = 3, reset_timeout_s: float = 300.0, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold: expected >= 1, got {failure_threshold!r}")
        if reset_timeout_s <= 0:
            raise ValueError(f"reset_timeout_s: expected > 0, got {reset_timeout_s!r}")
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False
        self.total_successes = 0
        self.total_failures = 0
        self.last_failure_reason = ""

    @property
    def state(self) -> str:
        with self._lock:
            return self._state_locked()

    def _state_locked(self) -> str:
        if self._opened_at is None:
            return self.CLOSED
        if self._clock() - self._opened_at >= self.reset_timeout_s:
            return self.HALF_OPEN
        return self.OPEN

    def can_attempt(self) -> bool:
        """Whether a promotion may be tried now (in half-open state, one trial at a time)."""
        with self._lock:
            state = self._state_locked()
            if state == self.CLOSED:
                return True
            if state == self.HALF_OPEN and not self._trial_running:
                self._trial_running = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self.total_successes += 1
            self._failures = 0
            self._opened_at = None
            self._trial_running = False

    def record_failure(self, reason: str = "") -> None:
        with self._lock:
            self.total_failures += 1
            self.last_failure_reason = reason
            self._failures += 1
            if self._trial_running or self._failures >= self.failure_threshold:
                self._opened_at = self._clock()
            self._trial_running = False

    def reset(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_running = False

    def status(self) -> dict[str, Any]:
        with self._lock:
            state = self._state_locked()
            retry_in = 0.0
            if state == self.OPEN and self._opened_at is not None:
                retry_in = max(0.0, self.reset_timeout_s - (self._clock() - self._opened_at))
            return {
                "state": state,
                "consecutive_failures": self._failures,
                "failure_threshold": self.failure_threshold,
                "reset_timeout_s": self.reset_timeout_s,
                "retry_in_s": round(retry_in, 3),
                "total_successes": self.total_successes,
                "total_failures": self.total_failures,
                "last_failure_reason": self.last_failure_reason,
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
    alive = _alive_ids(alive_peers)
    if self_node_id:
        alive.add(self_node_id)
    return voter_list, alive, alive_voters(voter_list, alive)


def check_quorum(voters: Iterable[str], alive_peers: Iterable[str], self_node_id: str) -> bool:
    """True when a strict majority of ``voters`` is alive (``self_node_id`` counts as alive)."""
    return check_quorum_strict(voters, alive_peers, self_node_id)[0]


def check_quorum_strict(voters: Iterable[str], alive_peers: Iterable[str], self_node_id: str) -> tuple[bool, str]:
    """The same decision as ``check_quorum``, with the reason.

    ``alive_peers`` is an iterable of node ids, or a peers mapping (entries whose ``is_alive()``
    is true count). Voter entries that are not node ids (addresses) count in the total and never
    as alive, and are named in the reason.
    """
    voter_list, alive, alive_count = _quorum(voters, alive_peers, self_node_id)
    if not voter_list:
        return False, "no_voters: no voters configured, so no quorum can exist"
    need = quorum_size(len(voter_list))
    bad = [v for v in voter_list if node_id_problem(v) is not None]
    detail = f"{alive_count}/{len(voter_list)} voters alive, quorum {need}"
    if bad:
        detail += f"; not node ids (never counted alive): {', '.join(bad)}"
    if alive_count >= need:
        return True, f"ok: {detail}"
    missing = [v for v in voter_list if v not in alive]
    return False, f"quorum_lost: {detail}; missing {', '.join(missing)}"


def should_block_election(
    voters: Iterable[str],
    alive_peers: Iterable[str],
    self_node_id: str,
    *,
    coordinators: Iterable[str] | None = None,
    current_leader: str | None = None,
    leader_lease_expires: float | None = None,
    now: float | None = None,
) -> tuple[bool, str]:
    """Whether ``self_node_id`` must not start an election now, and why.

    Blocked when it is not a voter (only voters lead), not among ``coordinators`` (when given),
    when there is no quorum of voters, or while another leader's lease (wall-clock
    ``leader_lease_expires``) is unexpired. ``(False, "ok")`` otherwise.
    """
    voter_set = {v for v in (voters or ()) if isinstance(v, str)}
    if self_node_id not in voter_set:
        return True, f"not_a_voter: {self_node_id} is not among the voters"
    if coordinators is not None and self_node_id not in set(coordinators):
        return True, f"not_a_coordinator: {self_node_id} is not allowed to coordinate"
    ok, reason = check_quorum_strict(voter_set, alive_peers, self_node_id)
    if not ok:
        return True, reason
    now = _wall() if now is None else now
    if current_leader and current_leader != self_node_id and leader_lease_expires and leader_lease_expires > now:
        return True, f"leader_lease_valid: {current_leader} holds a lease for {leader_lease_expires - now:.1f}s more"
    return False, "ok"


# -- Per-host state ---------------------------------------------------------------------------


@dataclass
class _Sample:
    outcome: str
    latency_s: float
    at: float
    source: str  # "host" (recorded by the host) | "node" (the attached node's own election)


class _LeaderElectionState:
    """What the mixin keeps per host object: timing, statistics, metric values, events."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.election_started: float | None = None
        self.samples: collections.deque[_Sample] = collections.deque(maxlen=LATENCY_SAMPLES_KEPT)
        self.outcomes = {o.value: 0 for o in ElectionOutcome}
        self.latency_sum = {o.value: 0.0 for o in ElectionOutcome}
        self.failures: collections.deque[QuorumFailureEvent] = collections.deque(maxlen=QUORUM_FAILURES_KEPT)
        self.last_level: QuorumHealthLevel | None = None
        self.voter_key: tuple[str, ...] | None = None
        self.voter_version = 0
        self.breaker: VoterPromotionCircuitBreaker | None = None
        # Metric values kept in the object when no node is attached (§7 names).
        self.is_leader = 0
        self.quorum_level = 0
        self.quorum_alive = 0
        self.quorum_total = 0
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


class LeaderElectionMixin:
    """Quorum checks, election timing and the leader views, mixed into the host's orchestrator."""

    # -- Quorum --------------------------------------------------------------------------------

    def _has_voter_quorum(self) -> bool:
        """True when a strict majority of the voters is alive (this node counting if a voter)."""
        return self._le_quorum().has_quorum

    def _check_quorum_health(self) -> QuorumHealthLevel:
        """LOST below quorum, MINIMUM at quorum, DEGRADED at quorum + 1, HEALTHY above."""
        return self._le_quorum().level

    def get_quorum_health_status(self) -> dict[str, Any]:
        view = self._le_quorum()
        state = self._le_state()
        with state.lock:
            failures = [e.to_dict() for e in state.failures]
        return {
            "level": view.level.value,
            "level_value": view.level.level,
            "has_quorum": view.has_quorum,
            "alive_voters": len(view.alive_voter_ids),
            "total_voters": len(view.voters),
            "quorum_required": view.required,
            "voters": list(view.voters),
            "alive_voter_ids": list(view.alive_voter_ids),
            "missing_voters": list(view.missing),
            "voter_config_version": self._get_voter_config_version(),
            "voter_config_hash": self._get_voter_config_hash(),
            "recent_failures": failures,
            "source": view.source,
            "timestamp": _wall(),
        }

    # -- Election timing -----------------------------------------------------------------------

    def _start_election_timing(self) -> None:
        """Mark the start of an election attempt (a second call restarts the clock)."""
        state = self._le_state()
        with state.lock:
            state.election_started = _monotonic()

    def _record_election_latency(self, outcome: str) -> float:
        """End the attempt started by ``_start_election_timing``: record and return its latency in
        seconds. ``outcome`` is won / lost / timeout / adopted. Returns 0.0 (and records nothing)
        when no attempt was started."""
        value = _outcome(outcome)
        state = self._le_state()
        with state.lock:
            started, state.election_started = state.election_started, None
            if started is None:
                return 0.0
            latency = max(0.0, _monotonic() - started)
            self._le_add_sample(state, _Sample(value, latency, _wall(), "host"))
        node = attached_node(self)
        if node is not None:
            node.metrics.election_latency.labels(outcome=value).observe(latency)
        return latency

    def get_election_latency_stats(self) -> dict[str, Any]:
        """Counts by outcome (all time), latency summary (all time mean, recent percentiles)."""
        state = self._le_state()
        self._le_drain_node_events(state)
        with state.lock:
            recent = sorted(s.latency_s for s in state.samples)
            total = sum(state.outcomes.values())
            last = state.samples[-1] if state.samples else None
            return {
                "total_elections": total,
                "outcomes": dict(state.outcomes),
                "mean_latency_s": round(sum(state.latency_sum.values()) / total, 6) if total else 0.0,
                "mean_latency_by_outcome_s": {
                    o: round(state.latency_sum[o] / n, 6) if n else 0.0 for o, n in state.outcomes.items()},
                "p50_latency_s": _percentile(recent, 0.50),
                "p95_latency_s": _percentile(recent, 0.95),
                "min_latency_s": recent[0] if recent else 0.0,
                "max_latency_s": recent[-1] if recent else 0.0,
                "samples": len(recent),
                "last_latency_s": last.latency_s if last else None,
                "last_outcome": last.outcome if last else None,
                "last_source": last.source if last else None,
                "in_progress": state.election_started is not None,
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
        state = self._le_state()
        with state.lock:
            if state.breaker is None:
                state.breaker = VoterPromotionCircuitBreaker()
            return state.breaker

    # -- Leases --------------------------------------------------------------------------------

    def _release_voter_grant_if_self(self) -> bool:
        """When this node, as a voter, granted its lease to itself, forget that grant (on
        step-down); returns whether a grant was released. With a node attached, the node's own
        ledger is released by the node itself when it steps down; this clears the host's copy."""
        me = getattr(self, "node_id", None)
        if not me or getattr(self, "voter_grant_leader_id", None) != me:
            return False
        self.voter_grant_leader_id = None
        self.voter_grant_lease_id = None
        self.voter_grant_expires = 0.0
        return True

    async def _notify_voters_lease_revoked(self) -> int:
        """Tell every voter that this node's lease (``leader_lease_id``) is given back
        (``POST /election/lease_revoke``); returns how many voters took it (this node included
        when it is a voter). Never raises for an unreachable voter; never blocks the loop."""
        me = getattr(self, "node_id", None)
        lease_id = getattr(self, "leader_lease_id", None)
        if not me or not lease_id:
            return 0
        voters = self._le_voters()
        count = 0
        if me in voters:
            self._release_voter_grant_if_self()
            count += 1
        targets = [(v, self._le_voter_url(v)) for v in voters if v != me]
        body = json.dumps({"leader_id": me, "lease_id": lease_id}).encode()
        headers = {"Content-Type": "application/json", "X-Node-ID": me}
        token = self._le_auth_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        results = await asyncio.gather(
            *(asyncio.to_thread(_post, url, body, headers) for _, url in targets if url),
            return_exceptions=True)
        count += sum(1 for r in results if r is True)
        unreachable = [v for v, url in targets if not url]
        if unreachable:
            log.info("lease revoke: no address known for voters %s", ", ".join(unreachable))
        return count

    # -- Leader --------------------------------------------------------------------------------

    def get_authoritative_leader(self) -> str | None:
        """The leader's node id (never an address), or None when no leader is valid now.

        With a node: ``node.consensus.leadership().leader`` (Raft leader in raft mode, the leased
        leader in bully/hybrid). Without: the host's ``leader_id`` while ``leader_lease_expires``
        (wall clock) is in the future and that leader is not known dead.
        """
        leader = self._le_leader()
        self._le_note_leader(leader)
        return leader

    def election_health_check(self) -> dict[str, Any]:
        """Healthy when a quorum exists and a leader is known."""
        view = self._le_quorum()
        leader = self.get_authoritative_leader()
        me = getattr(self, "node_id", None)
        node = attached_node(self)
        if node is not None:
            leadership = node.consensus.leadership()
            role, is_leader, expires = node.role, leadership.is_self, leadership.lease_expires
        else:
            role = getattr(self, "role", None)
            role = getattr(role, "value", role)
            is_leader = leader is not None and leader == me
            expires = getattr(self, "leader_lease_expires", None) or None
        stats = self.get_election_latency_stats()
        return {
            "is_healthy": view.has_quorum and leader is not None,
            "role": role,
            "leader_id": leader,
            "is_leader": is_leader,
            "has_leader": leader is not None,
            "has_quorum": view.has_quorum,
            "quorum_health": view.level.value,
            "alive_voters": len(view.alive_voter_ids),
            "total_voters": len(view.voters),
            "quorum_required": view.required,
            "lease_expires_in_s": round(expires - _wall(), 3) if expires else None,
            "election_in_progress": stats["in_progress"],
            "total_elections": stats["total_elections"],
            "election_outcomes": stats["outcomes"],
            "voter_config_hash": self._get_voter_config_hash(),
            "source": view.source,
        }

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
                "ringrift_p2p_quorum_status": float(state.quorum_status),
                "ringrift_p2p_leader_changes_total": float(state.leader_changes),
                "ringrift_leader_election_latency_seconds": {
                    o: {"count": float(n), "sum": state.latency_sum[o]} for o, n in state.outcomes.items()},
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

    def _le_quorum(self) -> _QuorumView:
        """Evaluate the quorum now; update the metrics and record a failure event on loss."""
        voters = self._le_voters()
        me = getattr(self, "node_id", None)
        alive = set(alive_peer_ids(self))
        if me:
            alive.add(me)
        alive_voter_ids = tuple(v for v in voters if v in alive)
        total = len(voters)
        required = quorum_size(total) if total else 0
        level = QuorumHealthLevel.from_quorum_health(quorum_health(len(alive_voter_ids), total))
        node = attached_node(self)
        view = _QuorumView(voters, alive_voter_ids, required, level, "membership" if node else "host_peers")
        state = self._le_state()
        with state.lock:
            previous, state.last_level = state.last_level, level
            state.quorum_level, state.quorum_alive, state.quorum_total = level.level, len(alive_voter_ids), total
            state.quorum_status = 0 if level is QuorumHealthLevel.LOST else 1
            if previous is not None and previous is not level:
                log.log(logging.WARNING if level is QuorumHealthLevel.LOST else logging.INFO,
                        "quorum health %s -> %s (%d/%d voters alive, quorum %d)",
                        previous.value, level.value, len(alive_voter_ids), total, required)
                if level is QuorumHealthLevel.LOST:
                    state.failures.append(QuorumFailureEvent(
                        node_id=me or "", previous_level=previous, alive_voters=len(alive_voter_ids),
                        total_voters=total, quorum_required=required, missing_voters=view.missing))
        if node is not None:
            node.refresh_metrics()
        return view

    def _le_leader(self) -> str | None:
        node = attached_node(self)
        if node is not None:
            return node.consensus.leadership().leader
        me = getattr(self, "node_id", None)
        expires = getattr(self, "leader_lease_expires", None)
        try:
            valid = bool(expires) and float(expires) > _wall()
        except (TypeError, ValueError):
            valid = False
        if not valid:
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
        state.outcomes[sample.outcome] += 1
        state.latency_sum[sample.outcome] += sample.latency_s

    def _le_voter_url(self, voter: str) -> str | None:
        node = attached_node(self)
        if node is not None:
            configured = node.config.hosts.get(voter)
            if configured is not None:
                return configured.api_url
            member = node.membership.members().get(voter)
            return member.api_url() if member is not None and member.host else None
        with _peers_lock(self):
            info = (getattr(self, "peers", None) or {}).get(voter)
        host, port = getattr(info, "host", None), getattr(info, "port", None)
        if not host or not isinstance(port, int):
            return None
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

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


def _outcome(outcome: object) -> str:
    value = getattr(outcome, "value", outcome)
    allowed = [o.value for o in ElectionOutcome]
    if value not in allowed:
        raise ValueError(f"outcome: expected one of {allowed}, got {outcome!r}")
    return str(value)


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def _post(url: str, body: bytes, headers: dict[str, str]) -> bool:
    """One blocking POST (run in a worker thread); True on a 2xx answer."""
    request = urllib.request.Request(url + "/election/lease_revoke", data=body, headers=headers, method="POST")
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
