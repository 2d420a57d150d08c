"""The settings a node runs with: one frozen dataclass per section, the presets, and the
``ClusterConfig`` every part of the node reads. Durations are float seconds with an ``_s`` suffix.
Every default lives here; every rule on the values lives in ``rules.py``."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from ..state._common import Limits
from .plan import ConsensusMode, MembershipMode, Plan

SECTION = "ringrift_cluster"
DEFAULT_API_PORT = 8770
DEFAULT_SWIM_PORT = 7947
DEFAULT_RAFT_PORT = 4321
LOOPBACK = "127.0.0.1"
MAX_DURATION_S = 7 * 86400.0  # no timing knob makes sense beyond a week
MAX_LEASE_S = 3600.0  # the longest lease a voter grants (POST /election/lease)
MAX_COUNT = 10**9


@dataclass(frozen=True, kw_only=True)
class ApiSettings:
    bind_host: str = "0.0.0.0"
    port: int = DEFAULT_API_PORT
    max_body_bytes: int = 1 << 20


@dataclass(frozen=True, kw_only=True)
class HeartbeatSettings:
    """Legacy HTTP heartbeat membership (host defaults)."""

    interval_s: float = 15.0
    suspect_timeout_s: float = 90.0
    peer_timeout_s: float = 180.0
    jitter_fraction: float = 0.05  # deterministic per node, from a hash of its id
    request_timeout_s: float = 5.0


@dataclass(frozen=True, kw_only=True)
class ElectionSettings:
    """Legacy Bully election with voter leases."""

    lease_duration_s: float = 300.0
    lease_renew_interval_s: float = 15.0
    election_timeout_s: float = 10.0  # how long to wait for a coordinator after an ALIVE reply
    check_interval_s: float = 5.0
    request_timeout_s: float = 5.0
    # A leader trusts its lease for this much less than the voters grant it: a margin for clock
    # rate differences and request latency, so the leader always gives up before any voter would
    # grant the lease to someone else.
    lease_safety_margin_s: float = 5.0


@dataclass(frozen=True, kw_only=True)
class StateSettings:
    """The replicated state (work queue, jobs, models, locks) as every mode serves it."""

    submit_timeout_s: float = 5.0  # how long a write may take, retries included
    tick_interval_s: float = 1.0  # how often the state leader advances the replicated clock
    journal_compact_entries: int = 10000  # legacy journal: snapshot and truncate past this
    # A new leader waits this long for every member's state when a mode switch is in sight
    # (store/reconcile.py): a member down for longer loses what only it held.
    reconcile_wait_s: float = 30.0
    cluster_name: str = "ringrift"  # written into state exports; another cluster's are refused
    # Retention of the replicated state. Every replica must keep the same, so these are not
    # applied locally: the leader proposes them (``state.limits``) when the state differs.
    max_finished_work: int = Limits.max_finished_work
    finished_work_ttl_s: float = Limits.finished_work_ttl_s
    max_finished_jobs: int = Limits.max_finished_jobs
    finished_jobs_ttl_s: float = Limits.finished_jobs_ttl_s
    max_versions_per_model: int = Limits.max_versions_per_model
    dedup_max_entries: int = Limits.dedup_max_entries
    dedup_ttl_s: float = Limits.dedup_ttl_s

    def limits(self) -> Limits:
        """The retention bounds these settings ask of the replicated state."""
        return Limits(**{f.name: getattr(self, f.name) for f in fields(Limits)})


@dataclass(frozen=True, kw_only=True)
class SwimSettings:
    """SWIM over swim-p2p. Every engine setting is passed explicitly (SWIM_* env vars ignored).

    Defaults are the ``lan`` preset; values chosen by measurement (scripts/bench/swim_detection.py).
    """

    bind_host: str = ""  # "" = the node's own address
    bind_port: int = DEFAULT_SWIM_PORT
    transport: str = "udp"  # udp | tcp
    protocol_period_s: float = 1.0
    ping_timeout_s: float = 0.5  # per attempt (fixed: the library's adaptive timeout is off)
    ping_retries: int = 2  # direct ping attempts before suspecting
    indirect_probes: int = 3
    gossip_fanout: int = 3
    suspicion_timeout_s: float = 4.0  # SUSPECT -> DEAD in the library
    sync_interval_s: float = 30.0  # full push-pull sync period (incremental every tenth of it)
    # Lifeguard off: it rescales the suspicion timeout by up to 9x from "awareness" and ignores
    # the timings above; measured detection 20 s instead of 6 s with no fewer false transitions.
    lifeguard: bool = False
    # Damping: a suspicion shorter than this is counted as a raw flap, not reported as an event.
    suspect_report_after_s: float = 1.5
    # A raw DEAD must last this long (unrefuted) before it is reported as failed.
    failed_confirm_s: float = 0.5
    # Bounded gossip (memberlist style): a heartbeat carries the own entry plus the freshest
    # changes within the packet budget, each sent retransmit_mult * ceil(log10(N + 1)) times;
    # full syncs over TCP every sync_interval_s, scaled up with N. False: swim-p2p's own gossip
    # (the whole member list in every heartbeat), kept for comparison benchmarks.
    bounded_gossip: bool = True
    packet_budget_bytes: int = 1400
    retransmit_mult: int = 4
    # A member DEAD (failed or left) this long is forgotten by the engine (the published view
    # keeps it), so the member list does not grow with address churn.
    tombstone_s: float = 60.0


@dataclass(frozen=True, kw_only=True)
class RaftSettings:
    """Raft over pysyncobj."""

    bind_host: str = ""  # "" = the node's own address
    bind_port: int = DEFAULT_RAFT_PORT
    password: str = ""
    min_timeout_s: float = 1.0
    max_timeout_s: float = 2.0
    append_entries_period_s: float = 0.2
    # Only the member with the higher address reconnects a link, every connection_retry_s: a
    # restarted member waits that long for half its links, and a leader lost in that window
    # could cost another term (durability.py's failovers after a restart: 3 of 24 took
    # 0.46-0.56 s at 1 s, none above 0.17 s at 0.25 s). A retry is one connect to one voter.
    connection_retry_s: float = 0.25
    connection_timeout_s: float = 3.5
    leader_fallback_timeout_s: float = 3.0
    commit_timeout_s: float = 5.0
    tick_interval_s: float = 1.0  # how often the leader proposes clock ticks (expiry)
    # Log compaction (snapshot to the full-dump file) when either limit is passed.
    log_compaction_min_entries: int = 5000
    log_compaction_min_time_s: float = 300.0
    # When a log entry is on disk before it counts toward a commit (consensus/raft/durable.py):
    # fsync (every append) | batch (one fsync per outgoing batch: group commit) | none (as
    # pysyncobj does it: survives process crashes, not power cuts).
    durability: str = "batch"
    # A follower campaigns at once when the leader's connection closes or membership declares
    # it failed, instead of waiting out the election timeout (consensus/raft/hints.py).
    leader_hints: bool = True
    # The commands proposed in one pass of the event loop share one log entry, each applied on its
    # own (consensus/raft/batch.py): the engine's cost per entry is paid once per batch.
    batch_proposals: bool = True


@dataclass(frozen=True, kw_only=True)
class DiscoverySettings:
    """Prometheus service discovery fed by membership (ringrift_cluster/discovery)."""

    backends: tuple = ("http_sd",)  # of str: file_sd | http_sd; file_sd needs file_path
    file_path: str = ""  # file_sd targets file, relative to the data dir unless absolute
    scrape_port: str = "api"  # the port Prometheus scrapes on every member: a number, or "api" (its API port)
    damping_s: float = 1.0  # a suspicion refuted within this never reaches discovery
    batch_s: float = 0.2  # changes within this window go out as one write
    retry_s: float = 5.0  # a failed write (permissions, full disk) is retried after this
    validate_interval_s: float = 30.0
    inconsistency_threshold: int = 0  # reconcile when more differences than this are found


@dataclass(frozen=True, kw_only=True)
class HostConfig:
    """One entry of ``hosts``: where a node is reached and what it is."""

    node_id: str
    address: str  # p2p_host, else tailscale_ip, else ssh_host
    api_port: int
    swim_port: int
    raft_port: int
    role: str = ""
    status: str = "active"
    p2p_enabled: bool = True
    nat_blocked: bool = False
    gpu: str = ""
    gpu_vram_gb: float = 0.0
    tailscale_ip: str = ""
    capabilities: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)  # host-file keys that are not ours

    @property
    def api_url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.api_port}"


@dataclass(frozen=True, kw_only=True)
class ClusterConfig:
    node_id: str
    hosts: Mapping[str, HostConfig]
    voters: tuple[str, ...]
    raft_members: tuple[str, ...]
    coordinator_nodes: tuple[str, ...]
    preferred_leader: str | None
    preset: str
    membership_mode: MembershipMode
    consensus_mode: ConsensusMode
    swim_enabled: bool
    raft_enabled: bool
    plan: Plan  # resolved once from the modes: the backends this node composes
    api: ApiSettings
    heartbeat: HeartbeatSettings
    election: ElectionSettings
    state: StateSettings
    swim: SwimSettings
    raft: RaftSettings
    discovery: DiscoverySettings = field(default_factory=DiscoverySettings)
    data_dir: Path
    auth_token: str
    log_level: str
    log_format: str  # auto | json | console
    config_path: Path | None = None

    @property
    def membership_backends(self) -> tuple[str, ...]:
        """("heartbeat",) | ("swim",) | ("swim", "heartbeat")"""
        return tuple(b.value for b in self.plan.membership)

    @property
    def leader_backend(self) -> str:
        return self.plan.leader_backend

    @property
    def state_backend(self) -> str:
        return self.plan.state_backend

    @property
    def me(self) -> HostConfig:
        return self.hosts[self.node_id]

    @property
    def peers(self) -> tuple[HostConfig, ...]:
        return tuple(h for n, h in sorted(self.hosts.items()) if n != self.node_id)

    @property
    def is_voter(self) -> bool:
        return self.node_id in self.voters

    @property
    def may_lead(self) -> bool:
        return self.node_id in self.coordinator_nodes

    @property
    def jitter_factor(self) -> float:
        """This node's deterministic timeout multiplier in [1 - f, 1 + f], from its id's hash.

        Deterministic rather than random so that observers of one death spread their verdicts
        over time instead of declaring it in the same second.
        """
        digest = hashlib.sha256(self.node_id.encode()).digest()
        unit = int.from_bytes(digest[:8], "big") / 2**64
        return 1.0 + self.heartbeat.jitter_fraction * (2.0 * unit - 1.0)



# --------------------------------------------------------------------------------------------
# Presets: the section values a preset changes. ``lan`` is the host's defaults.

RAFT_DURABILITY = ("fsync", "batch", "none")  # consensus/raft/durable.py

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "lan": {
        "swim": {  # the SwimSettings defaults, spelled out: chosen by measurement
            "protocol_period_s": 1.0,
            "ping_timeout_s": 0.5,
            "ping_retries": 2,
            "indirect_probes": 3,
            "suspicion_timeout_s": 4.0,
            "suspect_report_after_s": 1.5,
            "failed_confirm_s": 0.5,
            "lifeguard": False,
        },
    },
    "local": {
        "api": {"bind_host": LOOPBACK},
        "heartbeat": {
            "interval_s": 0.5,
            "suspect_timeout_s": 2.0,
            "peer_timeout_s": 4.0,
            "request_timeout_s": 1.0,
        },
        "election": {
            "lease_duration_s": 4.0,
            "lease_renew_interval_s": 1.0,
            "election_timeout_s": 2.0,
            "check_interval_s": 0.25,
            "request_timeout_s": 1.0,
            "lease_safety_margin_s": 0.5,
        },
        "state": {"submit_timeout_s": 3.0, "tick_interval_s": 0.5, "reconcile_wait_s": 10.0},
        "discovery": {"damping_s": 0.5, "validate_interval_s": 2.0},
        # measured on loopback, 30 nodes, 2 busy CPU hogs: no false transition; suspicion 1.5 s
        # since the suspecter tells the suspect directly (30 nodes, 10 kills: detection p50 2.8 s,
        # p99 4.2 s, no false event; scripts/bench/swim_scale.py --preset local)
        "swim": {
            "protocol_period_s": 0.5,
            "ping_timeout_s": 0.3,
            "suspicion_timeout_s": 1.5,
            "suspect_report_after_s": 0.75,
            "failed_confirm_s": 0.25,
        },
        "raft": {
            "min_timeout_s": 0.2,  # 0.2-0.6 s: fewest split votes in scripts/bench/raft_failover.py
            "max_timeout_s": 0.6,
            "append_entries_period_s": 0.05,
            "connection_timeout_s": 1.5,
            "leader_fallback_timeout_s": 1.5,
            "commit_timeout_s": 2.0,
            "tick_interval_s": 0.5,
        },
    },
}

SECTIONS: dict[str, type] = {
    "api": ApiSettings,
    "heartbeat": HeartbeatSettings,
    "election": ElectionSettings,
    "state": StateSettings,
    "swim": SwimSettings,
    "raft": RaftSettings,
    "discovery": DiscoverySettings,
}

# Scalar settings of our section (besides the sub-sections).
TOP_SETTINGS: dict[str, type] = {
    "node_id": str,
    "preset": str,
    "membership_mode": MembershipMode,
    "consensus_mode": ConsensusMode,
    "swim_enabled": bool,
    "raft_enabled": bool,
    "data_dir": str,
    "auth_token": str,
    "log_level": str,
    "log_format": str,
}

HOST_FILE_KEYS = ("hosts", "p2p_voters", "raft_members", "coordinator_nodes", "preferred_leader", SECTION)

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("auto", "json", "console")
SWIM_TRANSPORTS = ("udp", "tcp")
DISCOVERY_BACKENDS = ("file_sd", "http_sd")

# Embedded default for `run` with no config: a single node on loopback.
SINGLE_NODE_ID = "local-node"
