"""Where the replicated state lives in each mode, and the one facade callers use."""

from .base import StateStore
from .facade import ClusterState

__all__ = ["ClusterState", "StateStore"]
