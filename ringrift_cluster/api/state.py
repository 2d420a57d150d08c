"""The replicated state over HTTP: work queue, jobs, model registry, training locks.

Works in every consensus mode: any node accepts a call and the ``ClusterState`` facade applies
it where it can be applied (forwarding to the leader), or the caller gets a 503 naming the
leader when there is none. A client may send ``request_id`` to make its own retries safe.
Reads are local by default; ``?consistent=true`` makes them linearizable.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from typing import Any, Callable

from aiohttp import web

from ..config import ClusterConfig
from ..errors import ClusterError, ClusterTimeout
from ..state import commands
from ..store import forwarding
from ..store.facade import ClusterState
from .common import bad_request, read_object, reply
from .parts import CONFIG, HANDOFF, STATE, STORE

_CLIENT_ERRORS = {"bad_command": 400, "unknown_op": 400, "unsupported_version": 400, "not_found": 404, "internal": 500}

Args = Callable[[web.Request, dict[str, Any]], dict[str, Any]]


def _body(request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    return body


def _with(*names: str) -> Args:
    """Args = the body plus the named URL parts (a URL part wins over a body field)."""
    return lambda request, body: {**body, **{name: request.match_info[name] for name in names}}


def _lock_args(request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "name": request.match_info["name"]}


# method, path, op, how to build args
WRITES: list[tuple[str, str, str, Args]] = [
    ("POST", "/raft/work", "work.add", _body),
    ("POST", "/raft/work/claim", "work.claim", _body),
    ("POST", "/raft/work/{work_id}/start", "work.start", _with("work_id")),
    ("POST", "/raft/work/{work_id}/renew", "work.renew", _with("work_id")),
    ("POST", "/raft/work/{work_id}/complete", "work.complete", _with("work_id")),
    ("POST", "/raft/work/{work_id}/fail", "work.fail", _with("work_id")),
    ("POST", "/raft/jobs", "job.assign", _body),
    ("POST", "/raft/jobs/{job_id}/start", "job.start", _with("job_id")),
    ("POST", "/raft/jobs/{job_id}/complete", "job.complete", _with("job_id")),
    ("POST", "/raft/jobs/{job_id}/fail", "job.fail", _with("job_id")),
    ("POST", "/raft/models", "model.register", _body),
    ("POST", "/raft/models/{name}/{version}/promote", "model.promote", _with("name", "version")),
    ("POST", "/raft/lock/{name}", "lock.acquire", _lock_args),
    ("POST", "/raft/lock/{name}/renew", "lock.renew", _lock_args),
    ("DELETE", "/raft/lock/{name}", "lock.release", _lock_args),
]


def _write_handler(op: str, build: Args) -> Callable[[web.Request], Any]:
    async def handler(request: web.Request) -> web.Response:
        state, config = request.app[STATE], request.app[CONFIG]
        body = await read_object(request)
        rid = body.pop("request_id", None)
        if rid is not None and (not isinstance(rid, str) or not 0 < len(rid) <= 128):
            raise bad_request(f"request_id: expected a string of 1 to 128 characters, got {rid!r}"[:200])
        command = commands.command(op, build(request, body), rid=rid)
        try:
            result = await state.execute(command)
        except ClusterError as e:  # no leader, timeout, or the leader could not be reached
            return _unavailable(state, config, op, request, e)
        return _result_reply(config, op, request, result)

    return handler


def _result_reply(config: ClusterConfig, op: str, request: web.Request, result: dict[str, Any]) -> web.Response:
    # ``node_id`` is the answering node's, unless the result names one of its own (a job's node);
    # ``served_by`` always says who answered.
    body: dict[str, Any] = {"node_id": config.node_id, **result, "served_by": config.node_id,
                            "timestamp": time.time()}
    if op.startswith("lock."):
        body["lock_name"] = request.match_info["name"]
        if op == "lock.release":
            body["released"] = bool(result.get("ok"))
        else:
            body["acquired"] = bool(result.get("ok"))
            if result.get("ok") and "expires_at" in result:
                body["expires_in_s"] = round(result["expires_at"] - result.get("clock", result["expires_at"]), 3)
    status = 200 if result.get("ok") else _CLIENT_ERRORS.get(result.get("error", ""), 409)
    return reply(body, status=status)


def _unavailable(state: ClusterState, config: ClusterConfig, op: str, request: web.Request,
                 error: ClusterError) -> web.Response:
    timeout = isinstance(error, ClusterTimeout)
    body: dict[str, Any] = {
        "ok": False,
        "error": "timeout" if timeout else "no_leader",
        "message": str(error),
        "leader": state.leader(),
        "outcome": "unknown" if timeout else "not_applied",
        "node_id": config.node_id,
        "timestamp": time.time(),
    }
    if op.startswith("lock."):
        body["lock_name"] = request.match_info["name"]
        body["released" if op == "lock.release" else "acquired"] = False
    return reply(body, status=503)


# -- Reads -------------------------------------------------------------------------------------


async def _query(request: web.Request, query: str, **kwargs: Any) -> Any:
    consistent = request.query.get("consistent", "false").lower() in ("1", "true", "yes")
    return await request.app[STATE].query(query, consistent=consistent, **kwargs)


def _read(fn: Callable[[web.Request], Any]) -> Callable[[web.Request], Any]:
    async def handler(request: web.Request) -> web.Response:
        state, node_id = request.app[STATE], request.app[CONFIG].node_id
        try:
            body = await fn(request)
        except ClusterError as e:
            return reply({"error": "no_leader", "message": str(e), "leader": state.leader(),
                          "node_id": node_id, "timestamp": time.time()}, status=503)
        if body is None:
            raise web.HTTPNotFound(text='{"error": "not found"}', content_type="application/json")
        return reply({**body, "node_id": node_id, "timestamp": time.time()})

    return handler


def _store_view(request: web.Request) -> dict[str, Any]:
    config, store = request.app[CONFIG], request.app[STORE]
    leader = request.app[STATE].leader()
    host = config.hosts.get(leader) if leader else None
    return {
        "enabled": True,
        "backend": config.state_backend,
        "is_ready": store is None or store.ready,
        "is_leader": leader == config.node_id,
        "leader": leader,
        "leader_address": host.api_url if host else None,
    }


async def _work_stats(request: web.Request) -> dict[str, Any]:
    return {**_store_view(request), "stats": await _query(request, "work_stats")}


async def _work_item(request: web.Request) -> dict[str, Any] | None:
    item = await _query(request, "work_get", work_id=request.match_info["work_id"])
    return None if item is None else {"item": item}


async def _jobs(request: web.Request) -> dict[str, Any]:
    filters = {k: request.query[k] for k in ("node_id", "status") if k in request.query}
    return {**_store_view(request), "stats": await _query(request, "job_stats"),
            "jobs": await _query(request, "jobs_list", **filters)}


async def _models(request: web.Request) -> dict[str, Any]:
    return {"models": await _query(request, "models_list")}


async def _model(request: web.Request) -> dict[str, Any] | None:
    name = request.match_info["name"]
    versions = await _query(request, "models_list", name=name)
    if not versions:
        return None
    latest = {stage: await _query(request, "model_latest", name=name, stage=stage)
              for stage in ("candidate", "production", "archived")}
    return {"name": name, "versions": versions, "latest": latest}


async def _locks(request: web.Request) -> dict[str, Any]:
    return {"locks": await _query(request, "locks_list")}


# -- Internal: what a node forwards to the node that can apply ----------------------------------


async def post_state_submit(request: web.Request) -> web.Response:
    """Apply a forwarded command here, without forwarding again (store/forwarding.py)."""
    return await _answer(request, forwarding.answer_submit)


async def post_state_read(request: web.Request) -> web.Response:
    return await _answer(request, forwarding.answer_read)


async def _answer(request: web.Request, answer: Callable[..., Any]) -> web.Response:
    body = await read_object(request)
    try:
        status, result = await answer(request.app[STORE], body)
    except forwarding.BadForward as e:
        raise bad_request(str(e)) from None
    return reply(result, status=status)


async def post_state_handover(request: web.Request) -> web.Response:
    """A departing leader hands over its state; taken only if newer than ours."""
    store = request.app[STORE]
    body = await read_object(request)
    if not isinstance(body.get("snapshot"), dict):
        raise bad_request("snapshot: expected an object")
    if store is None:
        return reply({"error": "no_store", "message": "this node holds no state"}, status=409)
    result = store.import_snapshot(body["snapshot"])
    return reply({"imported": bool(result.get("ok")), "reason": result.get("message"),
                  "node_id": request.app[CONFIG].node_id})


async def post_state_candidate(request: web.Request) -> web.Response:
    """A new state leader asks: the newest state this node holds (its lineage; with
    ``{"snapshot": true}`` the state itself) and whether it has just switched stores."""
    handoff = request.app[HANDOFF]
    body = await read_object(request)
    want = body.get("snapshot", False)
    if not isinstance(want, bool):
        raise bad_request("snapshot: expected true or false")
    if not handoff.loaded:
        return reply({"error": "loading", "message": "this node is still collecting its state"}, status=503)
    report = await handoff.report()
    answer: dict[str, Any] = report.to_dict()
    if want and report.lineage is not None:
        answer["snapshot"] = await handoff.snapshot_for(report.lineage)
    return reply(answer)


async def get_state_digest(request: web.Request) -> web.Response:
    """A digest of this node's own copy of the state: replicas that applied the same commands
    have the same digest (what the convergence checks compare)."""
    store = request.app[STORE]
    if store is None:
        return reply({"error": "no_store", "message": "this node holds no state"}, status=409)
    try:
        # Only the freeze runs where applies run; the state is serialized and hashed off that thread.
        view = await store.read(lambda machine: machine.freeze())
    except ClusterError as e:
        return reply({"error": "no_state", "message": str(e)}, status=409)
    digest, changes, limits = await asyncio.to_thread(_digest, view)
    return reply({"digest": digest, "changes": changes, "limits": limits, "node_id": request.app[CONFIG].node_id})


def _digest(view: Any) -> tuple[str, int, dict[str, Any]]:
    snapshot = view.snapshot(copy=False)  # read-only here
    text = json.dumps(snapshot, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest(), snapshot["counters"]["change"], dict(snapshot["limits"])


def register(app: web.Application) -> None:
    for method, path, op, build in WRITES:
        app.router.add_route(method, path, _write_handler(op, build))
    app.router.add_get("/raft/work", _read(_work_stats))
    app.router.add_get("/raft/work/{work_id}", _read(_work_item))
    app.router.add_get("/raft/jobs", _read(_jobs))
    app.router.add_get("/raft/models", _read(_models))
    app.router.add_get("/raft/models/{name}", _read(_model))
    app.router.add_get("/raft/locks", _read(_locks))
    app.router.add_post(forwarding.SUBMIT_PATH, post_state_submit)
    app.router.add_post(forwarding.READ_PATH, post_state_read)
    app.router.add_post("/state/handover", post_state_handover)
    app.router.add_post("/state/candidate", post_state_candidate)
    app.router.add_get("/state/digest", get_state_digest)
