"""``load_config``: defaults (the preset) < cluster YAML < ``RINGRIFT_*`` env < CLI, into one
frozen ``ClusterConfig`` whose modes are resolved once into a ``Plan``. Every rule of
``rules.py`` is applied here, so a config that loads is a config a node runs."""

from __future__ import annotations

import dataclasses
import os
import socket
from pathlib import Path
from typing import Any, Mapping, get_type_hints

from ..errors import ConfigError
from ..model import node_id_problem
from .hostfile import hosts_of, node_list
from .plan import ConsensusMode, MembershipMode, resolve_plan
from .rules import check_raft_password, check_section
from .settings import (
    LOG_FORMATS, LOG_LEVELS, LOOPBACK, PRESETS, SECTION, SECTIONS, SINGLE_NODE_ID, TOP_SETTINGS, ClusterConfig,
    HostConfig,
)
from .sources import Layer, cli_label, coerce, did_you_mean, env_layer, read_yaml, yaml_layer


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
        document = read_yaml(Path(path))

    from_yaml = yaml_layer(document)
    from_env = env_layer(env)
    from_cli = Layer()
    for key, value in overrides.items():
        if value is not None:
            from_cli.put(key, value, cli_label(key))

    merged: dict[str, tuple[Any, str]] = {}
    for layer in (from_yaml, from_env, from_cli):
        merged.update(layer.values)

    preset_value, preset_label = merged.get("preset", ("lan", "preset"))
    if not isinstance(preset_value, str) or preset_value not in PRESETS:
        raise ConfigError(preset_label, preset_value, f"one of {sorted(PRESETS)}")
    return _build(document, merged, preset_value, Path(path) if path is not None else None)



def _section(cls: type, name: str, preset: str, merged: Mapping[str, tuple[Any, str]]) -> Any:
    """One section: the preset's values under what was set, checked by ``rules.check_section``."""
    hints = get_type_hints(cls)
    values: dict[str, Any] = dict(PRESETS[preset].get(name, {}))
    for f in dataclasses.fields(cls):
        path = f"{name}.{f.name}"
        if path in merged:
            raw, label = merged[path]
            values[f.name] = coerce(label, raw, hints[f.name])
    labels = {f.name: merged.get(f"{name}.{f.name}", (None, f"{SECTION}.{name}.{f.name}"))[1] for f in dataclasses.fields(cls)}
    instance = cls(**values)
    check_section(name, instance, labels)
    return instance


def _build(document: Mapping[str, Any], merged: dict[str, tuple[Any, str]], preset: str,
           config_path: Path | None) -> ClusterConfig:
    sections = {name: _section(cls, name, preset, merged) for name, cls in SECTIONS.items()}
    top: dict[str, Any] = {}
    for key, kind in TOP_SETTINGS.items():
        if key in merged:
            raw, label = merged[key]
            top[key] = coerce(label, raw, kind)

    hosts = hosts_of(document, merged, sections["api"], sections["swim"], sections["raft"])
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
        raise ConfigError(node_label, node_id, "a node id listed (and not offline) in hosts", did_you_mean(node_id, list(hosts)))
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

    voters = node_list(merged, "voters", hosts) or tuple(sorted(hosts))
    raft_members = node_list(merged, "raft_members", hosts) or voters
    coordinators = node_list(merged, "coordinator_nodes", hosts)
    leaders = tuple(v for v in voters if coordinators is None or v in coordinators)
    if not leaders:
        raise ConfigError("coordinator_nodes", list(coordinators or ()), "at least one node that is also in p2p_voters")
    preferred = None
    if "preferred_leader" in merged:
        raw, label = merged["preferred_leader"]
        preferred = coerce(label, raw, str)
        if preferred not in leaders:
            raise ConfigError(label, preferred, "a voter allowed to coordinate", f"one of: {', '.join(leaders)}")

    membership_mode = top.get("membership_mode", MembershipMode.HTTP)
    consensus_mode = top.get("consensus_mode", ConsensusMode.BULLY)
    swim_enabled, raft_enabled = _resolve_flags(merged, top, membership_mode, consensus_mode)

    check_raft_password(sections["raft"], uses_raft=consensus_mode in (ConsensusMode.RAFT, ConsensusMode.HYBRID))

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
        plan=resolve_plan(membership_mode, consensus_mode, raft_member=node_id in raft_members),
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


__all__ = ["load_config"]
