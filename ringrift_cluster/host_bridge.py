"""The one hook by which a host hands a running ClusterNode to the legacy adapters.

The host composes its orchestrator from mixins; two of them are ours (``adapters/peer_manager.py``
and ``adapters/leader_election.py``). Without a node they work from the host's own attributes
(``peers``, ``voter_node_ids``, ``leader_id``, ...). To back them by ringrift-cluster, the host
makes one call::

    from ringrift_cluster.host_bridge import attach

    node = ClusterNode(load_config(...))
    attach(orchestrator, node)      # before or after ``await node.start()``; attaching first
    await node.start()              # means the adapters also count the very first election

From then on the adapters read alive peers and liveness from ``node.membership``, the leader
from ``node.consensus.leadership()``, the voters from ``node.config`` and write metrics into
``node.metrics``. ``detach(orchestrator)`` returns them to the host's attributes (a rollback
without restarting the host object).

The remaining functions are what both adapters read through; they take the host object so that
the same code serves a host with or without a node:

- ``attached_node(host)``: the node, or None;
- ``alive_peer_ids(host)``: node ids of the peers alive now (never this node, never an address);
- ``to_node_id(host, value)``: a node id for ``value``, mapping an address (``host:port``, a SWIM
  or Raft address, a bare IP) to the node it belongs to, or None when it maps to no node;
- ``drain_leadership_events(host)``: the node's leadership events since the last call;
- ``split_address(value)``: ``"h:p"`` / ``"[v6]:p"`` / ``"h"`` as (host, port or None);
- ``leader_reports(host)``: what this node and each alive member say about leadership (who they
  name, in which term, whether they claim it themselves), for split-brain detection;
- ``raft_leads(host)``: whether the node's leader comes from its own Raft replica;
- ``step_down(host, reason)``: ask the node's consensus backend to give up leadership.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from .model import LeadershipEvent, node_id_problem

if TYPE_CHECKING:  # importing the node pulls in aiohttp; the hook itself only needs its shape
    from .events import Subscription
    from .node import ClusterNode

__all__ = ["attach", "detach", "attached_node", "alive_peer_ids", "to_node_id", "split_address",
           "drain_leadership_events", "LeaderReport", "leader_reports", "raft_leads", "step_down"]

_ATTR = "_ringrift_cluster_attachment"
_log = logging.getLogger("ringrift.host_bridge")


@dataclass
class _Attachment:
    node: ClusterNode
    events: Subscription[LeadershipEvent] | None
    loop: asyncio.AbstractEventLoop | None = None  # the loop attach() ran in, if any
    tasks: set[Any] = field(default_factory=set)  # step-downs running (kept referenced)


def attach(host: Any, node: ClusterNode) -> None:
    """Back the adapters mixed into ``host`` by ``node`` (replacing any node attached before).

    ``node`` must be this host's node: when the host has a ``node_id`` it must equal
    ``node.config.node_id``. Raises TypeError for something that is not a ClusterNode-shaped
    object and ValueError for a node of another id.
    """
    for path in ("config", "membership", "consensus", "metrics"):
        if not hasattr(node, path):
            raise TypeError(f"attach(host, node): node has no {path!r}; expected a ringrift_cluster ClusterNode")
    node_id = node.config.node_id
    host_id = getattr(host, "node_id", None)
    if host_id is not None and host_id != node_id:
        raise ValueError(f"attach(host, node): host.node_id is {host_id!r} but the node is {node_id!r}")
    detach(host)
    # Subscribing now (not at the adapters' first call) means no election after attach() is missed.
    events = node.consensus.subscribe() if hasattr(node.consensus, "subscribe") else None
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    try:
        setattr(host, _ATTR, _Attachment(node, events, loop))
    except AttributeError as e:  # a host class with __slots__ and no __dict__
        if events is not None:
            events.close()
        raise TypeError(f"attach(host, node): cannot store the node on {type(host).__name__}: {e}") from e


def detach(host: Any) -> ClusterNode | None:
    """Return the adapters of ``host`` to the host's own attributes; returns the node detached."""
    attachment: _Attachment | None = getattr(host, _ATTR, None)
    if attachment is None:
        return None
    if attachment.events is not None:
        attachment.events.close()
    with contextlib.suppress(AttributeError):
        delattr(host, _ATTR)
    return attachment.node


