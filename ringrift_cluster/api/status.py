"""``/health``, ``/ready``, ``/status``, ``/metrics`` and ``/raft/status``: what operators and
dashboards read."""

from __future__ import annotations

import importlib.util
import os
import time
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..quorum import alive_voters, quorum_health, quorum_size
from ..errors import ClusterError
from ..model import MemberState
from ..observability import CONTENT_TYPE
from ..store.handoff import DURABILITY
from .common import NODE, reply

if TYPE_CHECKING:
    from ..node import ClusterNode


@lru_cache(maxsize=None)
def importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


async def get_health(request: web.Request) -> web.Response:
    """Liveness: answers as long as the process and its loop run."""
    node = request.app[NODE]
    return reply({
        "alive": True,
        "node_id": node.config.node_id,
        "pid": os.getpid(),
        "role": node.role,
        "uptime_seconds": round(node.uptime_s, 3),
    })


async def get_ready(request: web.Request) -> web.Response:
    """Readiness: 503 until membership and consensus both run."""
    node = request.app[NODE]
    body = {"ready": node.ready, "node_id": node.config.node_id,
            "membership": node.membership.ready, "consensus": node.consensus.ready}
    return reply(body, status=200 if node.ready else 503)


async def get_status(request: web.Request) -> web.Response:
    return reply(await status_document(request.app[NODE]))


async def get_raft_status(request: web.Request) -> web.Response:
    return reply(raft_document(request.app[NODE]))


async def get_metrics(request: web.Request) -> web.Response:
    node = request.app[NODE]
    node.refresh_metrics()
    return web.Response(body=node.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})


async def local_work_stats(node: "ClusterNode") -> dict[str, int] | None:
    """Work-queue stats from this node's own copy of the state, when it holds one."""
    if node.store is None:
        return None
    try:
        return await node.store.read(lambda machine: machine.work_stats())
    except ClusterError:
        return None


async def status_document(node: "ClusterNode") -> dict[str, Any]:
    """The ``GET /status`` document."""
    config = node.config
    members = node.membership.members()
    view = node.consensus.leadership()
    alive = {n for n, m in members.items() if m.is_alive} | {config.node_id}
    alive_count = alive_voters(config.voters, alive)
    now = time.monotonic()
    counts = {state.value: sum(1 for m in members.values() if m.state is state) for state in MemberState}
    swim = node.swim.describe() if getattr(node, "swim", None) is not None else {}
    raft = raft_document(node)
    work = await local_work_stats(node) or {}
    return {
        "node_id": config.node_id,
        "role": node.role,
        "leader_id": view.leader,
        "leader_term": view.term,
        "lease_expires": view.lease_expires,
        "fence_token": view.fence_token,
        "voters": list(config.voters),
        "quorum": {
            "required": quorum_size(len(config.voters)),
            "alive_voters": alive_count,
            "total_voters": len(config.voters),
            "health": quorum_health(alive_count, len(config.voters)).value,
        },
        "peers": {
            node_id: {
                "state": m.state.value,
                "is_alive": m.is_alive,
                "seconds_since_heartbeat": round(now - m.last_seen, 3) if m.last_seen else None,
                "host": m.host,
                "port": m.api_port,
                "role": m.role,
            }
            for node_id, m in sorted(members.items())
        },
        "peer_counts": counts,
        "membership": node.membership.describe(),
        "consensus": node.consensus.describe(),
        "state": None if node.store is None else node.store.describe(),
        "durability": {"state_backend": config.state_backend, "acknowledged_writes_survive_on": DURABILITY[config.state_backend],
                       "switched_from": node.handoff.switched_from},
        "swim_raft": {
            "membership_mode": config.membership_mode.value,
            "consensus_mode": config.consensus_mode.value,
            "swim": {
                "enabled": config.swim_enabled,
                "available": importable("swim"),
                "started": bool(swim.get("swim_started")),
                "alive_count": swim.get("alive_count", 0),
                "suspected_count": swim.get("suspected_count", 0),
                "failed_count": swim.get("failed_count", 0),
            },
            "raft": {
                "enabled": config.raft_enabled,
                "available": raft["pysyncobj_available"],
                "initialized": raft["raft_initialized"],
                "is_leader": raft.get("is_leader", False),
                "leader": raft.get("leader"),
                "leader_address": raft.get("leader_address"),
                "work_queue": {k: work.get(k, 0) for k in ("pending", "claimed", "completed")},
            },
        },
        "version": node.version,
        "uptime_seconds": round(node.uptime_s, 3),
        "timestamp": time.time(),
    }


def raft_document(node: "ClusterNode") -> dict[str, Any]:
    """``GET /raft/status``: the Raft view in every mode (``raft_enabled: false`` when off)."""
    config = node.config
    base = {
        "node_id": config.node_id,
        "raft_enabled": config.raft_enabled,
        "pysyncobj_available": importable("pysyncobj"),
        "consensus_mode": config.consensus_mode.value,
        "config": {"bind_port": config.raft.bind_port},
        "timestamp": time.time(),
    }
    raft = node.raft
    if not config.raft_enabled:
        return {**base, "raft_initialized": False, "cluster_health": "disabled", "leader": None, "term": 0}
    if raft is None:  # a node outside raft_members: it observes the members
        view = node.consensus.leadership() if config.leader_backend == "raft" else None
        return {**base, "raft_initialized": False, "raft_member": False,
                "cluster_health": "healthy" if view and view.leader else "unavailable",
                "leader": view.leader if view else None, "term": view.term if view else 0}
    described = raft.describe()
    leader = described.get("leader")
    host = config.hosts.get(leader) if leader else None
    return {**described, **base, "raft_member": True,
            "raft_initialized": bool(described.get("raft_initialized", raft.ready)),
            "leader_address": host.api_url if host else None}


def register(app: web.Application) -> None:
    app.router.add_get("/health", get_health)
    app.router.add_get("/ready", get_ready)
    app.router.add_get("/status", get_status)
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/raft/status", get_raft_status)
