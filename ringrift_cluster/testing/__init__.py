"""Support for running real local clusters: used by the demo, the tests and the benchmarks."""

from .local_cluster import LocalCluster, LocalNode, free_base_port
from .wait import WaitTimeout, stays_true, wait_until

__all__ = ["LocalCluster", "LocalNode", "WaitTimeout", "free_base_port", "stays_true", "wait_until"]
