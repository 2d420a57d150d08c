"""Every rule a config must meet, in one place: ``load_config`` applies them all, so what
``check-config`` accepts is what ``run`` runs, and no backend checks its settings again.

Each rule raises ``ConfigError`` naming the key as the user set it (``labels``: the YAML key, the
variable or the flag), the value, and what was expected.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from typing import Any, Mapping

from ..errors import ConfigError
from .settings import (
    DISCOVERY_BACKENDS, MAX_COUNT, MAX_DURATION_S, MAX_LEASE_S, RAFT_DURABILITY, SECTION, SWIM_TRANSPORTS,
    DiscoverySettings, RaftSettings, SwimSettings,
)

# The ranges swim-p2p accepts (its own checks are not enforced).
SWIM_LIMITS: dict[str, tuple[float, float, str]] = {
    "ping_retries": (1, 10, "an integer from 1 to 10 (0 would suspect every member at once)"),
    "indirect_probes": (1, 10, "an integer from 1 to 10"),
    "gossip_fanout": (1, 10, "an integer from 1 to 10"),
    "protocol_period_s": (0.1, 10.0, "from 0.1 to 10 seconds"),
    "ping_timeout_s": (0.05, 10.0, "from 0.05 to 10 seconds"),
    "suspicion_timeout_s": (0.5, 120.0, "from 0.5 to 120 seconds"),
    "sync_interval_s": (5.0, 300.0, "from 5 to 300 seconds"),
    "packet_budget_bytes": (512, 65507, "from 512 to 65507 bytes"),
    "retransmit_mult": (1, 10, "an integer from 1 to 10"),
    "tombstone_s": (5.0, 86400.0, "from 5 seconds to a day"),
}


def default_labels(cls: type, name: str) -> dict[str, str]:
    """Each field's YAML key, for settings built outside ``load_config``."""
    return {f.name: f"{SECTION}.{name}.{f.name}" for f in dataclasses.fields(cls)}


def check_section(name: str, s: Any, labels: Mapping[str, str]) -> None:
    """The bounds every field of a section obeys, then the section's own rules."""
    for f in dataclasses.fields(s):
        value = getattr(s, f.name)
        if f.name.endswith("_s") and not 0 < value <= MAX_DURATION_S:
            raise ConfigError(labels[f.name], value, f"a positive number of seconds, at most {MAX_DURATION_S:.0f}")
        if isinstance(value, int) and not isinstance(value, bool) and value > MAX_COUNT:
            raise ConfigError(labels[f.name], value, f"at most {MAX_COUNT}")
        if f.name in ("port", "bind_port") and not 1 <= value <= 65535:
            raise ConfigError(labels[f.name], value, "a port number from 1 to 65535")
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            raise ConfigError(labels[f.name], value, "a non-negative integer")
    _SECTION_RULES.get(name, lambda s, labels: None)(s, labels)


def _less(s: Any, labels: Mapping[str, str], section: str, small: str, big: str, what: str = "less than") -> None:
    """Timeouts that only make sense in one order: ``small`` below ``big``."""
    if getattr(s, small) >= getattr(s, big):
        raise ConfigError(labels[small], getattr(s, small), f"{what} {section}.{big} ({getattr(s, big)})")


def _heartbeat(s: Any, labels: Mapping[str, str]) -> None:
    _less(s, labels, "heartbeat", "interval_s", "suspect_timeout_s")
    _less(s, labels, "heartbeat", "suspect_timeout_s", "peer_timeout_s")
    if not 0 <= s.jitter_fraction < 0.5:
        raise ConfigError(labels["jitter_fraction"], s.jitter_fraction, "a fraction from 0 to 0.5")


def _election(s: Any, labels: Mapping[str, str]) -> None:
    if s.lease_duration_s > MAX_LEASE_S:  # voters refuse longer leases: nobody could lead
        raise ConfigError(labels["lease_duration_s"], s.lease_duration_s, f"at most {MAX_LEASE_S:.0f} seconds")
    for small in ("lease_renew_interval_s", "lease_safety_margin_s", "check_interval_s"):
        _less(s, labels, "election", small, "lease_duration_s")


