"""``GET /sd/targets`` (Prometheus ``http_sd_config``) and ``GET /sd/status``."""

from __future__ import annotations

import json

from aiohttp import web

from .common import reply
from .parts import DISCOVERY


async def get_targets(request: web.Request) -> web.Response:
    """Every member this node sees alive, one target group each, as Prometheus's HTTP SD reads it."""
    http_sd = request.app[DISCOVERY].http_sd
    if http_sd is None:
        raise web.HTTPNotFound(text=json.dumps({"error": "http_sd is not among discovery.backends on this node"}),
                               content_type="application/json")
    return reply(http_sd.document())


async def get_status(request: web.Request) -> web.Response:
    return reply(request.app[DISCOVERY].describe())


def register(app: web.Application) -> None:
    app.router.add_get("/sd/targets", get_targets)
    app.router.add_get("/sd/status", get_status)
