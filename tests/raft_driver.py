"""Test support for the Raft backend: one node process per voter, and a harness driving them.

Node side (``python tests/raft_driver.py node --config C --node-id N --data-dir D``): runs ONE
``RaftConsensus`` from a generated cluster YAML and serves a tiny control API on the node's
p2p_port (127.0.0.1): ``POST /submit``, ``GET /leadership``, ``GET /describe``, ``GET /state``,
``GET /events`` and two in-process benchmarks (``POST /bench/latency``, ``POST /bench/pipeline``).
It prints ``READY`` once serving.

Harness side: ``RaftCluster`` writes the YAML (free ports picked at runtime), spawns and kills
node processes, and ``poll_until`` waits on conditions with a deadline, printing what it last
saw when the deadline passes (no fixed sleeps anywhere).

Test-only state machine: ``TestMachine`` handles ``test_append`` (append a value, dedup by rid)
and ``test_raise`` (raises, to prove the adapter stays total); every other op goes to the real
``ringrift_cluster.state`` machine when one is importable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

# --------------------------------------------------------------------------------------------
# The test state machine


def _real_machine() -> Any:
    if os.environ.get("RAFT_DRIVER_NO_STATE"):  # benchmarks: test ops only
        return None
    try:
        from ringrift_cluster.state import StateMachine  # type: ignore[attr-defined]
    except Exception:
        return None
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

        self.machine = TestMachine(_real_machine())
        self.raft = RaftConsensus(config, self.machine)
        self.events: list[dict[str, Any]] = []

    async def start(self) -> None:
        await self.raft.start()
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
        await self.raft.stop()

    def leadership(self) -> dict[str, Any]:
        lead = self.raft.leadership()
        return {"leader": lead.leader, "term": lead.term, "is_self": lead.is_self}

    def describe(self) -> dict[str, Any]:
        return self.raft.describe()

    async def submit(self, command: dict[str, Any], timeout: float | None) -> Any:
        return await self.raft.submit(command, timeout=timeout)

    async def state(self, linearizable: bool) -> Any:
        view = await self.raft.read(lambda m: m.view(), linearizable=linearizable)
        return {"view": view, "applied_index": self.raft.describe()["applied_index"]}

    def import_snapshot(self, snapshot: dict[str, Any]) -> Any:
        return self.raft.import_snapshot(snapshot)

    async def bench_latency(self, n: int) -> list[float]:
        out = []
        for i in range(n):
            t0 = time.perf_counter()
            await self.raft.submit({"op": "test_append", "args": {"value": f"lat-{i}"}})
            out.append(time.perf_counter() - t0)
        return out

    async def bench_pipeline(self, n: int, inflight: int) -> dict[str, Any]:
        sem = asyncio.Semaphore(inflight)
        errors = 0

        async def one(i: int) -> None:
            nonlocal errors
            async with sem:
                try:
                    await self.raft.submit({"op": "test_append", "args": {"value": f"p-{i}"}}, timeout=30)
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
    parser = argparse.ArgumentParser(prog="raft_driver node")
    parser.add_argument("--config", required=True)
    parser.add_argument("--node-id", required=True)
    parser.add_argument("--data-dir", required=True)
    args = parser.parse_args(argv)
    config = load_node_config(args)
    asyncio.run(serve(config, AdapterBackend(config)))


# --------------------------------------------------------------------------------------------
# Harness


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports, held open together while picking so none repeats."""
    sockets, ports = [], []
    try:
        while len(ports) < count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
            port = s.getsockname()[1]
            if port not in ports:
                ports.append(port)
    finally:
        for s in sockets:
            s.close()
    return ports


async def poll_until(check: Callable[[], Awaitable[tuple[bool, Any]]], timeout: float, what: str,
                     interval: float = 0.05) -> Any:
    """Await ``check()`` -> (done, seen) until done; AssertionError with the last ``seen`` at the deadline."""
    deadline = time.monotonic() + timeout
    seen: Any = None
    while True:
        try:
            done, seen = await check()
        except Exception as e:  # a node restarting, a refused connection: keep polling
            done, seen = False, f"{type(e).__name__}: {e}"
        if done:
            return seen
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}; last seen: {seen!r}")
        await asyncio.sleep(interval)


