"""The status page (``GET /`` and ``/ui``) and the two reads it needs that no other route serves:
``GET /membership/events`` (the latest membership transitions, with their detection times) and
``GET /raft/queue`` (work items by status or node).

The page is one HTML file, one script and one stylesheet shipped inside the package: no build
step, no CDN, it works offline. It reads the JSON routes every node serves and refreshes itself.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from importlib import resources
from typing import Any

from aiohttp import web

from ..errors import ClusterError
from .common import bad_request, reply
from .parts import CONFIG, MEMBERSHIP, STATE

EVENTS_KEPT = 200
WORK_STATUSES = ("pending", "claimed", "running", "completed", "failed")
_ASSETS = {"status.js": "text/javascript", "status.css": "text/css"}
_EVENTS: web.AppKey[deque[dict[str, Any]]] = web.AppKey("membership_events", deque)
_FOLLOWER: web.AppKey[asyncio.Task[None]] = web.AppKey("membership_events_task", asyncio.Task)


def _asset(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", name).read_bytes()


async def get_root(request: web.Request) -> web.StreamResponse:
    query = request.query_string
    raise web.HTTPFound("/ui" + (f"?{query}" if query else ""))  # the query (e.g. ?refresh_ms=) goes along


async def get_page(request: web.Request) -> web.Response:
    return web.Response(body=_asset("status.html"), content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-cache"})


async def get_asset(request: web.Request) -> web.Response:
    name = request.match_info["asset"]
    if name not in _ASSETS:
        raise web.HTTPNotFound(text='{"error": "no such asset"}', content_type="application/json")
    return web.Response(body=_asset(name), content_type=_ASSETS[name], charset="utf-8",
                        headers={"Cache-Control": "no-cache"})


async def get_events(request: web.Request) -> web.Response:
    """Newest first; ``?limit=`` (default 50, at most what is kept)."""
    limit = _int_query(request, "limit", 50, 1, EVENTS_KEPT)
    events = list(request.app[_EVENTS])[-limit:][::-1]
    return reply({"node_id": request.app[CONFIG].node_id, "events": events, "kept": EVENTS_KEPT,
                  "timestamp": time.time()})


async def get_queue(request: web.Request) -> web.Response:
    """Work items (``?status=``, ``?node_id=``, ``?limit=`` default 100) and the counts by status."""
    state, node_id = request.app[STATE], request.app[CONFIG].node_id
    status = request.query.get("status")
    if status is not None and status not in WORK_STATUSES:
        raise bad_request(f"status: expected one of {list(WORK_STATUSES)}, got {status!r}"[:200])
    limit = _int_query(request, "limit", 100, 1, 10_000)
    filters: dict[str, Any] = {"limit": limit + 1}
    if status is not None:
        filters["status"] = status
    if "node_id" in request.query:
        filters["node_id"] = request.query["node_id"]
    consistent = request.query.get("consistent", "false").lower() in ("1", "true", "yes")
    try:
        items = await state.query("work_list", consistent=consistent, **filters)
        stats = await state.query("work_stats", consistent=False)
    except ClusterError as e:
        return reply({"error": "no_leader", "message": str(e), "leader": state.leader(),
                      "node_id": node_id, "timestamp": time.time()}, status=503)
    return reply({"items": items[:limit], "truncated": len(items) > limit, "stats": stats,
                  "leader": state.leader(), "node_id": node_id, "timestamp": time.time()})


def _int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise bad_request(f"{name}: expected an integer, got {text!r}"[:200]) from None
    if not low <= value <= high:
        raise bad_request(f"{name}: expected {low} to {high}, got {value}")
    return value


async def _follow_events(app: web.Application) -> None:
    kept = app[_EVENTS]
    subscription = app[MEMBERSHIP].subscribe()
    try:
        async for event in subscription:
            kept.append({"at": event.at, "node_id": event.node_id, "kind": event.kind.value,
                         "source": event.source, "after_s": None if event.after_s is None else round(event.after_s, 3)})
    finally:
        subscription.close()


async def _start(app: web.Application) -> None:
    app[_FOLLOWER] = asyncio.create_task(_follow_events(app))


async def _stop(app: web.Application) -> None:
    task = app.get(_FOLLOWER)
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def register(app: web.Application) -> None:
    app[_EVENTS] = deque(maxlen=EVENTS_KEPT)
    app.on_startup.append(_start)
    app.on_cleanup.append(_stop)
    app.router.add_get("/", get_root)
    app.router.add_get("/ui", get_page)
    app.router.add_get("/ui/{asset}", get_asset)
    app.router.add_get("/membership/events", get_events)
    app.router.add_get("/raft/queue", get_queue)
