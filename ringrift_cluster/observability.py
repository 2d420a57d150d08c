"""Prometheus metrics on a registry the node owns, and structlog configuration.

Backends never touch metrics: the node feeds ``NodeMetrics`` from their events and snapshots.
"""

from __future__ import annotations

import logging
import sys
from typing import Iterable, Mapping

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from .quorum import alive_voters, quorum_health
from .model import ElectionOutcome, Leadership, Member, MemberState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class NodeMetrics:
    """The metric families the host's dashboards query, plus consensus health (etcd-style)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.peers_alive = Gauge("ringrift_cluster_peers_alive", "Peers currently alive (suspect counts as alive).", registry=r)
        self.peer_count = Gauge("ringrift_p2p_peer_count", "Known peers by membership state.", ["status"], registry=r)
        self.is_leader = Gauge("ringrift_is_leader", "1 when this node is the leader.", registry=r)
        self.has_leader = Gauge("ringrift_has_leader", "1 when this node knows a leader.", registry=r)
        self.term = Gauge("ringrift_leader_term", "The leader's term (fencing epoch) as seen here.", registry=r)
        self.leader_changes = Counter("ringrift_p2p_leader_changes_total", "Leader changes seen by this node.", registry=r)
        self.quorum_alive = Gauge("ringrift_quorum_alive_voters", "Voters alive, this node included.", registry=r)
        self.quorum_total = Gauge("ringrift_quorum_total_voters", "Voters configured.", registry=r)
        self.quorum_level = Gauge("ringrift_quorum_health_level", "3 healthy, 2 degraded, 1 minimum, 0 lost.", registry=r)
        self.quorum_status = Gauge("ringrift_p2p_quorum_status", "1 when a strict majority of voters is alive.", registry=r)
        self.election_latency = Histogram(
            "ringrift_leader_election_latency_seconds", "Election attempts by outcome.", ["outcome"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300), registry=r)
        self.membership_events = Counter(
            "ringrift_membership_events_total", "Membership transitions by kind and source.", ["kind", "source"], registry=r)
        self.state_commands = Counter(
            "ringrift_state_commands_total", "State commands by operation and outcome "
            "(ok, refused, no_leader, timeout).", ["op", "outcome"], registry=r)
        self.state_latency = Histogram(
            "ringrift_state_commit_latency_seconds", "Time to apply one state command, forwarding included.",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5), registry=r)
        self.work_items = Gauge("ringrift_work_items", "Work items by status (this node's copy).", ["status"], registry=r)
        self.state_records = Gauge("ringrift_state_records", "Records this node's copy of the state holds: work "
                                   "items, jobs, model versions, locks and remembered commands.", registry=r)
        self.locks_held = Gauge("ringrift_locks_held", "Training locks held (this node's copy).", registry=r)
        self.detection = Histogram(
            "ringrift_membership_detection_seconds", "Silence before a member was declared failed, by source.",
            ["source"], buckets=(0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 120, 300), registry=r)
        self.swim_messages = Counter("ringrift_swim_messages_total", "SWIM messages by direction.", ["direction"], registry=r)
        self.swim_bytes = Counter("ringrift_swim_bytes_total", "SWIM bytes by direction.", ["direction"], registry=r)
        self.swim_raw_flaps = Counter("ringrift_swim_raw_flaps_total",
                                      "Raw SUSPECT flaps of the library, damped (not reported as events).", registry=r)
        self.swim_type_messages = Counter("ringrift_swim_type_messages_total", "SWIM messages by direction and type.",
                                          ["direction", "type"], registry=r)
        self.swim_type_bytes = Counter("ringrift_swim_type_bytes_total", "SWIM bytes by direction and type.",
                                       ["direction", "type"], registry=r)
        self.swim_datagrams = Counter("ringrift_swim_datagrams_total",
                                      "SWIM datagrams sent, by size bucket (bytes, upper bound; +Inf above).",
                                      ["size_le"], registry=r)
        self.swim_largest_datagram = Gauge("ringrift_swim_largest_datagram_bytes", "Largest SWIM datagram sent.",
                                           registry=r)
        self.swim_send_refused = Counter("ringrift_swim_send_refused_total",
                                         "SWIM sends the OS refused (never counted as sent).", registry=r)
        self.swim_oversize = Counter("ringrift_swim_oversize_total",
                                     "SWIM messages over the packet budget: sent over TCP, or dropped.",
                                     ["outcome"], registry=r)
        self.swim_piggyback_depth = Gauge("ringrift_swim_piggyback_queue_depth",
                                          "Membership changes waiting to ride on SWIM heartbeats.", registry=r)
        self.loop_stall = Histogram("ringrift_event_loop_stall_seconds",
                                    "How much later than asked the event loop woke (50 ms timer).",
                                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0), registry=r)
        self.loop_stall_max = Gauge("ringrift_event_loop_stall_max_seconds",
                                    "The longest event-loop stall since the node started.", registry=r)
        self.loop_tasks = Gauge("ringrift_event_loop_tasks", "Tasks the event loop holds.", registry=r)
        self._loop_stall_max = 0.0
        self._swim_seen: dict[str, int] = {}
        for state in MemberState:
            self.peer_count.labels(status=state.value)
        for outcome in ElectionOutcome:
            self.election_latency.labels(outcome=outcome.value)

    def observe_loop(self, stall_s: float, tasks: int) -> None:
        self.loop_stall.observe(stall_s)
        if stall_s > self._loop_stall_max:
            self._loop_stall_max = stall_s
            self.loop_stall_max.set(stall_s)
        self.loop_tasks.set(tasks)

    def update_membership(self, members: Mapping[str, Member], self_id: str, voters: Iterable[str]) -> None:
        counts = {state: 0 for state in MemberState}
        for member in members.values():
            counts[member.state] += 1
        for state, count in counts.items():
            self.peer_count.labels(status=state.value).set(count)
        self.peers_alive.set(counts[MemberState.ALIVE] + counts[MemberState.SUSPECT])
        voters = list(voters)
        alive = {n for n, m in members.items() if m.is_alive} | {self_id}
        alive_count = alive_voters(voters, alive)
        level = quorum_health(alive_count, len(voters))
        self.quorum_alive.set(alive_count)
        self.quorum_total.set(len(voters))
        self.quorum_level.set(level.level)
        self.quorum_status.set(0 if level.value == "lost" else 1)

    def update_leadership(self, view: Leadership) -> None:
        self.is_leader.set(1 if view.is_self else 0)
        self.has_leader.set(1 if view.leader else 0)
        self.term.set(view.term)

    def update_swim(self, described: Mapping[str, object]) -> None:
        """Mirror the SWIM backend's own counters (they only grow; a restart of it resets them)."""
        pairs = (("messages_sent", self.swim_messages.labels(direction="sent")),
                 ("messages_received", self.swim_messages.labels(direction="received")),
                 ("bytes_sent", self.swim_bytes.labels(direction="sent")),
                 ("bytes_received", self.swim_bytes.labels(direction="received")),
                 ("raw_flaps", self.swim_raw_flaps))
        pairs += (("send_errors", self.swim_send_refused),
                  ("oversize_dropped", self.swim_oversize.labels(outcome="dropped")))
        for key, counter in pairs:
            self._mirror(key, described.get(key), counter)
        oversize, dropped = described.get("oversize"), described.get("oversize_dropped")
        if isinstance(oversize, int) and isinstance(dropped, int):
            self._mirror("oversize_tcp", oversize - dropped, self.swim_oversize.labels(outcome="tcp"))
        by_type = described.get("by_type")
        if isinstance(by_type, Mapping):
            for key, pair in by_type.items():
                direction, _, kind = str(key).partition(":")
                if isinstance(pair, (list, tuple)) and len(pair) == 2:
                    self._mirror(f"m:{key}", pair[0], self.swim_type_messages.labels(direction=direction, type=kind))
                    self._mirror(f"b:{key}", pair[1], self.swim_type_bytes.labels(direction=direction, type=kind))
        bounds, sizes = described.get("datagram_size_buckets"), described.get("datagram_sizes")
        if isinstance(bounds, list) and isinstance(sizes, list) and len(sizes) == len(bounds) + 1:
            for bound, count in zip([*map(str, bounds), "+Inf"], sizes):
                self._mirror(f"d:{bound}", count, self.swim_datagrams.labels(size_le=bound))
        for key, gauge in (("largest_datagram", self.swim_largest_datagram),
                           ("piggyback_depth", self.swim_piggyback_depth)):
            value = described.get(key)
            if isinstance(value, int):
                gauge.set(value)

    def _mirror(self, key: str, value: object, counter: Counter) -> None:
        """Advance ``counter`` to a backend total (totals only grow; a backend restart resets them)."""
        if isinstance(value, int):
            delta = value - self._swim_seen.get(key, 0)
            if delta > 0:
                counter.inc(delta)
            self._swim_seen[key] = value

    def observe_command(self, op: str, outcome: str, latency_s: float) -> None:
        self.state_commands.labels(op=op, outcome=outcome).inc()
        if outcome in ("ok", "refused"):
            self.state_latency.observe(latency_s)

    def update_state(self, work_stats: Mapping[str, int], locks_held: int, records: int) -> None:
        for status, count in work_stats.items():
            if status != "total":
                self.work_items.labels(status=status).set(count)
        self.locks_held.set(locks_held)
        self.state_records.set(records)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    """structlog: JSON when not on a terminal (or when asked), console when on one."""
    numeric = getattr(logging, level.upper(), logging.INFO)
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer = structlog.dev.ConsoleRenderer() if use_console else structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # Third-party loggers (aiohttp, engines) go to stderr at WARNING: no per-request spam.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
