"""The aiohttp application factory: middlewares and one route module per family."""

from __future__ import annotations

import hmac
from typing import Awaitable, Callable

import structlog
from aiohttp import web

from . import discovery, election, heartbeat, page, state, status, swim
from .parts import CONFIG, Parts, install

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_OPEN_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_log = structlog.get_logger("ringrift.api")


def create_app(parts: Parts) -> web.Application:
    """Build the app over a node's roles. Every route family registers its own routes."""
    app = web.Application(
        client_max_size=parts.config.api.max_body_bytes,
        middlewares=[_node_header, _errors_as_json, _auth],
    )
    install(app, parts)
    for family in (status, heartbeat, election, state, swim, page, discovery):
        family.register(app)
    return app


@web.middleware
async def _node_header(request: web.Request, handler: Handler) -> web.StreamResponse:
    node_id = request.app[CONFIG].node_id
    try:
        response = await handler(request)
    except web.HTTPException as e:
        e.headers["X-Node-ID"] = node_id
        raise
    response.headers["X-Node-ID"] = node_id
    return response


@web.middleware
async def _errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as JSON with a reason; an unexpected one as a logged 500."""
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.content_type == "application/json" or e.status < 400:
            raise
        reason = e.reason if e.status != 413 else f"body too large (limit {request.app[CONFIG].api.max_body_bytes} bytes)"
        # A new response, not type(e)(...): some exceptions need constructor arguments (405's
        # method and allowed_methods), and their own headers (Allow) must go out with it.
        headers = [(k, v) for k, v in e.headers.items() if k.lower() not in ("content-type", "content-length")]
        return web.json_response({"error": reason}, status=e.status, headers=headers)
    except Exception:
        _log.exception("request_failed", method=request.method, path=request.path)
        return web.json_response({"error": "internal error"}, status=500)


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Mutating requests need the shared cluster token (when one is configured)."""
    token = request.app[CONFIG].auth_token
    if token and request.method not in _OPEN_METHODS:
        offered = request.headers.get("X-RingRift-Auth", "")
        bearer = request.headers.get("Authorization", "")
        if bearer.startswith("Bearer "):
            offered = offered or bearer[len("Bearer "):]
        # surrogateescape: a header with bytes that are not UTF-8 is a wrong token, not a 500
        if not hmac.compare_digest(offered.encode("utf-8", "surrogateescape"), token.encode()):
            return web.json_response({"error": "unauthorized"}, status=401)
    return await handler(request)
