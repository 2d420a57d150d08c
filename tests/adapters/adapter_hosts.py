"""A host object with only the attributes of the legacy contract (§1), for the adapter tests."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.leader_election import LeaderElectionMixin, QuorumHealthLevel
from adapters.peer_manager import PeerManagerMixin

H, D, M, L = (QuorumHealthLevel.HEALTHY, QuorumHealthLevel.DEGRADED, QuorumHealthLevel.MINIMUM,
              QuorumHealthLevel.LOST)

# Every host attribute the adapters may read: legacy-contract.md §1, plus what the host's own
# leader_election.py / peer_manager.py (and their base class) read from the orchestrator.
CONTRACT_ATTRS = frozenset({
    "node_id", "peers", "peers_lock", "db_path", "bootstrap_seeds", "verbose", "role", "leader_id",
    "leader_lease_id", "leader_lease_expires", "voter_node_ids", "voter_grant_leader_id",
    "voter_grant_lease_id", "voter_grant_expires", "_lease_epoch",
    # read by the host's modules
    "last_lease_renewal", "is_peer_alive_hybrid", "self_info", "_raft_initialized", "_raft_work_queue",
    "advertise_host", "_start_time", "_preferred_leader_id", "_forced_leader_override", "_save_state",
    "_safe_emit_event", "_emit_event", "emit_event", "publish_event", "_broadcast_leader_to_all_peers",
    "cluster_epoch", "_leadership_sm", "_peer_reputations", "_p2p_sync_results", "_nat_blocked_peers",
})
# What the adapters and the bridge keep on the host object themselves.
OWN_ATTRS = frozenset({"_ringrift_pm_state", "_ringrift_le_state", "_ringrift_cluster_attachment"})


@dataclass
class PeerInfo:
    """The host's NodeInfo as the adapters see it: an id, an address, ``is_alive()``."""

    node_id: str
    host: str
    port: int
    tailscale_ip: str | None = None
    alive: bool = True
    nat_blocked: bool = False
    leader_id: str | None = None  # the leader this peer last reported (the host's NodeInfo field)

    def is_alive(self) -> bool:
        return self.alive


class LegacyHost(PeerManagerMixin, LeaderElectionMixin):
    """The host's orchestrator reduced to the §1 attributes. Records every instance attribute
    read, so a test can prove the adapters read nothing else."""

    def __init__(self, db_path: Path, node_id: str = "node-a", *, voters: list[str] | None = None,
                 seeds: list[str] | None = None) -> None:
        self._reads: set[str] = set()
        self.node_id = node_id
        self.peers: dict[str, Any] = {}
        self.peers_lock = threading.RLock()
        self.db_path = str(db_path)
        self.bootstrap_seeds = list(seeds or [])
        self.verbose = False
        self.role = "follower"
        self.leader_id: str | None = None
        self.leader_lease_id = ""
        self.leader_lease_expires = 0.0
        self.voter_node_ids = list(voters or [])
        self.voter_grant_leader_id: str | None = None
        self.voter_grant_lease_id: str | None = None
        self.voter_grant_expires = 0.0
        self._lease_epoch = 0

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("__") and name != "_reads" and not hasattr(type(self), name):
            object.__getattribute__(self, "_reads").add(name)
        return object.__getattribute__(self, name)

    def add_peer(self, node_id: str, host: str, port: int, *, alive: bool = True, key: str | None = None,
                 **extra: Any) -> PeerInfo:
        info = PeerInfo(node_id, host, port, alive=alive, **extra)
        with self.peers_lock:
            self.peers[key or node_id] = info
        return info

    def set_alive(self, node_id: str, alive: bool) -> None:
        with self.peers_lock:
            self.peers[node_id].alive = alive

    def foreign_reads(self) -> set[str]:
        return set(object.__getattribute__(self, "_reads")) - CONTRACT_ATTRS - OWN_ATTRS

    def lease(self, leader: str, ttl: float = 60.0) -> None:
        self.leader_id = leader
        self.leader_lease_id = f"{leader}_{int(time.time())}_deadbeef"
        self.leader_lease_expires = time.time() + ttl
        self.role = "leader" if leader == self.node_id else "follower"