def attached_node(host: Any) -> ClusterNode | None:
    """The node attached to ``host``, or None."""
    attachment: _Attachment | None = getattr(host, _ATTR, None)
    return attachment.node if attachment is not None else None


def drain_leadership_events(host: Any) -> list[LeadershipEvent]:
    """The attached node's leadership events not yet drained (empty without a node). Never blocks.

    The subscription is bounded: a host that never drains loses the oldest events, not memory.
    """
    attachment: _Attachment | None = getattr(host, _ATTR, None)
    if attachment is None or attachment.events is None:
        return []
    events, ended = attachment.events.drain_nowait()
    if ended:  # the node stopped: its hub closed this subscription
        attachment.events = None
    return events


# -- What the adapters read -------------------------------------------------------------------


def alive_peer_ids(host: Any) -> frozenset[str]:
    """Node ids of the peers alive now, never this node and never an address.

    With a node: the members its membership backend reports alive (suspect counts as alive, as it
    does for quorum). Without: the host's ``peers`` whose ``is_alive()`` is true, read under
    ``peers_lock``, keys that are addresses mapped to node ids (and dropped when they map to none).
    """
    self_id = getattr(host, "node_id", None)
    node = attached_node(host)
    if node is not None:
        return frozenset(n for n, m in node.membership.members().items() if m.is_alive and n != self_id)
    alive: set[str] = set()
    for key, info in _host_peers(host):
        if not _info_alive(info):
            continue
        node_id = _peer_key_to_id(host, key, info)
        if node_id is not None and node_id != self_id:
            alive.add(node_id)
    return frozenset(alive)


