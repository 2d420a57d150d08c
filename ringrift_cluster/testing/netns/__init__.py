"""Multi-host clusters on one Linux machine: one network namespace per node, real packet drops.

Each node is a Linux network namespace with its own address in a private /24, joined to a bridge
in the root namespace by a veth pair, and runs a real ``python -m ringrift_cluster run`` process
(``ip netns exec <ns> ...``). The test process reaches every node through the bridge, which has
an address in the same subnet. Every host uses the same ports (8770 API, 7947 SWIM, 4321 Raft).

Network faults are nftables rules in a table ``inet rrfault`` inside the *receiving* namespace
(an ``input`` hook matching the sender's address): a packet from A to B leaves A, crosses the
bridge and vanishes at B, exactly like a lossy or cut wire. There is no FIN, no RST and no ICMP,
and the sender gets no local error. Dropping in the sender's ``output`` hook instead would make
the kernel return EPERM to UDP senders (SWIM) at once: a local error, not a lost packet. The
observer (the bridge address) is never matched, so the test can always read every node's view.

Names: every resource of one cluster carries the tag ``rr<pid base36, 5><seq>``: the bridge
``<tag>br``, host-side veths ``<tag>h<i>``, namespaces ``<tag>-<node id>``. The owner's pid and
start time are recorded in ``/run/ringrift-faults/<tag>.json`` before anything is created, so a
later run can tell leftovers of a crashed run (owner gone) from a parallel live run and sweep them
(:func:`sweep_stale`, called whenever a cluster is created).

Needs root (CAP_NET_ADMIN + CAP_SYS_ADMIN), ``ip`` (iproute2) and ``nft``. Where namespaces are
not available, :class:`~ringrift_cluster.testing.LocalCluster` covers the process faults
(SIGKILL / SIGTERM / SIGSTOP / restart) on loopback, but not network faults.
"""

from .cluster import NetnsCluster, NetnsNode
from .network import NetnsNetwork
from .registry import (API_PORT, RAFT_PORT, REGISTRY, SWIM_PORT, TABLE, NetnsError, netns_unavailable_reason,
                       sweep_stale)

__all__ = ["API_PORT", "RAFT_PORT", "REGISTRY", "SWIM_PORT", "TABLE", "NetnsCluster", "NetnsError", "NetnsNetwork",
           "NetnsNode", "netns_unavailable_reason", "sweep_stale"]
