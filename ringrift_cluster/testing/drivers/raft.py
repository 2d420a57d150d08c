"""The Raft driver's node side: one process per voter (the harness is
:class:`ringrift_cluster.testing.engines.RaftCluster`).

``python -m ringrift_cluster.testing.drivers.raft node --config C --node-id N --data-dir D`` runs ONE
``RaftConsensus`` from a generated cluster YAML and serves a tiny control API on the node's
p2p_port (127.0.0.1): ``POST /submit``, ``GET /leadership``, ``GET /describe``, ``GET /state``,
``GET /events`` and two in-process benchmarks (``POST /bench/latency``, ``POST /bench/pipeline``).
It prints ``READY`` once serving.

Test-only state machine: ``TestMachine`` handles ``test_append`` (append a value, dedup by rid)
and ``test_raise`` (raises, to prove the adapter stays total); every other op goes to the real
``ringrift_cluster.state`` machine (benchmarks set ``RAFT_DRIVER_NO_STATE`` for test ops only).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from typing import Any

from aiohttp import web

# --------------------------------------------------------------------------------------------
# The test state machine


def _real_machine() -> Any:
    if os.environ.get("RAFT_DRIVER_NO_STATE"):  # benchmarks: test ops only
        return None
    from ringrift_cluster.state import StateMachine  # no fallback: a broken import must fail loudly

    return StateMachine()


class TestMachine:
    """Deterministic test ops on top of the real machine (when available)."""

    def __init__(self, inner: Any = None) -> None:
        self.inner = inner
        self.log: list[Any] = []
        self.seen: dict[str, dict[str, Any]] = {}
        self.applied = 0

    def apply(self, command: dict[str, Any]) -> dict[str, Any]:
        self.applied += 1
        op = command.get("op")
        if op == "test_raise":
            raise RuntimeError("test_raise: this op always raises")
        if op == "test_append":
            rid = str(command.get("rid"))
            if rid in self.seen:
                return {**self.seen[rid], "duplicate": True}
            args = command.get("args")
            if not isinstance(args, dict) or "value" not in args:
                return {"ok": False, "error": "bad_command", "message": "args.value missing"}
            self.log.append(args["value"])
            result = {"ok": True, "index": len(self.log)}
            self.seen[rid] = result
            return dict(result)
        if self.inner is None:
            return {"ok": op == "tick", "error": None if op == "tick" else "unknown_op"}
        return self.inner.apply(command)

    def snapshot(self) -> dict[str, Any]:
        return {
            "log": list(self.log),
            "seen": {k: dict(v) for k, v in self.seen.items()},
            "inner": None if self.inner is None else self.inner.snapshot(),
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        self.log = list(snapshot["log"])
        self.seen = {k: dict(v) for k, v in snapshot["seen"].items()}
        if self.inner is not None and snapshot.get("inner") is not None:
            from ringrift_cluster.consensus.raft import default_restore

            self.inner = default_restore(self.inner, snapshot["inner"])

    def view(self) -> dict[str, Any]:
        """Replicated state only (what must be identical on every replica)."""
        return {"log": list(self.log), "inner": None if self.inner is None else self.inner.snapshot()}


# --------------------------------------------------------------------------------------------
# Node process


class AdapterBackend:
    """The control API's view of our RaftConsensus."""

    def __init__(self, config: Any) -> None:
        from ringrift_cluster.consensus.raft import RaftConsensus
        from ringrift_cluster.store.raft import RaftStore

        self.machine = TestMachine(_real_machine())
        self.raft = RaftConsensus(config, self.machine)
        self.store = RaftStore(self.raft, runs_engine=True)
        self.events: list[dict[str, Any]] = []

    async def start(self) -> None:
        await self.store.start()
        subscription = self.raft.subscribe()

        async def record() -> None:
            async for event in subscription:
                self.events.append({
                    "leader": event.leadership.leader, "term": event.leadership.term,
                    "is_self": event.leadership.is_self,
                    "outcome": event.election_outcome.value if event.election_outcome else None,
                    "latency_s": event.election_latency_s, "at": event.at,
                })

        self._recorder = asyncio.create_task(record())

    async def stop(self) -> None:
        await self.store.stop()

    def leadership(self) -> dict[str, Any]:
        lead = self.raft.leadership()
        return {"leader": lead.leader, "term": lead.term, "is_self": lead.is_self}

    def describe(self) -> dict[str, Any]:
        return self.raft.describe()

    async def submit(self, command: dict[str, Any], timeout: float | None) -> Any:
        return await self.store.submit(command, timeout=timeout)

    async def state(self, linearizable: bool) -> Any:
        view = await self.store.read(lambda m: m.view(), linearizable=linearizable)
        return {"view": view, "applied_index": self.raft.describe()["applied_index"]}

    def import_snapshot(self, snapshot: dict[str, Any]) -> Any:
        return self.store.import_snapshot(snapshot)

    async def bench_latency(self, n: int) -> list[float]:
        out = []
        for i in range(n):
            t0 = time.perf_counter()
            await self.store.submit({"op": "test_append", "args": {"value": f"lat-{i}"}})
            out.append(time.perf_counter() - t0)
        return out

    async def bench_pipeline(self, n: int, inflight: int) -> dict[str, Any]:
        sem = asyncio.Semaphore(inflight)
        errors = 0

        async def one(i: int) -> None:
            nonlocal errors
            async with sem:
                try:
                    await self.store.submit({"op": "test_append", "args": {"value": f"p-{i}"}}, timeout=30)
                except Exception:
                    errors += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        elapsed = time.perf_counter() - t0
        return {"n": n, "errors": errors, "elapsed_s": elapsed, "ops_per_s": n / elapsed}


