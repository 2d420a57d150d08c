"""NodeInfo: the JSON a node sends in every heartbeat (and answers with)."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from .model import node_id_problem

# field -> (accepted JSON types, default). Unknown keys are ignored (rolling upgrades).
_FIELDS: dict[str, tuple[tuple[type, ...], Any]] = {
    "role": ((str,), "follower"),
    "leader_id": ((str, type(None)), None),
    "leader_term": ((int,), 0),
    "last_heartbeat": ((int, float), 0.0),
    "capabilities": ((list,), []),
    "has_gpu": ((bool,), False),
    "gpu_name": ((str,), ""),
    "memory_gb": ((int, float), 0.0),
    "cpu_percent": ((int, float), 0.0),
    "memory_percent": ((int, float), 0.0),
    "version": ((str,), ""),
    "tailscale_ip": ((str, type(None)), None),
    "effective_timeout": ((int, float), 0.0),
    "voter_node_ids": ((list,), []),
    "leaving": ((bool,), False),
}
REQUIRED = ("node_id", "host", "port")


class NodeInfoError(ValueError):
    """A heartbeat body that cannot be used; the message says which field and why."""


@dataclass(frozen=True, kw_only=True)
class NodeInfo:
    node_id: str
    host: str
    port: int
    role: str = "follower"
    leader_id: str | None = None
    leader_term: int = 0
    last_heartbeat: float = 0.0
    capabilities: list[str] = field(default_factory=list)
    has_gpu: bool = False
    gpu_name: str = ""
    memory_gb: float = 0.0
    cpu_percent: float = 0.0
    memory_percent: float = 0.0
    version: str = ""
    tailscale_ip: str | None = None
    effective_timeout: float = 0.0
    voter_node_ids: list[str] = field(default_factory=list)
    leaving: bool = False  # set in the last heartbeat of a graceful stop
    reported_host: str = ""  # what the sender said its host was, when we trust the socket instead

    @classmethod
    def parse(cls, data: object) -> "NodeInfo":
        """Validate a received body. Raises NodeInfoError naming the field at fault."""
        if not isinstance(data, Mapping):
            raise NodeInfoError("body: expected a JSON object")
        missing = [key for key in REQUIRED if key not in data]
        if missing:
            raise NodeInfoError(f"missing required field(s): {', '.join(missing)}")
        problem = node_id_problem(data["node_id"])
        if problem:
            raise NodeInfoError(f"node_id: expected {problem}, got {data['node_id']!r}")
        if not isinstance(data["host"], str):
            raise NodeInfoError(f"host: expected a string, got {data['host']!r}")
        port = data["port"]
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise NodeInfoError(f"port: expected a port number from 1 to 65535, got {port!r}")
        values: dict[str, Any] = {}
        for key, (types, default) in _FIELDS.items():
            value = data.get(key, default)
            if isinstance(value, bool) and bool not in types:
                raise NodeInfoError(f"{key}: expected {_names(types)}, got {value!r}")
            if not isinstance(value, types):
                raise NodeInfoError(f"{key}: expected {_names(types)}, got {value!r}")
            values[key] = value
        for key in ("capabilities", "voter_node_ids"):
            if not all(isinstance(item, str) for item in values[key]):
                raise NodeInfoError(f"{key}: expected a list of strings")
        return cls(node_id=data["node_id"], host=data["host"], port=port, **values)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if not data["reported_host"]:
            del data["reported_host"]
        if not data["leaving"]:
            del data["leaving"]
        return data


def _names(types: tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
             list: "a list", type(None): "null"}
    return " or ".join(names[t] for t in types)


def host_load() -> dict[str, float]:
    """CPU and memory figures for our own NodeInfo, read cheaply from the OS."""
    figures = {"cpu_percent": 0.0, "memory_percent": 0.0, "memory_gb": 0.0}
    try:
        figures["cpu_percent"] = round(100.0 * os.getloadavg()[0] / (os.cpu_count() or 1), 1)
    except OSError:
        pass
    try:
        meminfo = {}
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                meminfo[key] = float(rest.split()[0])
        total, available = meminfo["MemTotal"], meminfo["MemAvailable"]
        figures["memory_gb"] = round(total / 1024 / 1024, 1)
        figures["memory_percent"] = round(100.0 * (total - available) / total, 1)
    except (OSError, KeyError, ValueError, IndexError, ZeroDivisionError):
        pass
    return figures


def now_wall() -> float:
    return time.time()