def _swim(s: SwimSettings, labels: Mapping[str, str]) -> None:
    if s.transport not in SWIM_TRANSPORTS:
        raise ConfigError(labels["transport"], s.transport, f"one of {list(SWIM_TRANSPORTS)}")
    _less(s, labels, "swim", "ping_timeout_s", "suspicion_timeout_s")
    for name, (low, high, expected) in SWIM_LIMITS.items():
        if not low <= getattr(s, name) <= high:
            raise ConfigError(labels[name], getattr(s, name), expected)
    _less(s, labels, "swim", "suspect_report_after_s", "suspicion_timeout_s")


def _raft(s: RaftSettings, labels: Mapping[str, str]) -> None:
    """Every rule pysyncobj asserts, and a few of ours."""

    def more(name: str, than: str, factor: float = 1.0, what: str = "more than") -> None:
        low = getattr(s, than) * factor
        if getattr(s, name) < low or (what == "more than" and getattr(s, name) == low):
            times = f"{factor:g} x " if factor != 1.0 else ""
            raise ConfigError(labels[name], getattr(s, name), f"{what} {times}raft.{than} ({getattr(s, than)})")

    if s.durability not in RAFT_DURABILITY:
        raise ConfigError(labels["durability"], s.durability, f"one of {list(RAFT_DURABILITY)}")
    more("min_timeout_s", "append_entries_period_s", 3.0)
    more("max_timeout_s", "min_timeout_s")
    more("connection_timeout_s", "max_timeout_s", what="at least")
    more("leader_fallback_timeout_s", "append_entries_period_s")
    if s.log_compaction_min_entries < 2:
        raise ConfigError(labels["log_compaction_min_entries"], s.log_compaction_min_entries, "an integer >= 2")


def _state(s: Any, labels: Mapping[str, str]) -> None:
    for name in ("max_finished_work", "max_finished_jobs", "max_versions_per_model", "dedup_max_entries"):
        if getattr(s, name) < 1:
            raise ConfigError(labels[name], getattr(s, name), "an integer >= 1")
    if not (s.cluster_name and len(s.cluster_name) <= 128 and s.cluster_name.isprintable()):
        raise ConfigError(labels["cluster_name"], s.cluster_name, "a printable name of 1 to 128 characters")


def _api(s: Any, labels: Mapping[str, str]) -> None:
    if not 1024 <= s.max_body_bytes <= 64 << 20:
        raise ConfigError(labels["max_body_bytes"], s.max_body_bytes, "from 1024 bytes to 64 MiB")


def _discovery(s: DiscoverySettings, labels: Mapping[str, str]) -> None:
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


_SECTION_RULES = {
    "api": _api, "heartbeat": _heartbeat, "election": _election, "state": _state, "swim": _swim, "raft": _raft,
    "discovery": _discovery,
}


def check_raft_password(raft: RaftSettings, uses_raft: bool) -> None:
    if uses_raft and not _is_loopback(raft.bind_host) and not raft.password:
        raise ConfigError(
            "raft.password", "", "a cluster password (RINGRIFT_RAFT_PASSWORD or RINGRIFT_RAFT_PASSWORD_FILE)",
            f"Raft binds the non-loopback address {raft.bind_host} and would accept unauthenticated pickles",
        )


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_swim_settings(s: SwimSettings) -> None:
    """The rules for SwimSettings built outside ``load_config`` (tools, tests)."""
    check_section("swim", s, default_labels(SwimSettings, "swim"))


def validate_raft_settings(s: RaftSettings) -> None:
    """The rules for RaftSettings built outside ``load_config`` (tools, tests); ``load_config``
    always fills ``bind_host`` in."""
    labels = default_labels(RaftSettings, "raft")
    check_section("raft", s, labels)
    if not s.bind_host:
        raise ConfigError(labels["bind_host"], s.bind_host, "an address to bind")


__all__ = ["SWIM_LIMITS", "check_raft_password", "check_section", "default_labels", "validate_raft_settings",
           "validate_swim_settings"]
