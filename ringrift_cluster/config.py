"""ClusterConfig: one frozen object built from defaults < cluster YAML < RINGRIFT_* env < CLI.

Every default lives in this module. The membership and consensus modes are resolved to backends
once, here (``ClusterConfig.membership_backends`` / ``leader_backend`` / ``state_backend``);
nothing downstream reads the mode strings again.

The cluster YAML is the host's ``distributed_hosts.yaml``: ``hosts``, ``p2p_voters``,
``raft_members``, ``coordinator_nodes``, ``preferred_leader``. Our own settings live under the
``ringrift_cluster`` key and are checked strictly. A host file carries keys that are not ours
(ssh users, paths, ...): those are kept and ignored, unless one is a near-miss of a key we know,
which is taken for a typo and rejected with a did-you-mean.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import hashlib
import ipaddress
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, get_args, get_origin, get_type_hints

import yaml

from .errors import ConfigError
from .model import node_id_problem

SECTION = "ringrift_cluster"
DEFAULT_API_PORT = 8770
DEFAULT_SWIM_PORT = 7947
DEFAULT_RAFT_PORT = 4321
LOOPBACK = "127.0.0.1"
MAX_DURATION_S = 7 * 86400.0  # no timing knob makes sense beyond a week
MAX_LEASE_S = 3600.0  # the longest lease a voter grants (POST /election/lease)
MAX_COUNT = 10**9


class MembershipMode(str, enum.Enum):
    HTTP = "http"
    SWIM = "swim"
    HYBRID = "hybrid"


class ConsensusMode(str, enum.Enum):
    BULLY = "bully"
    RAFT = "raft"
    HYBRID = "hybrid"


# --------------------------------------------------------------------------------------------
# Sections. Durations are float seconds with an ``_s`` suffix.


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
    connection_retry_s: float = 1.0
    connection_timeout_s: float = 3.5
    leader_fallback_timeout_s: float = 3.0
    commit_timeout_s: float = 5.0
    tick_interval_s: float = 1.0  # how often the leader proposes clock ticks (expiry)
    # Log compaction (snapshot to the full-dump file) when either limit is passed.
    log_compaction_min_entries: int = 5000
    log_compaction_min_time_s: float = 300.0
    # When a log entry is on disk before it counts toward a commit (consensus/raft_durable.py):
    # fsync (every append) | batch (one fsync per outgoing batch: group commit) | none (as
    # pysyncobj does it: survives process crashes, not power cuts).
    durability: str = "batch"
    # A follower campaigns at once when the leader's connection closes or membership declares
    # it failed, instead of waiting out the election timeout (consensus/raft_hints.py).
    leader_hints: bool = True


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
    # Resolved once from the modes: which backends the node composes.
    membership_backends: tuple[str, ...]  # ("heartbeat",) | ("swim",) | ("swim", "heartbeat")
    leader_backend: str  # "bully" | "raft"
    state_backend: str  # "journal" (held by the Bully leader) | "raft"
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

RAFT_DURABILITY = ("fsync", "batch", "none")  # consensus/raft_durable.py

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
            "connection_retry_s": 1.0,
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
HOST_ENTRY_KEYS: dict[str, type] = {
    "ssh_host": str,
    "tailscale_ip": str,
    "p2p_host": str,
    "p2p_port": int,
    "swim_port": int,
    "raft_port": int,
    "role": str,
    "status": str,
    "p2p_enabled": bool,
    "nat_blocked": bool,
    "gpu": str,
    "gpu_vram_gb": float,
    "capabilities": tuple,
}

# Environment variables (the host's names where it had them) -> setting path.
ENV_VARS: dict[str, str] = {
    "RINGRIFT_NODE_ID": "node_id",
    "RINGRIFT_PRESET": "preset",
    "RINGRIFT_MEMBERSHIP_MODE": "membership_mode",
    "RINGRIFT_CONSENSUS_MODE": "consensus_mode",
    "RINGRIFT_SWIM_ENABLED": "swim_enabled",
    "RINGRIFT_RAFT_ENABLED": "raft_enabled",
    "RINGRIFT_DATA_DIR": "data_dir",
    "RINGRIFT_LOG_LEVEL": "log_level",
    "RINGRIFT_LOG_FORMAT": "log_format",
    "RINGRIFT_CLUSTER_AUTH_TOKEN": "auth_token",
    "RINGRIFT_P2P_VOTERS": "voters",
    "RINGRIFT_P2P_BIND_HOST": "api.bind_host",
    "RINGRIFT_P2P_PORT": "api.port",
    "RINGRIFT_P2P_HEARTBEAT_INTERVAL": "heartbeat.interval_s",
    "RINGRIFT_P2P_SUSPECT_TIMEOUT": "heartbeat.suspect_timeout_s",
    "RINGRIFT_P2P_PEER_TIMEOUT": "heartbeat.peer_timeout_s",
    "RINGRIFT_P2P_LEADER_LEASE_DURATION": "election.lease_duration_s",
    "RINGRIFT_P2P_LEASE_RENEW_INTERVAL": "election.lease_renew_interval_s",
    "RINGRIFT_P2P_ELECTION_TIMEOUT": "election.election_timeout_s",
    "RINGRIFT_SWIM_BIND_PORT": "swim.bind_port",
    "RINGRIFT_SWIM_TRANSPORT": "swim.transport",
    "RINGRIFT_RAFT_BIND_PORT": "raft.bind_port",
    "RINGRIFT_RAFT_PASSWORD": "raft.password",
    "RINGRIFT_DISCOVERY_BACKENDS": "discovery.backends",
    "RINGRIFT_DISCOVERY_FILE": "discovery.file_path",
    "RINGRIFT_DISCOVERY_SCRAPE_PORT": "discovery.scrape_port",
    "RINGRIFT_DISCOVERY_VALIDATE_INTERVAL": "discovery.validate_interval_s",
    "RINGRIFT_DISCOVERY_INCONSISTENCY_THRESHOLD": "discovery.inconsistency_threshold",
}
# Variables that name a file holding the value (secrets).
ENV_FILE_VARS: dict[str, str] = {
    "RINGRIFT_CLUSTER_AUTH_TOKEN_FILE": "auth_token",
    "RINGRIFT_RAFT_PASSWORD_FILE": "raft.password",
}

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("auto", "json", "console")
SWIM_TRANSPORTS = ("udp", "tcp")
DISCOVERY_BACKENDS = ("file_sd", "http_sd")

# Embedded default for `run` with no config: a single node on loopback.
SINGLE_NODE_ID = "local-node"


# --------------------------------------------------------------------------------------------
# Loading


@dataclass
class _Layer:
    """Settings gathered from one source: path -> (value, label naming where it came from)."""

    values: dict[str, tuple[Any, str]] = field(default_factory=dict)

    def put(self, path: str, value: Any, label: str) -> None:
        self.values[path] = (value, label)


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ClusterConfig:
    """Build the config. ``overrides`` are CLI values by setting path (``api.port``, ``node_id``).

    ``path`` defaults to ``$RINGRIFT_CONFIG``; with neither, a single-node loopback cluster.
    Raises ``ConfigError`` naming the key, the value and what was expected.
    """
    env = os.environ if env is None else env
    overrides = dict(overrides or {})
    if path is None and env.get("RINGRIFT_CONFIG"):
        path = env["RINGRIFT_CONFIG"]
    document: dict[str, Any] = {}
    if path is not None:
        document = _read_yaml(Path(path))

    yaml_layer = _yaml_layer(document)
    env_layer = _env_layer(env)
    cli_layer = _Layer()
    for key, value in overrides.items():
        if value is not None:
            cli_layer.put(key, value, _cli_label(key))

    merged: dict[str, tuple[Any, str]] = {}
    for layer in (yaml_layer, env_layer, cli_layer):
        merged.update(layer.values)

    preset_value, preset_label = merged.get("preset", ("lan", "preset"))
    if not isinstance(preset_value, str) or preset_value not in PRESETS:
        raise ConfigError(preset_label, preset_value, f"one of {sorted(PRESETS)}")
    return _build(document, merged, preset_value, Path(path) if path is not None else None)


_CLI_FLAGS = {"discovery.file_path": "--sd-file"}  # flags not named after their setting


def _cli_label(path: str) -> str:
    return _CLI_FLAGS.get(path) or "--" + path.split(".")[-1].replace("_", "-")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError("--config", str(path), "a readable YAML file", e.strerror or str(e)) from e
    except UnicodeDecodeError as e:
        raise ConfigError("--config", str(path), "a UTF-8 text file", str(e)) from e
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise ConfigError(str(path), "<unparsable>", "valid YAML", f"{where}: {getattr(e, 'problem', e)}") from e
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(str(path), type(document).__name__, "a mapping at the top level")
    return document


def _did_you_mean(key: str, known: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(sorted(known))}"


def _near_miss(key: str, known: list[str] | tuple[str, ...]) -> str | None:
    """A known key that ``key`` is probably a typo of (for files that also hold foreign keys)."""
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.8)
    return close[0] if close and close[0] != key else None


def _yaml_layer(document: Mapping[str, Any]) -> _Layer:
    layer = _Layer()
    for key in document:
        if not isinstance(key, str):
            raise ConfigError(f"{key!r}", key, "string keys at the top level")
        typo = _near_miss(key, HOST_FILE_KEYS)
        if typo:
            raise ConfigError(key, document[key], "a known top-level key", f"did you mean {typo!r}?")
    for key in ("p2p_voters", "raft_members", "coordinator_nodes", "preferred_leader"):
        if key in document and document[key] is not None:
            target = "voters" if key == "p2p_voters" else key
            layer.put(target, document[key], key)
    section = document.get(SECTION)
    if section is None:
        return layer
    if not isinstance(section, dict):
        raise ConfigError(SECTION, section, "a mapping of settings")
    known = list(TOP_SETTINGS) + list(SECTIONS)
    for key, value in section.items():
        label = f"{SECTION}.{key}"
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(label, value, "a mapping of settings")
            fields = [f.name for f in dataclasses.fields(SECTIONS[key])]
            for sub, subvalue in value.items():
                if sub not in fields:
                    raise ConfigError(f"{label}.{sub}", subvalue, "a known setting", _did_you_mean(str(sub), fields))
                layer.put(f"{key}.{sub}", subvalue, f"{label}.{sub}")
        elif key in TOP_SETTINGS:
            layer.put(key, value, label)
        else:
            raise ConfigError(label, value, "a known setting", _did_you_mean(str(key), known))
    return layer


def _env_layer(env: Mapping[str, str]) -> _Layer:
    layer = _Layer()
    for name, target in ENV_FILE_VARS.items():
        if env.get(name):
            try:
                layer.put(target, Path(env[name]).read_text(encoding="utf-8").strip(), name)
            except OSError as e:
                raise ConfigError(name, env[name], "a readable file", e.strerror or str(e)) from e
            except UnicodeDecodeError as e:
                raise ConfigError(name, env[name], "a UTF-8 text file", str(e)) from e
    for name, target in ENV_VARS.items():
        if name in env and env[name] != "":
            layer.put(target, env[name], name)
    return layer


# --------------------------------------------------------------------------------------------
# Coercion and validation


def _coerce(label: str, value: Any, kind: Any) -> Any:
    """Convert ``value`` (from YAML, env text or CLI) to ``kind`` or raise ConfigError."""
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        choices = [m.value for m in kind]
        text = value.strip().lower() if isinstance(value, str) else value
        if text not in choices:
            raise ConfigError(label, value, f"one of {choices}")
        return kind(text)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(label, value, "a boolean (true/false)")
    if kind is int:
        if isinstance(value, bool):
            raise ConfigError(label, value, "an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ConfigError(label, value, "an integer")
    if kind is float:
        if isinstance(value, bool):
            raise ConfigError(label, value, "a number of seconds")
        if isinstance(value, (int, float)):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                raise ConfigError(label, value, "a number") from None
        else:
            raise ConfigError(label, value, "a number")
        if number != number or number in (float("inf"), float("-inf")):
            raise ConfigError(label, value, "a finite number")
        return number
    if kind is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(label, value, "a string")
    if kind is tuple:
        if isinstance(value, str):
            items = [v.strip() for v in value.split(",") if v.strip()]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            raise ConfigError(label, value, "a list (or a comma-separated string)")
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise ConfigError(f"{label}[{i}]", item, "a string")
        return tuple(items)
    raise AssertionError(f"unhandled setting type {kind!r}")


def _section(cls: type, name: str, preset: str, merged: Mapping[str, tuple[Any, str]]) -> Any:
    hints = get_type_hints(cls)
    values: dict[str, Any] = dict(PRESETS[preset].get(name, {}))
    for f in dataclasses.fields(cls):
        path = f"{name}.{f.name}"
        if path in merged:
            raw, label = merged[path]
            values[f.name] = _coerce(label, raw, hints[f.name])
    labels = {f.name: merged.get(f"{name}.{f.name}", (None, f"{SECTION}.{name}.{f.name}"))[1] for f in dataclasses.fields(cls)}
    instance = cls(**values)
    for f in dataclasses.fields(cls):
        value = getattr(instance, f.name)
        if f.name.endswith("_s") and not 0 < value <= MAX_DURATION_S:
            raise ConfigError(labels[f.name], value, f"a positive number of seconds, at most {MAX_DURATION_S:.0f}")
        if isinstance(value, int) and not isinstance(value, bool) and value > MAX_COUNT:
            raise ConfigError(labels[f.name], value, f"at most {MAX_COUNT}")
        if f.name in ("port", "bind_port") and not 1 <= value <= 65535:
            raise ConfigError(labels[f.name], value, "a port number from 1 to 65535")
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            raise ConfigError(labels[f.name], value, "a non-negative integer")
    _check_section(name, instance, labels)
    return instance


def _check_section(name: str, s: Any, labels: Mapping[str, str]) -> None:
    """Cross-field rules of one section: timeouts that only make sense in one order."""

    def order(small: str, big: str) -> None:
        if getattr(s, small) >= getattr(s, big):
            raise ConfigError(
                labels[small], getattr(s, small), f"less than {name}.{big} ({getattr(s, big)})"
            )

    if name == "heartbeat":
        order("interval_s", "suspect_timeout_s")
        order("suspect_timeout_s", "peer_timeout_s")
        if not 0 <= s.jitter_fraction < 0.5:
            raise ConfigError(labels["jitter_fraction"], s.jitter_fraction, "a fraction from 0 to 0.5")
    elif name == "election":
        if s.lease_duration_s > MAX_LEASE_S:  # voters refuse longer leases: nobody could lead
            raise ConfigError(labels["lease_duration_s"], s.lease_duration_s, f"at most {MAX_LEASE_S:.0f} seconds")
        order("lease_renew_interval_s", "lease_duration_s")
        order("lease_safety_margin_s", "lease_duration_s")
        order("check_interval_s", "lease_duration_s")
    elif name == "swim":
        if s.transport not in SWIM_TRANSPORTS:
            raise ConfigError(labels["transport"], s.transport, f"one of {list(SWIM_TRANSPORTS)}")
        order("ping_timeout_s", "suspicion_timeout_s")
    elif name == "raft":
        if s.durability not in RAFT_DURABILITY:
            raise ConfigError(labels["durability"], s.durability, f"one of {list(RAFT_DURABILITY)}")
        order("min_timeout_s", "max_timeout_s")
        if s.min_timeout_s <= 3 * s.append_entries_period_s:
            raise ConfigError(
                labels["min_timeout_s"], s.min_timeout_s,
                f"more than 3 x raft.append_entries_period_s ({s.append_entries_period_s})",
            )
    elif name == "state" and not (s.cluster_name and len(s.cluster_name) <= 128 and s.cluster_name.isprintable()):
        raise ConfigError(labels["cluster_name"], s.cluster_name, "a printable name of 1 to 128 characters")
    elif name == "discovery":
        _check_discovery(s, labels)
    elif name == "api" and not 1024 <= s.max_body_bytes <= 64 << 20:
        raise ConfigError(labels["max_body_bytes"], s.max_body_bytes, "from 1024 bytes to 64 MiB")


def _check_discovery(s: DiscoverySettings, labels: Mapping[str, str]) -> None:
    for i, backend in enumerate(s.backends):
        if backend not in DISCOVERY_BACKENDS:
            raise ConfigError(f"{labels['backends']}[{i}]", backend, f"one of {list(DISCOVERY_BACKENDS)}")
    if len(set(s.backends)) != len(s.backends):
        raise ConfigError(labels["backends"], list(s.backends), "a list without duplicates")
    if "file_sd" in s.backends and not s.file_path.strip():
        raise ConfigError(labels["file_path"], s.file_path, "a targets file path, because discovery.backends has file_sd")
    if s.file_path and (s.file_path != s.file_path.strip() or s.file_path.endswith(("/", os.sep)) or "\0" in s.file_path):
        raise ConfigError(labels["file_path"], s.file_path, "a file path (no surrounding spaces, not a directory)")
    if s.scrape_port != "api" and not (s.scrape_port.isascii() and s.scrape_port.isdigit() and 1 <= int(s.scrape_port) <= 65535):
        raise ConfigError(labels["scrape_port"], s.scrape_port, "a port number from 1 to 65535, or 'api' for each node's API port")
    if s.batch_s >= s.validate_interval_s:
        raise ConfigError(labels["batch_s"], s.batch_s, f"less than discovery.validate_interval_s ({s.validate_interval_s})")


def _hosts(document: Mapping[str, Any], merged: Mapping[str, tuple[Any, str]], api: ApiSettings,
           swim: SwimSettings, raft: RaftSettings) -> dict[str, HostConfig]:
    raw = document.get("hosts")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError("hosts", raw, "a mapping of node id to host settings")
    hosts: dict[str, HostConfig] = {}
    for node_id, entry in raw.items():
        label = f"hosts.{node_id}"
        problem = node_id_problem(node_id)
        if problem:
            raise ConfigError(label, node_id, problem)
        if entry is None:
            entry = {}
        if not isinstance(entry, dict):
            raise ConfigError(label, entry, "a mapping of host settings")
        known: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in entry.items():
            if key in HOST_ENTRY_KEYS:
                known[key] = _coerce(f"{label}.{key}", value, HOST_ENTRY_KEYS[key]) if value is not None else None
            else:
                typo = _near_miss(str(key), list(HOST_ENTRY_KEYS))
                if typo:
                    raise ConfigError(f"{label}.{key}", value, "a known host key", f"did you mean {typo!r}?")
                extra[key] = value
        if known.get("status") == "offline" or known.get("p2p_enabled") is False:
            continue
        address = known.get("p2p_host") or known.get("tailscale_ip") or known.get("ssh_host") or LOOPBACK
        ports = {
            "api_port": api.port if known.get("p2p_port") is None else known["p2p_port"],
            "swim_port": swim.bind_port if known.get("swim_port") is None else known["swim_port"],
            "raft_port": raft.bind_port if known.get("raft_port") is None else known["raft_port"],
        }
        if not 0 <= (known.get("gpu_vram_gb") or 0) <= 1e6:
            raise ConfigError(f"{label}.gpu_vram_gb", known["gpu_vram_gb"], "a number of GB from 0 to 1e6")
        for key, port in ports.items():
            if not 1 <= port <= 65535:
                source = {"api_port": "p2p_port", "swim_port": "swim_port", "raft_port": "raft_port"}[key]
                raise ConfigError(f"{label}.{source}", port, "a port number from 1 to 65535")
        hosts[node_id] = HostConfig(
            node_id=node_id,
            address=address,
            role=known.get("role") or "",
            status=known.get("status") or "active",
            p2p_enabled=True,
            nat_blocked=bool(known.get("nat_blocked")),
            gpu=known.get("gpu") or "",
            gpu_vram_gb=known.get("gpu_vram_gb") or 0.0,
            tailscale_ip=known.get("tailscale_ip") or "",
            capabilities=known.get("capabilities") or (),
            extra=extra,
            **ports,
        )
    _check_port_collisions(hosts)
    return hosts


def _check_port_collisions(hosts: Mapping[str, HostConfig]) -> None:
    """Two services on one address and port would fight over it: reject the config instead."""
    seen: dict[tuple[str, int], str] = {}
    for node_id, host in sorted(hosts.items()):
        for key, port in (("p2p_port", host.api_port), ("swim_port", host.swim_port), ("raft_port", host.raft_port)):
            where = (host.address, port)
            if where in seen:
                raise ConfigError(
                    f"hosts.{node_id}.{key}", port,
                    f"a port not already used on {host.address} (taken by {seen[where]})",
                )
            seen[where] = f"hosts.{node_id}.{key}"


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _node_list(merged: Mapping[str, tuple[Any, str]], key: str, hosts: Mapping[str, HostConfig]) -> tuple[str, ...] | None:
    if key not in merged:
        return None
    raw, label = merged[key]
    items = _coerce(label, raw, tuple)
    for i, item in enumerate(items):
        problem = node_id_problem(item)
        if problem:
            raise ConfigError(f"{label}[{i}]", item, problem)
        if item not in hosts:
            raise ConfigError(f"{label}[{i}]", item, "a node id listed (and not offline) in hosts", _did_you_mean(item, list(hosts)))
    if len(set(items)) != len(items):
        raise ConfigError(label, list(items), "a list without duplicates")
    return tuple(sorted(items))


def _build(document: Mapping[str, Any], merged: dict[str, tuple[Any, str]], preset: str,
           config_path: Path | None) -> ClusterConfig:
    sections = {name: _section(cls, name, preset, merged) for name, cls in SECTIONS.items()}
    top: dict[str, Any] = {}
    for key, kind in TOP_SETTINGS.items():
        if key in merged:
            raw, label = merged[key]
            top[key] = _coerce(label, raw, kind)

    hosts = _hosts(document, merged, sections["api"], sections["swim"], sections["raft"])
    discovery = sections["discovery"]
    if discovery.file_path and "file_sd" not in discovery.backends:  # a targets file turns file_sd on
        sections["discovery"] = dataclasses.replace(discovery, backends=("file_sd", *discovery.backends))
    node_id = top.get("node_id")
    node_label = merged.get("node_id", (None, "node_id"))[1]
    if not hosts:
        # No cluster file: one node alone on loopback.
        node_id = node_id or SINGLE_NODE_ID
        api = sections["api"]
        hosts = {node_id: HostConfig(node_id=node_id, address=LOOPBACK, api_port=api.port,
                                     swim_port=sections["swim"].bind_port, raft_port=sections["raft"].bind_port)}
        sections["api"] = dataclasses.replace(api, bind_host=LOOPBACK if api.bind_host == "0.0.0.0" else api.bind_host)
    if node_id is None:
        node_id = _guess_node_id(hosts)
        if node_id is None:
            raise ConfigError("node_id", None, "a node id (--node-id or RINGRIFT_NODE_ID)", f"one of: {', '.join(sorted(hosts))}")
    problem = node_id_problem(node_id)
    if problem:
        raise ConfigError(node_label, node_id, problem)
    if node_id not in hosts:
        raise ConfigError(node_label, node_id, "a node id listed (and not offline) in hosts", _did_you_mean(node_id, list(hosts)))
    me = hosts[node_id]
    # The API port of this node comes from its host entry unless set explicitly.
    if "api.port" not in merged:
        sections["api"] = dataclasses.replace(sections["api"], port=me.api_port)
    if "swim.bind_port" not in merged:
        sections["swim"] = dataclasses.replace(sections["swim"], bind_port=me.swim_port)
    if "raft.bind_port" not in merged:
        sections["raft"] = dataclasses.replace(sections["raft"], bind_port=me.raft_port)
    for name in ("swim", "raft"):
        if not sections[name].bind_host:
            sections[name] = dataclasses.replace(sections[name], bind_host=me.address)

    voters = _node_list(merged, "voters", hosts) or tuple(sorted(hosts))
    raft_members = _node_list(merged, "raft_members", hosts) or voters
    coordinators = _node_list(merged, "coordinator_nodes", hosts)
    leaders = tuple(v for v in voters if coordinators is None or v in coordinators)
    if not leaders:
        raise ConfigError("coordinator_nodes", list(coordinators or ()), "at least one node that is also in p2p_voters")
    preferred = None
    if "preferred_leader" in merged:
        raw, label = merged["preferred_leader"]
        preferred = _coerce(label, raw, str)
        if preferred not in leaders:
            raise ConfigError(label, preferred, "a voter allowed to coordinate", f"one of: {', '.join(leaders)}")

    membership_mode = top.get("membership_mode", MembershipMode.HTTP)
    consensus_mode = top.get("consensus_mode", ConsensusMode.BULLY)
    swim_enabled, raft_enabled = _resolve_flags(merged, top, membership_mode, consensus_mode)

    raft = sections["raft"]
    uses_raft = consensus_mode in (ConsensusMode.RAFT, ConsensusMode.HYBRID)
    if uses_raft and not _is_loopback(raft.bind_host) and not raft.password:
        raise ConfigError(
            "raft.password", "", "a cluster password (RINGRIFT_RAFT_PASSWORD or RINGRIFT_RAFT_PASSWORD_FILE)",
            f"Raft binds the non-loopback address {raft.bind_host} and would accept unauthenticated pickles",
        )

    log_level = top.get("log_level", "info").lower()
    if log_level not in LOG_LEVELS:
        raise ConfigError(merged["log_level"][1], log_level, f"one of {list(LOG_LEVELS)}")
    log_format = top.get("log_format", "auto").lower()
    if log_format not in LOG_FORMATS:
        raise ConfigError(merged["log_format"][1], log_format, f"one of {list(LOG_FORMATS)}")

    if "data_dir" in top and not top["data_dir"].strip():
        raise ConfigError(merged["data_dir"][1], top["data_dir"], "a directory path (not empty)")
    data_dir = Path(top["data_dir"]) if "data_dir" in top else _default_data_dir() / node_id

    return ClusterConfig(
        node_id=node_id,
        hosts=hosts,
        voters=voters,
        raft_members=raft_members,
        coordinator_nodes=leaders,
        preferred_leader=preferred,
        preset=preset,
        membership_mode=membership_mode,
        consensus_mode=consensus_mode,
        swim_enabled=swim_enabled,
        raft_enabled=raft_enabled,
        membership_backends={
            MembershipMode.HTTP: ("heartbeat",),
            MembershipMode.SWIM: ("swim",),
            MembershipMode.HYBRID: ("swim", "heartbeat"),
        }[membership_mode],
        leader_backend="raft" if consensus_mode is ConsensusMode.RAFT else "bully",
        state_backend="journal" if consensus_mode is ConsensusMode.BULLY else "raft",
        data_dir=data_dir,
        auth_token=top.get("auth_token", ""),
        log_level=log_level,
        log_format=log_format,
        config_path=config_path,
        **sections,
    )


def _resolve_flags(merged: Mapping[str, tuple[Any, str]], top: Mapping[str, Any],
                   membership: MembershipMode, consensus: ConsensusMode) -> tuple[bool, bool]:
    """The engine flags follow the modes unless set; set to false under a mode that needs the
    engine, they are a contradiction and rejected."""
    needs_swim = membership in (MembershipMode.SWIM, MembershipMode.HYBRID)
    needs_raft = consensus in (ConsensusMode.RAFT, ConsensusMode.HYBRID)
    swim_enabled = top.get("swim_enabled", needs_swim)
    raft_enabled = top.get("raft_enabled", needs_raft)
    if needs_swim and not swim_enabled:
        mode_label = merged.get("membership_mode", (None, "membership_mode"))[1]
        raise ConfigError(merged["swim_enabled"][1], False,
                          f"true, because {mode_label}={membership.value} needs SWIM")
    if needs_raft and not raft_enabled:
        mode_label = merged.get("consensus_mode", (None, "consensus_mode"))[1]
        raise ConfigError(merged["raft_enabled"][1], False,
                          f"true, because {mode_label}={consensus.value} needs Raft")
    return swim_enabled, raft_enabled


def _guess_node_id(hosts: Mapping[str, HostConfig]) -> str | None:
    """The host key matching this machine's hostname, when there is exactly one."""
    name = socket.gethostname().lower()
    if name in hosts:
        return name
    return next(iter(hosts)) if len(hosts) == 1 else None


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "ringrift-cluster"


__all__ = [
    "ApiSettings", "ClusterConfig", "ConsensusMode", "ElectionSettings", "HeartbeatSettings",
    "DiscoverySettings", "HostConfig", "MembershipMode", "PRESETS", "RaftSettings", "SwimSettings", "load_config",
]
