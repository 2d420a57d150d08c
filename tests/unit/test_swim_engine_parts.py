"""SWIM backend pieces that need no cluster: settings, the library config, our transport, logs."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import io
import json
import logging
import re
import socket
from pathlib import Path
from typing import Any

import pytest

from ringrift_cluster.config import PRESETS, SwimSettings, validate_swim_settings
from ringrift_cluster.errors import ConfigError
from ringrift_cluster.membership.swim.membership import _load_engine, failure_bound_s
from ringrift_cluster.testing import wait

ROOT = Path(__file__).resolve().parents[2]
engine = _load_engine()  # imports swim-p2p with its import-time prints swallowed

from ringrift_cluster.membership.swim.sockets import bind_exclusive, port_in_use  # noqa: E402
from ringrift_cluster.membership.swim.transport import TransportStats, UdpEngineTransport  # noqa: E402


def test_library_config_sets_every_key_the_library_knows(monkeypatch: pytest.MonkeyPatch) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        from swim.config import get_config
    ours = engine.library_config(SwimSettings())
    assert set(get_config()) <= set(ours)
    # The keys the protocol really reads (found in its source) are all set too.
    assert {"PING_TIMEOUT_BASE", "PING_TIMEOUT_MIN", "PING_TIMEOUT_MAX", "FULL_SYNC_INTERVAL",
            "PUSH_PULL_SYNC_PROBABILITY", "GOSSIP_FANOUT_FACTOR", "SYNC_FANOUT"} <= set(ours)
    # A stray SWIM_* variable changes nothing: we never read the library's environment defaults.
    monkeypatch.setenv("SWIM_PING_TIMEOUT", "9.0")
    monkeypatch.setenv("SWIM_SUSPECT_TIMEOUT", "60")
    monkeypatch.setenv("SWIM_LIFEGUARD_ENABLED", "true")
    assert engine.library_config(SwimSettings()) == ours
    assert ours["LIFEGUARD_ENABLED"] is False and ours["SUSPECT_TIMEOUT"] == SwimSettings().suspicion_timeout_s


def test_presets_pass_the_checks_and_lan_is_the_default() -> None:
    for name in ("lan", "local"):
        settings = dataclasses.replace(SwimSettings(), **PRESETS[name].get("swim", {}))
        validate_swim_settings(settings)
        assert failure_bound_s(settings) > settings.suspicion_timeout_s
    assert dataclasses.replace(SwimSettings(), **PRESETS["lan"]["swim"]) == SwimSettings()


@pytest.mark.parametrize("field,value,key", [
    ("ping_retries", 0, "ringrift_cluster.swim.ping_retries"),
    ("indirect_probes", 11, "ringrift_cluster.swim.indirect_probes"),
    ("suspect_report_after_s", 9.0, "ringrift_cluster.swim.suspect_report_after_s"),
    ("transport", "quic", "ringrift_cluster.swim.transport"),
])
def test_bad_settings_are_config_errors(field: str, value: Any, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_swim_settings(dataclasses.replace(SwimSettings(), **{field: value}))
    assert info.value.key == key


@pytest.mark.parametrize("kind", ["udp", "tcp"])
def test_exclusive_bind_refuses_a_second_socket(kind: str) -> None:
    first = bind_exclusive(kind, "127.0.0.1", 0)
    port = first.getsockname()[1]
    try:
        with pytest.raises(OSError) as info:
            bind_exclusive(kind, "127.0.0.1", port)
        assert info.value.errno == errno.EADDRINUSE and port_in_use(info.value)
        # Even the library's own way (SO_REUSEADDR + SO_REUSEPORT on 0.0.0.0) cannot share it.
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        with pytest.raises(OSError):
            other.bind(("0.0.0.0", port))
        other.close()
    finally:
        first.close()


def _msg(kind: str, sender: tuple[str, int], msg_id: str, **extra: Any) -> bytes:
    return b"U" + json.dumps({"type": kind, "from": f"{sender[0]}:{sender[1]}", "id": msg_id, **extra}).encode()



async def until(probe, what: str, timeout: float = 5.0) -> None:
    """Yield to the loop until ``probe()`` holds (a deadline, never a fixed sleep)."""
    await wait.until(probe, timeout, interval=0.005, what=what)

async def test_pongs_go_to_the_ping_that_asked_and_stale_ones_are_dropped() -> None:
    stats = TransportStats()
    sock = bind_exclusive("udp", "127.0.0.1", 0)
    me = ("127.0.0.1", sock.getsockname()[1])
    transport = UdpEngineTransport(sock, stats)
    await transport.bind(me)
    a, b = ("127.0.0.1", 1), ("127.0.0.1", 2)
    try:
        async def ping(target: tuple[str, int], msg_id: str) -> tuple[str, int]:
            await transport.send(b"U" + json.dumps({"type": "PING", "from": "x:1", "id": msg_id}).encode(), target)
            _, sender = await transport.receive(timeout=2.0, msg_type="PONG")
            return sender

        to_a = asyncio.create_task(ping(a, "ida"))
        to_b = asyncio.create_task(ping(b, "idb"))
        await until(lambda: len(transport._pong_waiters) == 2, "both pings wait for their PONG")
        # Replies arrive in the "wrong" order, plus a stale one nobody asked for.
        transport._deliver(_msg("PONG", ("127.0.0.1", 3), "old"), ("127.0.0.1", 3))
        transport._deliver(_msg("PONG", b, "idb"), b)
        transport._deliver(_msg("PONG", a, "ida"), a)
        assert await to_a == a and await to_b == b
        assert stats.stale_pongs == 1
        # Other messages reach the library's receive loop, with the sender's *claimed* address.
        seen: list[tuple[bytes, tuple[str, int]]] = []
        await transport.start_receiver(lambda data, sender: seen.append((data, sender)))
        transport._deliver(_msg("HEARTBEAT", ("10.0.0.9", 7947), "h1"), ("127.0.0.1", 55555))
        await until(lambda: seen, "the HEARTBEAT reaches the receive loop")
        assert [s for _, s in seen] == [("10.0.0.9", 7947)]
        assert stats.messages_received == 4 and stats.bytes_sent > 0
    finally:
        await transport.close()
        sock.close()


async def test_a_slow_ping_req_does_not_block_other_messages() -> None:
    stats = TransportStats()
    sock = bind_exclusive("udp", "127.0.0.1", 0)
    transport = UdpEngineTransport(sock, stats)
    await transport.bind(("127.0.0.1", sock.getsockname()[1]))
    handled: list[str] = []

    async def handler(data: bytes, sender: tuple[str, int]) -> None:
        kind = json.loads(data[1:])["type"]
        if kind == "PING-REQ":
            await asyncio.sleep(1.0)  # the library waits for the target's PONG here
        handled.append(kind)

    try:
        await transport.start_receiver(handler)
        transport._deliver(_msg("PING-REQ", ("127.0.0.1", 5), "r1", target="127.0.0.1:6"), ("127.0.0.1", 5))
        transport._deliver(_msg("PING", ("127.0.0.1", 7), "p1"), ("127.0.0.1", 7))
        await until(lambda: "PING" in handled, "the PING is handled while the PING-REQ waits")
        assert handled == ["PING"] and "PING-REQ" not in handled
    finally:
        await transport.close()
        sock.close()


def test_library_log_bridge_rate_limits_per_call_site() -> None:
    records: list[tuple[str, dict[str, Any]]] = []

    class Log:
        def warning(self, event: str, **kw: Any) -> None:
            records.append((event, kw))

    bridge = engine.LibraryLogBridge(Log(), every_s=60.0)
    logger = logging.getLogger("swim.test.bridge")
    logger.propagate = False
    logger.addHandler(bridge)
    try:
        for i in range(50):
            logger.warning("TIMEOUT waiting for PONG from 127.0.0.1:%d", i)
        logger.info("chatty info is not forwarded")
    finally:
        logger.removeHandler(bridge)
    assert len(records) == 1 and records[0][0] == "swim_library_log"


def test_only_the_swim_bridge_imports_swim_p2p() -> None:
    pattern = re.compile(r"^\s*(import swim\b|from swim(\.| import))", re.MULTILINE)
    importers = sorted(
        str(p.relative_to(ROOT)) for p in (ROOT / "ringrift_cluster").rglob("*.py") if pattern.search(p.read_text())
    )
    assert importers == ["ringrift_cluster/membership/swim/bridge.py"]
    # The public module imports the engine, and so the library, lazily (it prints on import).
    public = (ROOT / "ringrift_cluster/membership/swim/membership.py").read_text()
    assert not re.search(r"^from \.(bridge|engine) import|^from \. import .*\b(bridge|engine)\b", public, re.MULTILINE)
