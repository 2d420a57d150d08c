"""SWIM membership over swim-p2p, isolated on a thread of its own.

``SwimMembership(config)`` implements ``Membership``. The engine (``engine.py``, plus our
transport in ``transport.py`` and the damped view in ``view.py``) runs on a private asyncio loop
in a daemon thread: a node whose own loop stalls (a busy host application; measured: a loop
blocked 1 s every 10 s made an in-loop swim-p2p report 82 false transitions) no longer starves the
failure detector. ``bridge.py`` is the only crossing: ``start``/``stop`` hand coroutines to the
SWIM loop through it and await them wrapped (never blocking the caller's loop); snapshots and
events come back through its ``hop`` only.

The library itself is imported lazily (its modules print to stdout on import), so importing this
module never needs swim-p2p; ``describe()["swim_available"]`` says whether it is there.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import io
import socket
import threading
import time
from types import MappingProxyType
from typing import Any, Callable, Mapping, Optional

import structlog

from ...config import ClusterConfig, SwimSettings
from ...errors import BackendUnavailable
from ...events import EventHub, Subscription
from ...model import Member, MembershipEvent, MemberState, NodeId

_ENGINE_MODULE = "ringrift_cluster.membership.swim.engine"
_START_TIMEOUT_S = 15.0
_STOP_TIMEOUT_S = 10.0
_import_lock = threading.Lock()


def _load_engine() -> Any:
    """Import the engine (and swim-p2p) once, swallowing the library's import-time prints."""
    with _import_lock:
        with contextlib.redirect_stdout(io.StringIO()):
            return importlib.import_module(_ENGINE_MODULE)


def swim_available() -> bool:
    try:
        import importlib.util

        return importlib.util.find_spec("swim") is not None
    except (ImportError, ValueError):
        return False


def failure_bound_s(s: SwimSettings) -> float:
    """How long after a crash every live member should report it failed (used by tests and
    shown as ``config.failure_timeout``): first probe and its retries, the suspicion timeout
    counted from when a member learned of the suspicion, checked once per protocol cycle (a cycle
    also waits on indirect probes), gossip, and the failed confirmation."""
    cycle = s.protocol_period_s + (s.ping_retries + 2) * s.ping_timeout_s
    return round(s.ping_retries * s.ping_timeout_s + s.suspicion_timeout_s + 4 * cycle
                 + s.failed_confirm_s, 2)


def _resolve(host: str) -> str:
    """An IPv4 address for ``host`` (swim-p2p splits "host:port" on ':' and cannot carry IPv6)."""
    infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_DGRAM)
    return str(infos[0][4][0])


