"""What a discovery backend holds (targets) and the interface every backend implements."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Mapping, Protocol, runtime_checkable

from ..errors import ClusterError
from ..model import NodeId, node_id_problem

HEALTHY = "healthy"
UNHEALTHY = "unhealthy"
LABELS = ("node_id", "role", "gpu", "health", "source")
_HOST_RE = re.compile(r"^[A-Za-z0-9._-]+$|^[0-9A-Fa-f:.]+$")  # a name, IPv4, or IPv6 without brackets


class DiscoveryError(ClusterError):
    """A target or a targets document that cannot be taken (says what is wrong with it)."""


@dataclass(frozen=True, kw_only=True)
class Target:
    """One member as Prometheus sees it: where to scrape it, and its labels."""

    node_id: NodeId
    address: str
    port: int
    role: str = ""
    gpu: str = ""
    healthy: bool = True
    source: str = ""

    def __post_init__(self) -> None:
        problem = node_id_problem(self.node_id)
        if problem:
            raise DiscoveryError(f"target node_id {self.node_id!r}: expected {problem}")
        if not isinstance(self.address, str) or not _HOST_RE.match(self.address):
            raise DiscoveryError(f"target {self.node_id}: address {self.address!r} is not a host name or IP")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise DiscoveryError(f"target {self.node_id}: port {self.port!r} is not from 1 to 65535")
        for name in ("role", "gpu", "source"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.isprintable() or len(value) > 256:
                raise DiscoveryError(f"target {self.node_id}: {name} {value!r} is not a printable label value")

    @property
    def endpoint(self) -> str:
        return f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"

    @property
    def health(self) -> str:
        return HEALTHY if self.healthy else UNHEALTHY

    def labels(self) -> dict[str, str]:
        return {"node_id": self.node_id, "role": self.role, "gpu": self.gpu, "health": self.health,
                "source": self.source}

    def with_health(self, healthy: bool) -> "Target":
        return self if healthy == self.healthy else dataclasses.replace(self, healthy=healthy)

    def group(self) -> dict[str, Any]:
        """This target as one Prometheus target group (file_sd and http_sd share the format)."""
        return {"targets": [self.endpoint], "labels": self.labels()}


def render_groups(targets: Mapping[NodeId, Target]) -> list[dict[str, Any]]:
    """Target groups, one per member, by node id."""
    return [targets[n].group() for n in sorted(targets)]


def parse_groups(document: Any, where: str = "targets") -> dict[NodeId, Target]:
    """The inverse of ``render_groups``; raises DiscoveryError naming the first bad group."""
    if not isinstance(document, list):
        raise DiscoveryError(f"{where}: expected a list of target groups, got {type(document).__name__}")
    targets: dict[NodeId, Target] = {}
    for i, group in enumerate(document):
        at = f"{where}[{i}]"
        if not isinstance(group, dict) or set(group) != {"targets", "labels"}:
            raise DiscoveryError(f"{at}: expected an object with exactly 'targets' and 'labels'")
        endpoints, labels = group["targets"], group["labels"]
        if not (isinstance(endpoints, list) and len(endpoints) == 1 and isinstance(endpoints[0], str)):
            raise DiscoveryError(f"{at}.targets: expected one 'host:port' string, got {endpoints!r}"[:300])
        if not isinstance(labels, dict) or set(labels) != set(LABELS) or \
                not all(isinstance(v, str) for v in labels.values()):
            raise DiscoveryError(f"{at}.labels: expected string labels {list(LABELS)}, got {labels!r}"[:300])
        host, sep, port = endpoints[0].rpartition(":")
        if not sep or not port.isdigit() or (":" in host and not (host.startswith("[") and host.endswith("]"))):
            raise DiscoveryError(f"{at}.targets: {endpoints[0]!r} is not 'host:port' (IPv6 as '[addr]:port')")
        host = host[1:-1] if host.startswith("[") else host
        if labels["health"] not in (HEALTHY, UNHEALTHY):
            raise DiscoveryError(f"{at}.labels.health: {labels['health']!r} is not {HEALTHY} or {UNHEALTHY}")
        try:
            target = Target(node_id=labels["node_id"], address=host, port=int(port), role=labels["role"],
                            gpu=labels["gpu"], healthy=labels["health"] == HEALTHY, source=labels["source"])
        except DiscoveryError as e:
            raise DiscoveryError(f"{at}: {e}") from None
        if target.node_id in targets:
            raise DiscoveryError(f"{at}: node {target.node_id} listed twice")
        targets[target.node_id] = target
    return targets


@runtime_checkable
class DiscoveryBackend(Protocol):
    """A place Prometheus finds the members. Changes are made in memory and never block;
    ``flush`` persists them; ``list`` reads back what discovery really holds."""

    name: str  # "file_sd", "http_sd"

    def register(self, target: Target) -> None:
        """Add (or update) a member's target."""

    def remove(self, node_id: NodeId) -> None:
        """Drop a member's target (no-op when absent)."""

    def mark_unhealthy(self, node_id: NodeId) -> None:
        """Keep the target but label it ``health=unhealthy``."""

    def mark_healthy(self, node_id: NodeId) -> None:
        """Label the target ``health=healthy`` again."""

    def replace(self, targets: Mapping[NodeId, Target]) -> None:
        """Set every target at once (reconciliation)."""

    async def list(self) -> dict[NodeId, Target]:
        """What discovery holds now, read back from where Prometheus reads it.

        Raises DiscoveryError when that cannot be read or parsed (a corrupted file)."""

    async def flush(self) -> None:
        """Persist the changes made since the last flush; raises OSError when it cannot."""


class TargetSet:
    """The in-memory part every backend shares: targets by node id, and a dirty flag."""

    name = "memory"

    def __init__(self) -> None:
        self.targets: dict[NodeId, Target] = {}
        self.dirty = False

    def register(self, target: Target) -> None:
        if not isinstance(target, Target):
            raise DiscoveryError(f"{self.name}: expected a Target, got {type(target).__name__}")
        self._set(target.node_id, target)

    def remove(self, node_id: NodeId) -> None:
        if self.targets.pop(node_id, None) is not None:
            self.dirty = True

    def mark_unhealthy(self, node_id: NodeId) -> None:
        self._health(node_id, False)

    def mark_healthy(self, node_id: NodeId) -> None:
        self._health(node_id, True)

    def replace(self, targets: Mapping[NodeId, Target]) -> None:
        self.targets = dict(targets)
        self.dirty = True

    def _health(self, node_id: NodeId, healthy: bool) -> None:
        target = self.targets.get(node_id)
        if target is None:
            raise DiscoveryError(f"{self.name}: no target for node {node_id!r} to mark {'healthy' if healthy else 'unhealthy'}")
        self._set(node_id, target.with_health(healthy))

    def _set(self, node_id: NodeId, target: Target) -> None:
        if self.targets.get(node_id) != target:
            self.targets[node_id] = target
            self.dirty = True
