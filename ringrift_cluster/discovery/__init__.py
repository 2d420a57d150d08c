"""Service discovery fed by membership: Prometheus file_sd and http_sd, a bridge from membership
events, and a validator that keeps them equal to membership's alive set."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from .base import DiscoveryBackend, DiscoveryError, Target, parse_groups, render_groups
from .bridge import DiscoveryBridge
from .prometheus import FileSd, HttpSd, read_targets, write_atomically
from .metrics import DiscoveryMetrics
from .validator import ConsistencyValidator, ValidationReport

if TYPE_CHECKING:
    from ..config import ClusterConfig
    from ..membership.base import Membership


def targets_path(config: "ClusterConfig") -> Path | None:
    """The file_sd targets file: ``discovery.file_path``, relative to the data dir unless absolute."""
    raw = config.discovery.file_path
    if not raw:
        return None
    path = Path(raw).expanduser()
    return path if path.is_absolute() else config.data_dir / path


class Discovery:
    """The node's discovery: backends from the config, the bridge and the validator, one lifecycle."""

    def __init__(self, config: "ClusterConfig", membership: "Membership",
                 registry: CollectorRegistry | None = None) -> None:
        names = config.discovery.backends
        path = targets_path(config)
        self.file_sd = FileSd(path) if "file_sd" in names and path is not None else None
        self.http_sd = HttpSd() if "http_sd" in names else None
        backends: list[DiscoveryBackend] = [b for b in (self.file_sd, self.http_sd) if b is not None]
        self.metrics = DiscoveryMetrics(registry)
        self.bridge = DiscoveryBridge(config, membership, backends, metrics=self.metrics)
        self.validator = ConsistencyValidator(self.bridge, self.metrics)
        self.membership = membership
        self._tasks: list[asyncio.Task[None]] = []
        self._subscription: Any = None

    async def start(self) -> None:
        """Subscribe, write what membership knows now, then follow it. A write that fails here
        is logged, counted and retried: discovery never keeps a node from running."""
        if not self.bridge.backends:
            return
        subscription = self.membership.subscribe()  # before the snapshot: no change falls between
        self.bridge.reconcile()
        if await self.bridge.flush():
            self.bridge.changed.clear()
        self._tasks = [
            asyncio.create_task(self.bridge.consume(subscription), name="discovery-bridge"),
            asyncio.create_task(self.bridge.flush_loop(), name="discovery-flush"),
            asyncio.create_task(self.validator.run(), name="discovery-validator"),
        ]
        self._subscription = subscription

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None

    def describe(self) -> dict[str, Any]:
        last = self.validator.last
        return {
            "backends": [b.name for b in self.bridge.backends],
            "file": str(self.file_sd.path) if self.file_sd is not None else None,
            "targets": self.bridge.counts(),
            "pending_suspects": sorted(self.bridge.pending),
            "flaps_damped": self.bridge.damped,
            "write_failures": self.bridge.write_failures,
            "reconciliations": self.validator.reconciliations,
            "last_validation": last.as_dict() if last is not None else None,
        }


__all__ = [
    "ConsistencyValidator", "Discovery", "DiscoveryBackend", "DiscoveryBridge", "DiscoveryError",
    "DiscoveryMetrics", "FileSd", "HttpSd", "Target", "ValidationReport", "parse_groups",
    "read_targets", "render_groups", "targets_path", "write_atomically",
]
