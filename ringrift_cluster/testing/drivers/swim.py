"""The SWIM driver's node side: real ``SwimMembership`` nodes in a process of their own, talking
JSON lines (the harness is :mod:`ringrift_cluster.testing.swim_clusters`).

``python -m ringrift_cluster.testing.drivers.swim node --config C --node-id N [--engine ours|raw]``
runs ONE node and prints ``{"type": "event", ...}`` per membership event and ``{"type": "status",
...}`` (``describe()`` and ``members()``) twice a second. Commands on stdin: ``stop`` (graceful),
``stop-hard``, ``status``, ``block <seconds>`` (block the node's main loop: the isolation check),
``kill-task`` (cancel the library's protocol task: the supervisor must restart it). ``--engine
raw`` runs swim-p2p as it comes (its UDP transport, its default config, on the main loop) and
prints the library's raw transitions mapped to node ids: the baseline for benchmarks.

``python -m ringrift_cluster.testing.drivers.swim pack --config C --nodes a,b,c`` runs MANY nodes
in one process (their own sockets, engine threads and loops; only the interpreter is shared, so
300 nodes do not import the library 300 times) and prints ``started``, ``event`` (with its
``observer``) and, every 2 s per node, ``status`` with state counts and traffic counters.
Commands on stdin: ``kill <id>`` (stop without a leave: silent, like a crash), ``stop <id>``
(graceful), ``quit``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import threading
import time
from typing import Any

import structlog

from ringrift_cluster.config import load_config
from ringrift_cluster.errors import BackendUnavailable
from ringrift_cluster.membership.swim import SwimMembership

# The pack's status line: what benchmarks and scale tests read of each node's describe().
PACK_COUNTERS = ("messages_sent", "messages_received", "bytes_sent", "bytes_received", "largest_datagram",
                 "oversize", "oversize_dropped", "send_errors", "compressed", "piggyback_depth", "syncs",
                 "restarts", "raw_flaps", "library_members", "datagram_sizes", "by_type")


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, default=str, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _configure_logging(level: str) -> None:
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso"),
                    structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)


def _stdin_commands(last: str) -> "asyncio.Queue[str]":
    """Lines of stdin as they come (a thread reads them), then ``last`` at end of input."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def reader() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(queue.put_nowait, line.strip())
        loop.call_soon_threadsafe(queue.put_nowait, last)

    threading.Thread(target=reader, daemon=True).start()
    return queue


async def _pump_events(membership: SwimMembership, observer: str | None) -> None:
    async for event in membership.subscribe():
        line = {"type": "event", "kind": event.kind.value, "node_id": event.node_id, "after_s": event.after_s,
                "at": event.at, "mono": time.monotonic()}
        _emit(line if observer is None else {**line, "observer": observer})


def _kill_protocol_task(engine: Any) -> None:
    """On the SWIM loop: cancel the library's protocol task (it dying: the supervisor restarts it)."""
    for task in list(engine.node.tasks):
        if "_protocol_loop" in task.get_coro().__qualname__:
            task.cancel()


# --------------------------------------------------------------------------------------------
# One node


async def run_node(config_path: str, node_id: str) -> int:
    membership = SwimMembership(load_config(config_path, env={}, overrides={"node_id": node_id}))
    events = asyncio.create_task(_pump_events(membership, None))
    try:
        await membership.start()
    except BackendUnavailable as e:
        _emit({"type": "error", "error": str(e), "describe": membership.describe()})
        return 3
    _emit({"type": "started", "node_id": node_id, "pid": os.getpid()})

    def status() -> dict[str, Any]:
        members = [
            {"node_id": m.node_id, "state": m.state.value, "host": m.host, "api_port": m.api_port,
             "role": m.role, "raft_address": m.raft_address, "capabilities": list(m.capabilities),
             "has_gpu": m.has_gpu, "gpu_name": m.gpu_name, "source": m.source, "meta": dict(m.meta)}
            for m in membership.members().values()
        ]
        return {"type": "status", "at": time.time(), "describe": membership.describe(), "members": members}

    async def pump_status() -> None:
        while True:
            _emit(status())
            await asyncio.sleep(0.5)

    tasks = [events, asyncio.create_task(pump_status())]
    commands = _stdin_commands("eof")
    while True:
        command = await commands.get()
        if command == "status":
            _emit(status())
        elif command.startswith("block"):
            seconds = float(command.split()[1])
            time.sleep(seconds)  # deliberately blocks this (the node's) loop
            _emit({"type": "unblocked", "seconds": seconds})
        elif command == "kill-task":
            membership.on_engine_loop(_kill_protocol_task)
        elif command in ("stop", "stop-hard", "eof"):
            await membership.stop(graceful=command != "stop-hard")
            _emit({"type": "stopped", "graceful": command != "stop-hard", "describe": membership.describe()})
            break
    for task in tasks:
        task.cancel()
    return 0