class RaftCluster:
    """N voters on loopback, each a process running ``node_cmd`` (the driver by default)."""

    def __init__(self, n: int, base_dir: Path, *, raft: dict[str, Any] | None = None,
                 node_cmd: list[str] | None = None, prefix: str = "n") -> None:
        self.ids = [f"{prefix}{i + 1}" for i in range(n)]
        self.base_dir = Path(base_dir)
        self.base_dir.mkdir(parents=True, exist_ok=True)
        ports = free_ports(3 * n)
        self.api_port = {nid: ports[3 * i] for i, nid in enumerate(self.ids)}
        hosts = {
            nid: {"p2p_host": "127.0.0.1", "p2p_port": ports[3 * i], "swim_port": ports[3 * i + 1],
                  "raft_port": ports[3 * i + 2]}
            for i, nid in enumerate(self.ids)
        }
        section: dict[str, Any] = {"preset": "local", "consensus_mode": "raft",
                                   "data_dir": str(self.base_dir / "data")}
        if raft:
            section["raft"] = dict(raft)
        document = {"hosts": hosts, "raft_members": list(self.ids), "ringrift_cluster": section}
        self.config_path = self.base_dir / "cluster.yaml"
        self.config_path.write_text(json.dumps(document, indent=2))  # JSON is YAML
        self.node_cmd = node_cmd or [sys.executable, str(Path(__file__).resolve()), "node"]
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.session: aiohttp.ClientSession | None = None

    # processes

    def data_dir(self, nid: str) -> Path:
        return self.base_dir / "data" / nid

    def spawn(self, nid: str) -> None:
        assert nid not in self.procs or self.procs[nid].poll() is not None, f"{nid} already running"
        log = open(self.base_dir / f"{nid}.log", "ab")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("RINGRIFT_CONFIG", None)
        self.procs[nid] = subprocess.Popen(
            [*self.node_cmd, "--config", str(self.config_path), "--node-id", nid, "--data-dir", str(self.data_dir(nid))],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT),
        )
        log.close()

    def kill(self, nid: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[nid]
        if proc.poll() is None:
            proc.send_signal(sig)
            proc.wait(timeout=10)

    def alive(self) -> list[str]:
        return [nid for nid, p in self.procs.items() if p.poll() is None]

    def log_tail(self, nid: str, lines: int = 30) -> str:
        path = self.base_dir / f"{nid}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    async def __aenter__(self) -> "RaftCluster":
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        for nid in list(self.procs):
            self.kill(nid, signal.SIGKILL)
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def start_all(self, timeout: float = 20.0) -> None:
        for nid in self.ids:
            self.spawn(nid)
        for nid in self.ids:
            await self.wait_serving(nid, timeout)

    async def wait_serving(self, nid: str, timeout: float = 20.0) -> None:
        async def check() -> tuple[bool, Any]:
            if self.procs[nid].poll() is not None:
                raise AssertionError(f"{nid} exited with {self.procs[nid].returncode}:\n{self.log_tail(nid)}")
            return True, await self.get(nid, "/leadership", timeout=1.0)

        try:
            await poll_until(check, timeout, f"{nid} serving")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.log_tail(nid)}") from None

    # control API

    def url(self, nid: str, path: str) -> str:
        return f"http://127.0.0.1:{self.api_port[nid]}{path}"

    async def get(self, nid: str, path: str, timeout: float = 5.0) -> Any:
        assert self.session is not None
        async with self.session.get(self.url(nid, path), timeout=aiohttp.ClientTimeout(total=timeout)) as r:
            return await r.json()

    async def post(self, nid: str, path: str, body: Any, timeout: float = 30.0) -> Any:
        assert self.session is not None
        async with self.session.post(self.url(nid, path), json=body, timeout=aiohttp.ClientTimeout(total=timeout)) as r:
            return await r.json()

    async def submit(self, nid: str, command: dict[str, Any], timeout: float | None = None,
                     http_timeout: float = 30.0) -> dict[str, Any]:
        return await self.post(nid, "/submit", {"command": command, "timeout": timeout}, timeout=http_timeout)

    async def leaderships(self, nodes: list[str] | None = None) -> dict[str, Any]:
        nodes = nodes if nodes is not None else self.alive()

        async def one(nid: str) -> Any:
            try:
                return await self.get(nid, "/leadership", timeout=1.0)
            except Exception as e:
                return f"{type(e).__name__}"

        results = await asyncio.gather(*(one(n) for n in nodes))
        return dict(zip(nodes, results))

    async def wait_agreed_leader(self, timeout: float, nodes: list[str] | None = None,
                                 exclude: str | None = None) -> tuple[str, int]:
        """Every given node reports the same leader (not ``exclude``) and term; that leader says is_self."""

        async def check() -> tuple[bool, Any]:
            views = await self.leaderships(nodes)
            leaders = {(v.get("leader"), v.get("term")) if isinstance(v, dict) else None for v in views.values()}
            if len(leaders) != 1:
                return False, views
            only = next(iter(leaders))
            if only is None or only[0] is None or only[0] == exclude or only[0] not in views:
                return False, views
            return bool(views[only[0]].get("is_self")), views

        views = await poll_until(check, timeout, "one agreed leader")
        first = next(iter(views.values()))
        return first["leader"], first["term"]

    async def wait_full_mesh(self, timeout: float) -> None:
        async def check() -> tuple[bool, Any]:
            seen = {}
            for nid in self.ids:
                d = await self.get(nid, "/describe", timeout=1.0)
                seen[nid] = (d["cluster_health"], d["members"])
            return all(h == "healthy" for h, _ in seen.values()), seen

        await poll_until(check, timeout, "every member connected to every other (healthy)")


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "node":
        node_main(sys.argv[2:])
    else:
        sys.exit("usage: raft_driver.py node --config C --node-id N --data-dir D")
