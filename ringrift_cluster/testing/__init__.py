"""Support for running real local clusters: used by the demo, the tests and the benchmarks.

The names below load on first use, so a node-side driver (``python -m
ringrift_cluster.testing.drivers.swim``) does not pay for ``LocalCluster``'s imports at start."""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {"LocalCluster": ".local_cluster", "LocalNode": ".local_cluster", "free_base_port": ".local_cluster",
          "WaitTimeout": ".wait", "stays_true": ".wait", "wait_until": ".wait"}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name], __name__), name)


__all__ = ["LocalCluster", "LocalNode", "WaitTimeout", "free_base_port", "stays_true", "wait_until"]
