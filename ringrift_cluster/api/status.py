"""``/health``, ``/ready``, ``/status`` and ``/metrics``: what operators and dashboards read."""

from __future__ import annotations

import os

from aiohttp import web

from ..observability import CONTENT_TYPE
from .common import NODE, reply


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
    return reply(request.app[NODE].status())


async def get_metrics(request: web.Request) -> web.Response:
    node = request.app[NODE]
    node.refresh_metrics()
    return web.Response(body=node.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})


def register(app: web.Application) -> None:
    app.router.add_get("/health", get_health)
    app.router.add_get("/ready", get_ready)
    app.router.add_get("/status", get_status)
    app.router.add_get("/metrics", get_metrics)