class SwimMembership:
    """Membership by SWIM (swim-p2p), members keyed by node id; see the module docstring."""

    name = "swim"

    def __init__(self, config: ClusterConfig, *, logger: Any = None) -> None:
        self._config = config
        self._settings = config.swim
        self._log = logger if logger is not None else structlog.get_logger("ringrift.membership.swim")
        self._hub: EventHub[MembershipEvent] = EventHub()
        self._members: Mapping[NodeId, Member] = MappingProxyType({})
        self._counters: dict[str, Any] = {}
        self._seed_errors: list[str] = []
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Any = None  # bridge.EngineThread, once started
        self._hop: Any = None  # bridge.hop
        self._engine: Any = None
        self._sock: Optional[socket.socket] = None
        self._stream_sock: Optional[socket.socket] = None  # TCP on the SWIM port (udp transport)
        self._plan: Any = None
        self._started = False
        self._start_error: Optional[str] = None
        self._started_at = 0.0

    # -- Membership ------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._started

    def members(self) -> Mapping[NodeId, Member]:
        return self._members

    def subscribe(self) -> Subscription[MembershipEvent]:
        return self._hub.subscribe()

    async def start(self) -> None:
        if self._started:
            return
        self._loop = asyncio.get_running_loop()
        s = self._settings
        try:
            engine_module = await asyncio.to_thread(_load_engine)
        except ImportError as e:
            self._start_error = f"swim-p2p is not importable: {e}"
            raise BackendUnavailable(self._start_error) from e
        from . import bridge  # loaded with the engine above: no import cost, no prints

        plan = await asyncio.to_thread(self._make_plan, engine_module)
        self._sock = self._bind(engine_module)
        engine_module.install_library_log_bridge(self._log)
        stats = engine_module.TransportStats()
        self._hop = bridge.hop
        self._thread = bridge.EngineThread(f"swim-{self._config.node_id}")
        await self._thread.start()
        self._engine = engine_module.SwimEngine(plan, self._sock, stats, self._from_engine, self._log,
                                                stream_sock=self._stream_sock)
        try:
            await self._thread.run(self._engine.start(), _START_TIMEOUT_S)
        except BaseException as e:
            await self._close_thread()
            self._close_socket()
            self._start_error = f"SWIM engine failed to start on {s.bind_host}:{s.bind_port}: {e!r}"
            if isinstance(e, asyncio.CancelledError):
                raise
            raise BackendUnavailable(self._start_error) from e
        self._started = True
        self._started_at = time.monotonic()
        self._start_error = None
        self._log.info("swim_started", node_id=self._config.node_id, bind=f"{s.bind_host}:{s.bind_port}",
                       transport=s.transport, seeds=len(plan.seeds), seed_errors=len(self._seed_errors))

    async def stop(self, graceful: bool = True) -> None:
        if not self._started and self._thread is None:
            return
        self._started = False
        if self._engine is not None and self._thread is not None and self._thread.running:
            try:
                await self._thread.run(self._engine.shutdown(graceful), _STOP_TIMEOUT_S)
            except Exception as e:
                self._log.warning("swim_stop_failed", error=repr(e))
        await self._close_thread()
        self._close_socket()
        self._hub.close()
        self._log.info("swim_stopped", node_id=self._config.node_id, graceful=graceful)

    def describe(self) -> dict[str, Any]:
        s, c = self._settings, self._counters
        members = sorted(self._members.values(), key=lambda m: m.node_id)
        counts = {state: sum(1 for m in members if m.state is state) for state in MemberState}
        return {
            "name": self.name,
            "node_id": self._config.node_id,
            "swim_enabled": self._config.swim_enabled,
            "swim_available": swim_available(),
            "swim_started": self._started,
            "engine_running": bool(c.get("running", False)) and self._started,
            "config": {
                "bind_host": s.bind_host,
                "bind_port": s.bind_port,
                "transport": s.transport,
                "ping_interval": s.protocol_period_s,
                "ping_timeout": s.ping_timeout_s,
                "ping_retries": s.ping_retries,
                "indirect_probes": s.indirect_probes,
                "suspicion_timeout": s.suspicion_timeout_s,
                "suspect_report_after": s.suspect_report_after_s,
                "failed_confirm": s.failed_confirm_s,
                "failure_timeout": failure_bound_s(s),
                "lifeguard": s.lifeguard,
                "sync_interval": s.sync_interval_s,
                "preset": self._config.preset,
            },
            "members": [
                {"id": m.node_id, "state": m.state.value, "address": m.meta.get("swim_address", "")}
                for m in members
            ],
            "alive_count": counts[MemberState.ALIVE],
            "suspected_count": counts[MemberState.SUSPECT],
            "failed_count": counts[MemberState.FAILED],
            "left_count": counts[MemberState.LEFT],
            "raw_flaps": c.get("raw_flaps", 0),
            "raw_dead_flaps": c.get("raw_dead_flaps", 0),
            "raw_transitions": c.get("raw_transitions", 0),
            "refutations": c.get("refutations", 0),
            "failures_detected": c.get("failures_detected", 0),
            "leaves_detected": c.get("leaves_detected", 0),
            "self_refutations": c.get("self_refutations", 0),
            "pauses_detected": c.get("pauses_detected", 0),
            "restarts": c.get("restarts", 0),
            "last_error": c.get("last_error") or self._start_error,
            "incarnation": c.get("incarnation", 0),
            "unknown_addresses": c.get("unknown_address_count", len(c.get("unknown_addresses", ()))),
            "unknown_address_list": list(c.get("unknown_addresses", ()))[:20],
            "mismatched_ids": list(c.get("mismatched_ids", ())),
            "seed_errors": list(self._seed_errors),
            "messages_sent": c.get("messages_sent", 0),
            "messages_received": c.get("messages_received", 0),
            "bytes_sent": c.get("bytes_sent", 0),
            "bytes_received": c.get("bytes_received", 0),
            "send_errors": c.get("send_errors", 0),
            "dropped_messages": c.get("dropped", 0),
            "bounded_gossip": s.bounded_gossip,
            "packet_budget": s.packet_budget_bytes,
            **{key: c.get(key, 0) for key in (
                "oversize", "oversize_dropped", "compressed", "largest_datagram", "piggyback_depth",
                "piggyback_entries", "syncs", "indirect_probes", "forgotten", "library_members", "dead_told",
                "dead_reached")},
            "datagram_size_buckets": c.get("datagram_size_buckets", []),
            "datagram_sizes": c.get("datagram_sizes", []),
            "by_type": c.get("by_type", {}),
            "events_dropped": self._hub.dropped,
            "uptime_s": round(time.monotonic() - self._started_at, 3) if self._started else 0.0,
        }

    def on_engine_loop(self, fn: Callable[[Any], None]) -> None:
        """Run ``fn(engine)`` on the SWIM loop (test hooks: a library task that dies)."""
        if self._thread is None or self._engine is None:
            raise RuntimeError("the SWIM engine is not running")
        self._thread.call_soon(fn, self._engine)

    # -- setup -------------------------------------------------------------------------------------

    def _make_plan(self, engine_module: Any) -> Any:
        """Resolve every configured SWIM address to (IPv4, port) -> node id. Blocking (DNS)."""
        config, s = self._config, self._settings
        me = config.me
        try:
            self_ip = _resolve(me.address)
        except OSError as e:
            raise BackendUnavailable(
                f"SWIM cannot use this node's address hosts.{me.node_id} = {me.address!r}: {e}") from e
        self_addr = (self_ip, s.bind_port)
        addr_to_id: dict[tuple[str, int], NodeId] = {self_addr: me.node_id}
        id_to_addr: dict[NodeId, tuple[str, int]] = {me.node_id: self_addr}
        seeds: list[tuple[str, int]] = []
        errors: list[str] = []
        for peer in config.peers:
            try:
                ip = _resolve(peer.address)
            except OSError as e:
                errors.append(f"hosts.{peer.node_id}: address {peer.address!r} does not resolve to IPv4 ({e})")
                continue
            addr = (ip, peer.swim_port)
            if addr in addr_to_id:
                errors.append(f"hosts.{peer.node_id}: SWIM address {ip}:{peer.swim_port} is also "
                              f"{addr_to_id[addr]}'s; ignored")
                continue
            addr_to_id[addr] = peer.node_id
            id_to_addr[peer.node_id] = addr
            seeds.append(addr)
        for error in errors:
            self._log.warning("swim_bad_seed", error=error)
        if config.peers and not seeds:
            self._log.warning("swim_no_usable_seeds", node_id=me.node_id,
                              hint="no peer address resolved; this node can only be joined by others")
        self._seed_errors = errors
        return engine_module.EnginePlan(
            node_id=me.node_id, self_addr=self_addr, transport=s.transport, settings=s,
            seeds=tuple(seeds), addr_to_id=addr_to_id, hosts=dict(config.hosts), id_to_addr=id_to_addr,
        )

    def _bind(self, engine_module: Any) -> socket.socket:
        """Take the SWIM port exclusively, before the engine can talk to anyone."""
        s = self._settings
        host = s.bind_host or self._config.me.address
        try:
            bind_ip = host if host in ("0.0.0.0", "") else _resolve(host)
        except OSError as e:
            raise BackendUnavailable(f"SWIM bind host {host!r} does not resolve: {e}") from e
        try:
            sock = engine_module.bind_exclusive(s.transport, bind_ip or "0.0.0.0", s.bind_port)
        except OSError as e:
            if engine_module.port_in_use(e):
                message = (f"SWIM port {s.bind_port} on {bind_ip} is in use ({s.transport}; {e.strerror}): "
                           f"another ringrift node (or program) holds it; stop it or set swim.bind_port")
            else:
                message = f"SWIM cannot bind {s.transport} {bind_ip}:{s.bind_port}: {e}"
            self._start_error = message
            raise BackendUnavailable(message) from e
        if s.transport == "udp" and s.bounded_gossip:
            # Messages over the packet budget (full syncs at large N) go over TCP to this port.
            try:
                self._stream_sock = engine_module.bind_exclusive("tcp", bind_ip or "0.0.0.0", s.bind_port)
            except OSError as e:
                self._log.warning("swim_no_tcp_listener", port=s.bind_port, error=str(e),
                                  effect="messages over the packet budget are dropped (counted)")
        return sock

    # -- the thread ----------------------------------------------------------------------------------

    async def _close_thread(self) -> None:
        if self._thread is not None:
            await self._thread.close()
        self._thread = None
        self._engine = None

    def _close_socket(self) -> None:
        for sock in (self._sock, self._stream_sock):
            if sock is not None:
                sock.close()
        self._sock = self._stream_sock = None

    def _from_engine(self, snapshot: Mapping[NodeId, Member], events: list[MembershipEvent],
                     counters: dict[str, Any]) -> None:
        """Called on the SWIM thread: hop to the node's loop, the only way across."""
        self._hop(self._loop, self._apply, MappingProxyType(dict(snapshot)), events, counters)

    def _apply(self, snapshot: Mapping[NodeId, Member], events: list[MembershipEvent],
               counters: dict[str, Any]) -> None:
        self._members = snapshot
        self._counters = counters
        for event in events:
            self._hub.publish(event)
