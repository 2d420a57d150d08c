"""ClusterConfig: one frozen object built from defaults < cluster YAML < RINGRIFT_* env < CLI.

``settings.py`` holds every section, default and preset; ``rules.py`` every rule on the values;
``hostfile.py`` reads the host's ``distributed_hosts.yaml``; ``sources.py`` the layers;
``load.py`` builds the config and resolves the modes once into a ``Plan`` (``plan.py``).

The cluster YAML is the host's ``distributed_hosts.yaml``: ``hosts``, ``p2p_voters``,
``raft_members``, ``coordinator_nodes``, ``preferred_leader``. Our own settings live under the
``ringrift_cluster`` key and are checked strictly.
"""

from .hostfile import HOST_ENTRY_KEYS
from .load import load_config
from .plan import ConsensusMode, ElectionBackend, MembershipBackend, MembershipMode, Plan, StoreBackend
from .rules import validate_raft_settings, validate_swim_settings
from .settings import (
    DEFAULT_API_PORT, DEFAULT_RAFT_PORT, DEFAULT_SWIM_PORT, DISCOVERY_BACKENDS, HOST_FILE_KEYS, LOG_FORMATS,
    LOG_LEVELS, LOOPBACK, MAX_COUNT, MAX_DURATION_S, MAX_LEASE_S, PRESETS, RAFT_DURABILITY, SECTION, SECTIONS,
    SINGLE_NODE_ID, SWIM_TRANSPORTS, TOP_SETTINGS, ApiSettings, ClusterConfig, DiscoverySettings, ElectionSettings,
    HeartbeatSettings, HostConfig, RaftSettings, StateSettings, SwimSettings,
)
from .sources import ENV_FILE_VARS, ENV_VARS

__all__ = [
    "DEFAULT_API_PORT", "DEFAULT_RAFT_PORT", "DEFAULT_SWIM_PORT", "DISCOVERY_BACKENDS", "ENV_FILE_VARS", "ENV_VARS",
    "HOST_ENTRY_KEYS", "HOST_FILE_KEYS", "LOG_FORMATS", "LOG_LEVELS", "LOOPBACK", "MAX_COUNT", "MAX_DURATION_S",
    "MAX_LEASE_S", "PRESETS", "RAFT_DURABILITY", "SECTION", "SECTIONS", "SINGLE_NODE_ID", "SWIM_TRANSPORTS",
    "TOP_SETTINGS", "ApiSettings", "ClusterConfig", "ConsensusMode", "DiscoverySettings", "ElectionBackend",
    "ElectionSettings", "HeartbeatSettings", "HostConfig", "MembershipBackend", "MembershipMode", "Plan",
    "RaftSettings", "StateSettings", "StoreBackend", "SwimSettings", "load_config", "validate_raft_settings",
    "validate_swim_settings",
]
