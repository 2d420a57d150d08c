"""``/health``, ``/ready``, ``/status``, ``/metrics`` and ``/raft/status``: what operators and
dashboards read."""

from __future__ import annotations

import os
import time
from typing import Any

from aiohttp import web

from ..errors import ClusterError
from ..model import MemberState
from ..observability import CONTENT_TYPE
from ..quorum import alive_voters, quorum_health, quorum_size
from ..store.base import StateStore
from ..store.handoff import DURABILITY
from .common import importable, reply
from .parts import CONFIG, ELECTION, HANDOFF, MEMBERSHIP, METRICS, NODE, RAFT, STORE, SWIM


async def get_health(request: web.Request) -> web.Response:
    """Liveness: answers as long as the process and its loop run."""
    node = request.app[NODE]
    return reply({
        "alive": True,
        "node_id": request.app[CONFIG].node_id,
        "pid": os.getpid(),
        "role": node.role,
        "uptime_seconds": round(node.uptime_s, 3),
    })


async def get_ready(request: web.Request) -> web.Response:
    """Readiness: 503 until membership and consensus both run."""
    app = request.app
    ready = app[NODE].ready
    body = {"ready": ready, "node_id": app[CONFIG].node_id,
            "membership": app[MEMBERSHIP].ready, "consensus": app[ELECTION].ready}
    return reply(body, status=200 if ready else 503)


async def get_status(request: web.Request) -> web.Response:
    return reply(await status_document(request.app))


async def get_raft_status(request: web.Request) -> web.Response:
    return reply(raft_document(request.app))


async def get_metrics(request: web.Request) -> web.Response:
    request.app[NODE].refresh_metrics()
    return web.Response(body=request.app[METRICS].exposition(), headers={"Content-Type": CONTENT_TYPE})


async def local_work_stats(store: StateStore | None) -> dict[str, int] | None:
    """Work-queue stats from this node's own copy of the state, when it holds one."""
    if store is None:
        return None
    try:
        return await store.read(lambda machine: machine.work_stats())
    except ClusterError:
        return None


async def status_document(app: web.Application) -> dict[str, Any]:
    """The ``GET /status`` document."""
    config, node, membership, election, store = app[CONFIG], app[NODE], app[MEMBERSHIP], app[ELECTION], app[STORE]
    members = membership.members()
    view = election.leadership()
    alive = {n for n, m in members.items() if m.is_alive} | {config.node_id}
    alive_count = alive_voters(config.voters, alive)
    now = time.monotonic()
    counts = {state.value: sum(1 for m in members.values() if m.state is state) for state in MemberState}
    swim = app[SWIM].describe() if app[SWIM] is not None else {}
    raft = raft_document(app)
    work = await local_work_stats(store) or {}
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
        "membership": membership.describe(),
        "consensus": election.describe(),
        "state": None if store is None else store.describe(),
        "durability": {"state_backend": config.state_backend, "acknowledged_writes_survive_on": DURABILITY[config.state_backend],
                       "switched_from": app[HANDOFF].switched_from},
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


def raft_document(app: web.Application) -> dict[str, Any]:
    """``GET /raft/status``: the Raft view in every mode (``raft_enabled: false`` when off)."""
    config = app[CONFIG]
    base = {
        "node_id": config.node_id,
        "raft_enabled": config.raft_enabled,
        "pysyncobj_available": importable("pysyncobj"),
        "consensus_mode": config.consensus_mode.value,
        "config": {"bind_port": config.raft.bind_port},
        "timestamp": time.time(),
    }
    raft = app[RAFT]
    if not config.raft_enabled:
        return {**base, "raft_initialized": False, "cluster_health": "disabled", "leader": None, "term": 0}
    if raft is None:  # a node outside raft_members: it observes the members
        view = app[ELECTION].leadership() if config.leader_backend == "raft" else None
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
