"""``/swim/status``, ``/swim/members`` and ``/swim/compare``, in every membership mode (with
``swim_enabled: false`` when SWIM is off). Member ids are node ids, never addresses."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .common import NODE, reply
from .status import importable

if TYPE_CHECKING:
    from ..node import ClusterNode


def _described(node: "ClusterNode") -> dict[str, Any]:
    return node.swim.describe() if node.swim is not None else {}


async def get_swim_status(request: web.Request) -> web.Response:
    node = request.app[NODE]
    swim = _described(node)
    settings = node.config.swim
    config = swim.get("config") or {
        "bind_port": settings.bind_port, "transport": settings.transport,
        "ping_interval": settings.protocol_period_s, "suspicion_timeout": settings.suspicion_timeout_s,
        "failure_timeout": None,
    }
    extra = {k: v for k, v in swim.items() if k not in ("members", "config", "node_id", "name")}
    return reply({
        **extra,
        "node_id": node.config.node_id,
        "swim_enabled": node.config.swim_enabled,
        "swim_available": importable("swim"),
        "swim_started": bool(swim.get("swim_started")),
        "membership_mode": node.config.membership_mode.value,
        "config": config,
        "timestamp": time.time(),
    })


async def get_swim_members(request: web.Request) -> web.Response:
    node = request.app[NODE]
    swim = _described(node)
    return reply({
        "node_id": node.config.node_id,
        "swim_enabled": node.config.swim_enabled,
        "swim_started": bool(swim.get("swim_started")),
        "members": swim.get("members", []),
        "alive_count": swim.get("alive_count", 0),
        "suspected_count": swim.get("suspected_count", 0),
        "failed_count": swim.get("failed_count", 0),
        "timestamp": time.time(),
    })


async def get_swim_compare(request: web.Request) -> web.Response:
    """Hybrid mode's pilot: when each source noticed each death, and where they disagreed."""
    node = request.app[NODE]
    compare = getattr(node.membership, "compare", None)
    if compare is None:
        return reply({"node_id": node.config.node_id, "enabled": False,
                      "membership_mode": node.config.membership_mode.value,
                      "reason": "the comparison runs in hybrid membership mode", "timestamp": time.time()})
    return reply({"node_id": node.config.node_id, "enabled": True,
                  "membership_mode": node.config.membership_mode.value, **compare(), "timestamp": time.time()})


def register(app: web.Application) -> None:
    app.router.add_get("/swim/status", get_swim_status)
    app.router.add_get("/swim/members", get_swim_members)
    app.router.add_get("/swim/compare", get_swim_compare)
