"""Where settings come from, lowest to highest: the cluster YAML, ``RINGRIFT_*`` environment
variables, command-line values. Each layer maps a setting path (``api.port``) to its raw value
and a label naming where it was set, so an error names what the user wrote; ``coerce`` turns a
raw value into the setting's type."""

from __future__ import annotations

import dataclasses
import difflib
import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from ..errors import ConfigError
from .settings import HOST_FILE_KEYS, SECTION, SECTIONS, TOP_SETTINGS

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



@dataclass
class Layer:
    """Settings gathered from one source: path -> (value, label naming where it came from)."""

    values: dict[str, tuple[Any, str]] = field(default_factory=dict)

    def put(self, path: str, value: Any, label: str) -> None:
        self.values[path] = (value, label)



_CLI_FLAGS = {"discovery.file_path": "--sd-file"}  # flags not named after their setting


def cli_label(path: str) -> str:
    return _CLI_FLAGS.get(path) or "--" + path.split(".")[-1].replace("_", "-")


def read_yaml(path: Path) -> dict[str, Any]:
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


def did_you_mean(key: str, known: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(sorted(known))}"


def near_miss(key: str, known: list[str] | tuple[str, ...]) -> str | None:
    """A known key that ``key`` is probably a typo of (for files that also hold foreign keys)."""
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.8)
    return close[0] if close and close[0] != key else None


def yaml_layer(document: Mapping[str, Any]) -> Layer:
    layer = Layer()
    for key in document:
        if not isinstance(key, str):
            raise ConfigError(f"{key!r}", key, "string keys at the top level")
        typo = near_miss(key, HOST_FILE_KEYS)
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
                    raise ConfigError(f"{label}.{sub}", subvalue, "a known setting", did_you_mean(str(sub), fields))
                layer.put(f"{key}.{sub}", subvalue, f"{label}.{sub}")
        elif key in TOP_SETTINGS:
            layer.put(key, value, label)
        else:
            raise ConfigError(label, value, "a known setting", did_you_mean(str(key), known))
    return layer


def env_layer(env: Mapping[str, str]) -> Layer:
    layer = Layer()
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



def coerce(label: str, value: Any, kind: Any) -> Any:
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
