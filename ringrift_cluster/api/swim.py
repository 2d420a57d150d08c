"""``/swim/status``, ``/swim/members`` and ``/swim/compare``, in every membership mode (with
``swim_enabled: false`` when SWIM is off). Member ids are node ids, never addresses."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from ..membership.base import Comparison
from .common import importable, reply
from .parts import CONFIG, MEMBERSHIP, SWIM


def _described(app: web.Application) -> dict[str, Any]:
    swim = app[SWIM]
    return swim.describe() if swim is not None else {}


async def get_swim_status(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    swim = _described(request.app)
    settings = config.swim
    engine_config = swim.get("config") or {
        "bind_port": settings.bind_port, "transport": settings.transport,
        "ping_interval": settings.protocol_period_s, "suspicion_timeout": settings.suspicion_timeout_s,
        "failure_timeout": None,
    }
    extra = {k: v for k, v in swim.items() if k not in ("members", "config", "node_id", "name")}
    return reply({
        **extra,
        "node_id": config.node_id,
        "swim_enabled": config.swim_enabled,
        "swim_available": importable("swim"),
        "swim_started": bool(swim.get("swim_started")),
        "membership_mode": config.membership_mode.value,
        "config": engine_config,
        "timestamp": time.time(),
    })


async def get_swim_members(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    swim = _described(request.app)
    return reply({
        "node_id": config.node_id,
        "swim_enabled": config.swim_enabled,
        "swim_started": bool(swim.get("swim_started")),
        "members": swim.get("members", []),
        "alive_count": swim.get("alive_count", 0),
        "suspected_count": swim.get("suspected_count", 0),
        "failed_count": swim.get("failed_count", 0),
        "timestamp": time.time(),
    })


async def get_swim_compare(request: web.Request) -> web.Response:
    """Hybrid mode's pilot: when each source noticed each death, and where they disagreed."""
    config, membership = request.app[CONFIG], request.app[MEMBERSHIP]
    if not isinstance(membership, Comparison):
        return reply({"node_id": config.node_id, "enabled": False,
                      "membership_mode": config.membership_mode.value,
                      "reason": "the comparison runs in hybrid membership mode", "timestamp": time.time()})
    return reply({"node_id": config.node_id, "enabled": True,
                  "membership_mode": config.membership_mode.value, **membership.compare(), "timestamp": time.time()})


def register(app: web.Application) -> None:
    app.router.add_get("/swim/status", get_swim_status)
    app.router.add_get("/swim/members", get_swim_members)
    app.router.add_get("/swim/compare", get_swim_compare)
