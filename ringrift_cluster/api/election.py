"""The legacy Bully routes: ``/election``, ``/election/lease``, ``/election/lease_revoke``,
``/coordinator``. Every route the election calls on a peer is served here."""

from __future__ import annotations

import time

from aiohttp import web

from ..config import MAX_LEASE_S
from ..model import node_id_problem
from .common import bad_request, read_object, reply, require
from .parts import BULLY

_MAX_LEASE_S = MAX_LEASE_S


def _bully(request: web.Request):
    bully = request.app[BULLY]
    if bully is None:
        raise web.HTTPConflict(text='{"error": "bully election is not active on this node"}', content_type="application/json")
    return bully


def _node_id(value: str, field: str) -> str:
    problem = node_id_problem(value)
    if problem:
        raise bad_request(f"{field}: expected {problem}, got {value!r}")
    return value


async def post_election(request: web.Request) -> web.Response:
    bully = _bully(request)
    body = require(await read_object(request), {"candidate_id": str})
    return reply(bully.handle_election(_node_id(body["candidate_id"], "candidate_id")))


async def post_lease(request: web.Request) -> web.Response:
    bully = _bully(request)
    body = require(await read_object(request), {"leader_id": str, "lease_id": str,
                                                 "lease_duration": (int, float), "lease_epoch": int})
    duration = float(body["lease_duration"])
    if not 0 < duration <= _MAX_LEASE_S:
        raise bad_request(f"lease_duration: expected seconds in (0, {_MAX_LEASE_S:.0f}], got {duration}")
    if body["lease_epoch"] < 1:
        raise bad_request(f"lease_epoch: expected a positive integer, got {body['lease_epoch']}")
    granted, answer = bully.handle_lease_request(_node_id(body["leader_id"], "leader_id"), body["lease_id"],
                                                 duration, body["lease_epoch"])
    return reply(answer, status=200 if granted else 409)


async def post_lease_revoke(request: web.Request) -> web.Response:
    bully = _bully(request)
    body = require(await read_object(request), {"leader_id": str, "lease_id": str})
    return reply(bully.handle_lease_revoke(_node_id(body["leader_id"], "leader_id"), body["lease_id"]))


async def post_coordinator(request: web.Request) -> web.Response:
    bully = _bully(request)
    data = await read_object(request)
    body = require(data, {"leader_id": str, "lease_id": str, "lease_epoch": int, "fence_token": str})
    ttl = data.get("lease_ttl_seconds")
    if ttl is None:
        expires = data.get("lease_expires")
        if not isinstance(expires, (int, float)) or isinstance(expires, bool):
            raise bad_request("lease_expires: required (or lease_ttl_seconds), expected a number")
        ttl = expires - time.time()
    if not isinstance(ttl, (int, float)) or isinstance(ttl, bool) or not ttl <= _MAX_LEASE_S:
        raise bad_request(f"lease_ttl_seconds: expected a number of seconds, got {ttl!r}")
    accepted, answer = bully.handle_coordinator(_node_id(body["leader_id"], "leader_id"), body["lease_id"],
                                                body["lease_epoch"], float(ttl), body["fence_token"])
    return reply(answer, status=200 if accepted else 409)


def register(app: web.Application) -> None:
    app.router.add_post("/election", post_election)
    app.router.add_post("/election/lease", post_lease)
    app.router.add_post("/election/lease_revoke", post_lease_revoke)
    app.router.add_post("/coordinator", post_coordinator)