def _error_body(e: BaseException) -> dict[str, Any]:
    return {"ok": False, "error": type(e).__name__, "message": str(e),
            "may_commit": getattr(e, "may_commit", None), "raft_code": getattr(e, "raft_code", None)}


def build_app(backend: Any) -> web.Application:
    app = web.Application()

    async def submit(request: web.Request) -> web.Response:
        body = await request.json()
        try:
            result = await backend.submit(body["command"], body.get("timeout"))
        except Exception as e:
            return web.json_response(_error_body(e))
        return web.json_response({"ok": True, "result": result})

    async def leadership(request: web.Request) -> web.Response:
        return web.json_response(backend.leadership())

    async def describe(request: web.Request) -> web.Response:
        return web.json_response(backend.describe())

    async def state(request: web.Request) -> web.Response:
        try:
            return web.json_response({"ok": True, **await backend.state(request.query.get("linearizable") == "1")})
        except Exception as e:
            return web.json_response(_error_body(e))

    async def events(request: web.Request) -> web.Response:
        return web.json_response(getattr(backend, "events", []))

    async def bench_latency(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"latencies": await backend.bench_latency(int(body["n"]))})

    async def bench_pipeline(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response(await backend.bench_pipeline(int(body["n"]), int(body["inflight"])))

    async def import_snapshot(request: web.Request) -> web.Response:
        body = await request.json()
        try:
            return web.json_response(backend.import_snapshot(body["snapshot"]))
        except Exception as e:
            return web.json_response(_error_body(e))

    app.router.add_post("/submit", submit)
    app.router.add_post("/import", import_snapshot)
    app.router.add_get("/leadership", leadership)
    app.router.add_get("/describe", describe)
    app.router.add_get("/state", state)
    app.router.add_get("/events", events)
    app.router.add_post("/bench/latency", bench_latency)
    app.router.add_post("/bench/pipeline", bench_pipeline)
    return app


async def serve(config: Any, backend: Any) -> None:
    await backend.start()
    runner = web.AppRunner(build_app(backend), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", config.api.port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("READY", flush=True)
    await stop.wait()
    await runner.cleanup()
    await backend.stop()


def load_node_config(args: argparse.Namespace) -> Any:
    from ringrift_cluster.config import load_config

    return load_config(args.config, env={}, overrides={"node_id": args.node_id, "data_dir": args.data_dir})


def node_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="ringrift_cluster.testing.drivers.raft node")
    parser.add_argument("--config", required=True)
    parser.add_argument("--node-id", required=True)
    parser.add_argument("--data-dir", required=True)
    args = parser.parse_args(argv)
    config = load_node_config(args)
    asyncio.run(serve(config, AdapterBackend(config)))


def main(argv: list[str]) -> None:
    if len(argv) >= 1 and argv[0] == "node":
        node_main(argv[1:])
    else:
        sys.exit("usage: python -m ringrift_cluster.testing.drivers.raft node --config C --node-id N --data-dir D")


if __name__ == "__main__":
    main(sys.argv[1:])
