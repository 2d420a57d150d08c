"""Discovery's metric families (on the node's registry); the bridge and the validator feed them."""

from __future__ import annotations

from typing import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge

from .base import HEALTHY, UNHEALTHY, Target


class DiscoveryMetrics:
    """The discovery families, on the node's registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry or CollectorRegistry()
        self.targets = Gauge("ringrift_discovery_targets", "Targets this node lists, by health.", ["health"], registry=r)
        self.inconsistencies = Gauge("ringrift_discovery_inconsistencies",
                                     "Differences found by the last validation (missing, stale, altered, unreadable).",
                                     registry=r)
        self.reconciliations = Counter("ringrift_discovery_reconciliations_total",
                                       "Times discovery was rewritten from membership.", registry=r)
        self.last_validation = Gauge("ringrift_discovery_last_validation_timestamp_seconds",
                                     "Unix time of the last validation.", registry=r)
        self.write_failures = Counter("ringrift_discovery_write_failures_total",
                                      "Discovery writes that failed (retried), by backend.", ["backend"], registry=r)
        self.flaps_damped = Counter("ringrift_discovery_flaps_damped_total",
                                    "Suspicions refuted inside the damping window (never reached discovery).",
                                    registry=r)
        for health in (HEALTHY, UNHEALTHY):
            self.targets.labels(health=health).set(0)

    def count_targets(self, targets: Iterable[Target]) -> None:
        healthy = unhealthy = 0
        for target in targets:
            healthy += target.healthy
            unhealthy += not target.healthy
        self.targets.labels(health=HEALTHY).set(healthy)
        self.targets.labels(health=UNHEALTHY).set(unhealthy)


__all__ = ["DiscoveryMetrics"]
