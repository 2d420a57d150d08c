"""The host's ``distributed_hosts.yaml``: ``hosts`` entries and the node lists (``p2p_voters``,
``raft_members``, ``coordinator_nodes``). A host entry may carry keys that are not ours (ssh
users, paths, ...): those are kept and ignored, unless one is a near-miss of a key we know."""

from __future__ import annotations

from typing import Any, Mapping

from ..errors import ConfigError
from ..model import node_id_problem
from .settings import LOOPBACK, ApiSettings, HostConfig, RaftSettings, SwimSettings
from .sources import coerce, did_you_mean, near_miss

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



def hosts_of(document: Mapping[str, Any], merged: Mapping[str, tuple[Any, str]], api: ApiSettings,
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
                known[key] = coerce(f"{label}.{key}", value, HOST_ENTRY_KEYS[key]) if value is not None else None
            else:
                typo = near_miss(str(key), list(HOST_ENTRY_KEYS))
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



def node_list(merged: Mapping[str, tuple[Any, str]], key: str, hosts: Mapping[str, HostConfig]) -> tuple[str, ...] | None:
    if key not in merged:
        return None
    raw, label = merged[key]
    items = coerce(label, raw, tuple)
    for i, item in enumerate(items):
        problem = node_id_problem(item)
        if problem:
            raise ConfigError(f"{label}[{i}]", item, problem)
        if item not in hosts:
            raise ConfigError(f"{label}[{i}]", item, "a node id listed (and not offline) in hosts", did_you_mean(item, list(hosts)))
    if len(set(items)) != len(items):
        raise ConfigError(label, list(items), "a list without duplicates")
    return tuple(sorted(items))
