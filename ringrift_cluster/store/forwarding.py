"""Leader forwarding, both ends of the wire in one place.

A node that cannot apply a command or answer a read itself (no copy of the state, or not the
leader) posts it to the node that can: ``Forwarder`` is the calling end (``ClusterState`` uses
it), ``answer_submit`` / ``answer_read`` the answering end (``POST /state/submit`` and
``/state/read`` call them), which applies on its own store without forwarding again.

The wire: ``{"command": ...}`` -> 200 ``{"result": ...}``; ``{"query", "args", "consistent"}``
-> 200 ``{"value": ...}``. A node that cannot answer says 503 with ``error``: ``timeout`` (the
command may still be applied: the caller raises ``ClusterTimeout`` and retries with the same
request id) or ``no_leader`` (``NoLeader``: not applied).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from ..config import ClusterConfig
from ..errors import ClusterError, ClusterTimeout, NoLeader, NotLeader
from ..model import Member
from ..peer_client import PeerClient
from .base import StateStore

SUBMIT_PATH = "/state/submit"
READ_PATH = "/state/read"
FORWARDED_HEADER = "X-RingRift-Forwarded"

# The read helpers of the state machine that may be called by name (also over /state/read).
QUERIES = frozenset({
    "work_stats", "work_list", "work_get", "job_get", "jobs_list", "job_stats", "jobs_by_node",
    "models_list", "model_get", "model_latest", "locks_list", "lock_get", "describe",
})


class BadForward(ValueError):
    """A forwarded request that is malformed (the answer is a 400 with this reason)."""


# -- The calling end ----------------------------------------------------------------------------


class Forwarder:
    def __init__(self, config: ClusterConfig, client: PeerClient, members: Callable[[], Mapping[str, Member]]) -> None:
        self._config = config
        self._client = client
        self._members = members
        self.forwarded = 0

    async def submit(self, node_id: str, command: dict[str, Any], timeout: float) -> Any:
        status, body = await self._post(node_id, SUBMIT_PATH, {"command": command}, timeout)
        return _unwrap(status, body, "result")

    async def read(self, node_id: str, query: str, args: Mapping[str, Any], consistent: bool, timeout: float) -> Any:
        status, body = await self._post(node_id, READ_PATH, {"query": query, "args": dict(args), "consistent": consistent},
                                        timeout)
        return _unwrap(status, body, "value")

    async def _post(self, node_id: str, path: str, body: dict[str, Any], timeout: float) -> tuple[int, Any]:
        host = self._config.hosts.get(node_id)
        member = self._members().get(node_id)
        url = host.api_url if host is not None else (member.api_url() if member is not None else None)
        if url is None:
            raise NoLeader(f"no address known for {node_id}")
        self.forwarded += 1
        return await self._client.post(url, path, body, timeout, headers={FORWARDED_HEADER: self._config.node_id})


def _unwrap(status: int, body: Any, key: str) -> Any:
    if status == 200 and isinstance(body, dict) and key in body:
        return body[key]
    error = body.get("error") if isinstance(body, dict) else None
    if status == 503 and error == "timeout":
        raise ClusterTimeout(body.get("message", "timed out at the leader"))
    if status == 503:
        raise NoLeader(body.get("message", "no leader") if isinstance(body, dict) else "no leader")
    raise ClusterError(f"forwarded call failed with {status}: {body}")


# -- The answering end --------------------------------------------------------------------------

_NO_STATE = (503, {"error": "no_leader", "message": "this node holds no state"})


async def answer_submit(store: StateStore | None, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
    """Apply a forwarded command here, without forwarding again: (status, answer)."""
    command = body.get("command")
    if not isinstance(command, dict):
        raise BadForward("command: expected an object")
    if store is None:
        return _NO_STATE
    try:
        result = await store.submit(command)
    except ClusterTimeout as e:
        return 503, {"error": "timeout", "message": str(e)}
    except (NoLeader, NotLeader) as e:
        return 503, {"error": "no_leader", "message": str(e)}
    return 200, {"result": result}


async def answer_read(store: StateStore | None, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
    """Answer a forwarded read from this node's own copy: (status, answer)."""
    name, args = body.get("query"), body.get("args", {})
    if not isinstance(name, str) or name not in QUERIES:  # a list or an object is no query (nor hashable)
        raise BadForward(f"query: expected one of {sorted(QUERIES)}")
    if not isinstance(args, dict) or not all(isinstance(v, (str, int, type(None))) for v in args.values()):
        raise BadForward("args: expected an object of strings and integers")
    if store is None:
        return _NO_STATE
    try:
        value = await store.read(lambda m: getattr(m, name)(**args), linearizable=bool(body.get("consistent")))
    except TypeError as e:
        raise BadForward(f"args: {e}") from None
    except (NoLeader, NotLeader, ClusterTimeout) as e:
        return 503, {"error": "no_leader", "message": str(e)}
    return 200, {"value": value}


__all__ = ["FORWARDED_HEADER", "QUERIES", "READ_PATH", "SUBMIT_PATH", "BadForward", "Forwarder", "answer_read",
           "answer_submit"]
