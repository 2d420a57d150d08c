"""The Raft backend of the election (pysyncobj): ``RaftConsensus`` for the nodes in
``raft_members``, ``RaftObserver`` for the others. ``bridge.py`` is the one module that imports
pysyncobj and the one that crosses its threads."""

from .consensus import RaftConsensus
from .snapshots import default_restore
from .observer import RaftObserver

__all__ = ["RaftConsensus", "RaftObserver", "default_restore"]
