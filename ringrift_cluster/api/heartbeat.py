"""``POST /heartbeat``: the legacy membership exchange (NodeInfo in, NodeInfo out)."""

from __future__ import annotations

from aiohttp import web

from ..nodeinfo import NodeInfo, NodeInfoError
from .common import bad_request, read_object, reply
from .parts import CONFIG, HEARTBEAT


async def post_heartbeat(request: web.Request) -> web.Response:
    heartbeat = request.app[HEARTBEAT]
    if heartbeat is None:
        return reply({"error": "heartbeat membership is not active on this node",
                      "membership_mode": request.app[CONFIG].membership_mode.value}, status=409)
    data = await read_object(request)
    try:
        info = NodeInfo.parse(data)
    except NodeInfoError as e:
        raise bad_request(str(e)) from None
    ours = heartbeat.handle_heartbeat(info, request.remote)
    return reply(ours.to_dict())


def register(app: web.Application) -> None:
    app.router.add_post("/heartbeat", post_heartbeat)