def to_node_id(host: Any, value: object) -> str | None:
    """``value`` as a node id, or None when it is neither a node id nor the address of one node.

    An address (``host:port``, ``[v6]:port`` or a bare IP) is looked up among the attached node's
    configured hosts (API, SWIM and Raft ports and the tailscale address) and its members, or,
    without a node, among the host's ``peers``. A bare IP maps only when exactly one node has it.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    if node_id_problem(value) is None and not _is_ip(value):
        return value
    address, port = split_address(value)
    if not address:
        return None
    matches = set()
    for node_id, addresses, ports in _known_addresses(host):
        if address in addresses and (port is None or port in ports):
            matches.add(node_id)
    return matches.pop() if len(matches) == 1 else None


def split_address(value: str) -> tuple[str, int | None]:
    """``"h:p"`` / ``"[v6]:p"`` / ``"h"`` → (host lower-cased, port or None). ("", None) if malformed."""
    value = value.strip()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return "", None
        address, rest = value[1:end], value[end + 1:]
        if not rest:
            return address.lower(), None
        if not rest.startswith(":"):
            return "", None
        port_text = rest[1:]
    elif value.count(":") == 1:
        address, port_text = value.split(":")
    else:  # a bare host, or a bare IPv6 address
        return value.lower(), None
    try:
        port = int(port_text)
    except ValueError:
        return "", None
    if not address or not 0 < port < 65536:
        return "", None
    return address.lower(), port


@dataclass(frozen=True)
class LeaderReport:
    """What one node says about leadership, as the attached node knows it right now."""

    node_id: str
    leader: str | None  # the leader it names (None: it knows none)
    term: int | None  # the term / epoch of that leader, when reported
    claims: bool  # it says it leads (role leader, naming itself)
    lease_expires: float | None  # wall clock; known for this node's own lease only
    heard_at: float  # wall clock at which the report was current


def leader_reports(host: Any) -> dict[str, LeaderReport]:
    """This node's own view and every alive member's last report, by node id ({} without a node).

    A member's report comes from what membership carries: heartbeats (``http``, ``hybrid``) carry
    the sender's role, leader and term; SWIM carries none, so under ``swim`` only this node's own
    view is known.
    """
    node = attached_node(host)
    if node is None:
        return {}
    now, mono = time.time(), time.monotonic()
    me = node.config.node_id
    view = node.consensus.leadership()
    out = {me: LeaderReport(me, view.leader, view.term, view.is_self,
                            view.lease_expires if view.is_self else None, now)}
    for node_id, member in node.membership.members().items():
        meta = member.meta or {}
        if node_id == me or not member.is_alive or "leader_id" not in meta:
            continue
        leader, term = meta.get("leader_id"), meta.get("leader_term")
        leader = leader if isinstance(leader, str) and node_id_problem(leader) is None else None
        heard = now - (mono - member.last_seen) if member.last_seen else now
        out[node_id] = LeaderReport(node_id, leader, term if isinstance(term, int) else None,
                                    member.role == "leader" and leader == node_id, None, heard)
    return out


def raft_leads(host: Any) -> bool:
    """True when the attached node's leader is decided by its own Raft replica (raft mode, this
    node a Raft member, the replica started)."""
    node = attached_node(host)
    raft = getattr(node, "raft", None) if node is not None else None
    return raft is not None and node.consensus is raft and bool(raft.ready)


def step_down(host: Any, reason: str) -> bool:
    """Ask the attached node's consensus backend to give up leadership; True when it was asked.

    Only the backend changes leadership: the Bully backend steps down (hands its lease back to the
    voters); a Raft replica has no step-down (Raft itself keeps one leader per term), so nothing
    is asked. The step-down runs on the node's loop; this call never blocks.
    """
    attachment: _Attachment | None = getattr(host, _ATTR, None)
    if attachment is None:
        return False
    node = attachment.node
    backend = node.consensus
    action = getattr(backend, "step_down", None)
    if not callable(action) and backend is getattr(node, "bully", None):
        action = getattr(backend, "_step_down", None)  # BullyElection has no public step-down yet
    if not callable(action):
        _log.warning("step_down(%s): the %s backend cannot step down", reason, getattr(backend, "name", "?"))
        return False
    result = action(reason)
    if not asyncio.iscoroutine(result):
        return True
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    loop = running or attachment.loop
    if loop is None or loop.is_closed():
        result.close()
        _log.warning("step_down(%s): no event loop to run it on", reason)
        return False
    future: Any
    if loop is running:
        future = loop.create_task(result, name="adapter-step-down")
    else:  # called from another thread: run it on the node's loop
        future = asyncio.run_coroutine_threadsafe(result, loop)
    attachment.tasks.add(future)
    future.add_done_callback(attachment.tasks.discard)
    return True


# -- Internals --------------------------------------------------------------------------------


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


@contextlib.contextmanager
def _peers_locked(host: Any) -> Iterator[None]:
    lock = getattr(host, "peers_lock", None)
    if lock is None:
        yield
    else:
        with lock:
            yield


def _host_peers(host: Any) -> list[tuple[Any, Any]]:
    with _peers_locked(host):
        peers = getattr(host, "peers", None) or {}
        return list(peers.items())


def _info_alive(info: Any) -> bool:
    check = getattr(info, "is_alive", None)
    if callable(check):
        return bool(check())
    return bool(check)


def _peer_key_to_id(host: Any, key: Any, info: Any) -> str | None:
    if isinstance(key, str) and node_id_problem(key) is None and not _is_ip(key):
        return key
    reported = getattr(info, "node_id", None)  # a peer stored under its address: use its own id
    if isinstance(reported, str) and node_id_problem(reported) is None and not _is_ip(reported):
        return reported
    return None


def _known_addresses(host: Any) -> Iterable[tuple[str, set[str], set[int]]]:
    """(node id, its addresses, its ports) for every node this host can name."""
    node = attached_node(host)
    if node is not None:
        for node_id, h in node.config.hosts.items():
            addresses = {a.lower() for a in (h.address, h.tailscale_ip) if a}
            yield node_id, addresses, {h.api_port, h.swim_port, h.raft_port}
        for node_id, m in node.membership.members().items():
            if m.host:
                yield node_id, {m.host.lower()}, {m.api_port} if m.api_port else set()
        return
    for key, info in _host_peers(host):
        node_id = _peer_key_to_id(host, key, info)
        if node_id is None:
            continue
        addresses = {str(a).lower() for a in (getattr(info, "host", ""), getattr(info, "tailscale_ip", ""),
                                               getattr(info, "reported_host", "")) if a}
        port = getattr(info, "port", None)
        yield node_id, addresses, {port} if isinstance(port, int) else set()