async def run_raw(config_path: str, node_id: str) -> int:
    """swim-p2p exactly as it comes: its transport and defaults, on this (the main) loop."""
    config = load_config(config_path, env={}, overrides={"node_id": node_id})
    from ringrift_cluster.membership.swim.bridge import library_as_it_comes

    Node, UDPTransport, get_config = library_as_it_comes()
    logging.getLogger("swim").setLevel(logging.CRITICAL)
    addr_to_id = {(h.address, h.swim_port): h.node_id for h in config.hosts.values()}
    me = config.me
    node = await Node.create(bind_addr=(me.address, me.swim_port), transport=UDPTransport(),
                             seed_addrs=[(h.address, h.swim_port) for h in config.peers], config=get_config())
    await node.start()
    _emit({"type": "started", "node_id": me.node_id, "pid": os.getpid()})
    names = {"ALIVE": "alive", "SUSPECT": "suspect", "DEAD": "failed"}
    seen: dict[str, str] = {}
    commands = _stdin_commands("eof")
    last_status = 0.0
    while True:
        try:
            command = commands.get_nowait()
        except asyncio.QueueEmpty:
            command = None
        if command in ("stop", "stop-hard", "eof"):
            await node.stop()
            break
        for m in node.members.get_all_members(exclude_self=True):
            member = addr_to_id.get(m.addr, f"?{m.addr}")
            state = names[m.state.name]
            if seen.get(member) != state:
                kind = "joined" if member not in seen else state
                seen[member] = state
                _emit({"type": "event", "kind": kind, "node_id": member, "at": time.time(), "mono": time.monotonic()})
        if time.monotonic() - last_status > 0.5:
            last_status = time.monotonic()
            members = [{"id": n, "state": s, "address": ""} for n, s in sorted(seen.items())]
            _emit({"type": "status", "at": time.time(), "describe": {
                "members": members, "raw_flaps": 0, "restarts": 0,
                "alive_count": sum(1 for s in seen.values() if s == "alive")}})
        await asyncio.sleep(0.05)
    return 0


# --------------------------------------------------------------------------------------------
# A pack of nodes


async def run_pack(config_path: str, ids: list[str]) -> int:
    nodes: dict[str, SwimMembership] = {}
    pumps: list[asyncio.Task[None]] = []

    async def start(node_id: str) -> None:
        config = await asyncio.to_thread(load_config, config_path, env={}, overrides={"node_id": node_id})
        membership = SwimMembership(config)
        pumps.append(asyncio.create_task(_pump_events(membership, node_id)))
        await membership.start()
        nodes[node_id] = membership
        _emit({"type": "started", "node_id": node_id, "mono": time.monotonic()})

    await asyncio.gather(*(start(node_id) for node_id in ids))

    async def report() -> None:
        while True:
            for node_id, membership in list(nodes.items()):
                d = membership.describe()
                _emit({"type": "status", "observer": node_id, "mono": time.monotonic(),
                       "alive": d["alive_count"], "suspect": d["suspected_count"], "failed": d["failed_count"],
                       "left": d["left_count"], **{k: d.get(k) for k in PACK_COUNTERS}})
            await asyncio.sleep(2.0)

    reporter = asyncio.create_task(report())
    commands = _stdin_commands("quit")
    while True:
        command, _, arg = (await commands.get()).partition(" ")
        if command in ("kill", "stop") and arg in nodes:
            await nodes.pop(arg).stop(graceful=command == "stop")
            _emit({"type": "stopped", "node_id": arg, "mono": time.monotonic()})
        elif command == "quit":
            break
    reporter.cancel()
    await asyncio.gather(*(m.stop(graceful=False) for m in nodes.values()), return_exceptions=True)
    for task in pumps:
        task.cancel()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ringrift_cluster.testing.drivers.swim")
    sub = parser.add_subparsers(dest="mode", required=True)
    node = sub.add_parser("node", help="one node")
    node.add_argument("--node-id", required=True)
    node.add_argument("--engine", choices=("ours", "raw"), default="ours")
    node.add_argument("--log-level", default="warning")
    pack = sub.add_parser("pack", help="many nodes in this process")
    pack.add_argument("--nodes", required=True, help="node ids, comma-separated")
    for p in (node, pack):
        p.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    if args.mode == "pack":
        _configure_logging("warning")
        return asyncio.run(run_pack(args.config, args.nodes.split(",")))
    _configure_logging(args.log_level)
    return asyncio.run((run_node if args.engine == "ours" else run_raw)(args.config, args.node_id))


if __name__ == "__main__":
    sys.exit(main())
