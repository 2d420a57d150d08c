"""Drop-in replacements for two of the host's orchestrator mixins (not an installed package).

``adapters.peer_manager`` and ``adapters.leader_election`` keep the host's module names and
public surface; ``ringrift_cluster.host_bridge.attach(host, node)`` backs them by a ClusterNode.
"""
