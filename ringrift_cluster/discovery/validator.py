"""The consistency validator: compares what discovery holds with membership's alive set, reports
the differences, and past ``inconsistency_threshold`` rewrites discovery from membership."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Callable

import structlog

from ..model import NodeId
from .base import DiscoveryError
from .bridge import DiscoveryBridge
from .metrics import DiscoveryMetrics

_log = structlog.get_logger("ringrift.discovery")


@dataclass(frozen=True)
class BackendReport:
    """One backend's differences. missing: alive but not listed; stale: listed but not alive;
    altered: listed otherwise than the bridge wrote it; error: could not be read at all."""

    backend: str
    missing: tuple[NodeId, ...] = ()
    stale: tuple[NodeId, ...] = ()
    altered: tuple[NodeId, ...] = ()
    error: str = ""

    @property
    def inconsistencies(self) -> int:
        return len(self.missing) + len(self.stale) + len(self.altered) + (1 if self.error else 0)

    def as_dict(self) -> dict[str, object]:
        return {"backend": self.backend, "missing": list(self.missing), "stale": list(self.stale),
                "altered": list(self.altered), "error": self.error}


@dataclass(frozen=True)
class ValidationReport:
    backends: tuple[BackendReport, ...] = ()
    reconciled: bool = False
    at: float = field(default_factory=time.time)

    @property
    def inconsistencies(self) -> int:
        return sum(b.inconsistencies for b in self.backends)

    def as_dict(self) -> dict[str, object]:
        return {"inconsistencies": self.inconsistencies, "reconciled": self.reconciled, "at": self.at,
                "backends": [b.as_dict() for b in self.backends if b.inconsistencies]}


class ConsistencyValidator:
    """Every ``validate_interval_s``: list, compare, report, and reconcile when needed."""

    def __init__(self, bridge: DiscoveryBridge, metrics: DiscoveryMetrics | None = None,
                 *, wall_clock: Callable[[], float] = time.time) -> None:
        self.bridge = bridge
        self.settings = bridge.settings
        self.metrics = metrics
        self.wall_clock = wall_clock
        self.last: ValidationReport | None = None
        self.reconciliations = 0

    async def validate(self) -> ValidationReport:
        # Changes still inside their batch window go out first: they are not differences.
        await self.bridge.flush()
        alive = set(self.bridge.desired())
        reports = []
        for backend in self.bridge.backends:
            try:
                listed = await backend.list()
            except DiscoveryError as e:
                reports.append(BackendReport(backend.name, missing=tuple(sorted(alive)), error=str(e)))
                continue
            view = self.bridge.view
            reports.append(BackendReport(
                backend.name,
                missing=tuple(sorted(alive - set(listed))),
                stale=tuple(sorted(set(listed) - alive)),
                altered=tuple(sorted(n for n in alive & set(listed) if listed[n] != view.get(n, listed[n]))),
            ))
        total = sum(r.inconsistencies for r in reports)
        # An unreadable file is always repaired: nothing in it can be trusted, whatever the count.
        reconcile = total > self.settings.inconsistency_threshold or any(r.error for r in reports)
        report = ValidationReport(tuple(reports), reconciled=reconcile, at=self.wall_clock())
        self.last = report
        if reconcile:
            self.reconciliations += 1
        if self.metrics is not None:
            self.metrics.inconsistencies.set(total)
            self.metrics.last_validation.set(report.at)
            if reconcile:
                self.metrics.reconciliations.inc()
        if reconcile:  # counted first: whoever sees the rewritten file sees it counted
            self.bridge.reconcile()
            await self.bridge.flush()
        if total:
            log = _log.warning if reconcile else _log.info
            log("discovery_inconsistent", inconsistencies=total, reconciled=reconcile,
                threshold=self.settings.inconsistency_threshold,
                backends=[r.as_dict() for r in reports if r.inconsistencies])
        return report

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.validate_interval_s)  # the validation period itself
            try:
                await self.validate()
            except Exception:  # a validation that fails now must not end the next ones
                _log.exception("discovery_validation_failed")
