"""Legacy membership: HTTP heartbeats, ALIVE / SUSPECT / FAILED by silence.

Each node POSTs its NodeInfo to ``/heartbeat`` of every known peer every ``interval_s`` and reads
the peer's NodeInfo from the reply, so one exchange refreshes both sides. A peer silent for
``suspect_timeout_s`` is suspect, for ``peer_timeout_s`` failed; both timeouts are scaled by this
node's deterministic jitter. A graceful stop sends a last heartbeat marked ``leaving``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

import structlog

from ..config import ClusterConfig
from ..events import EventHub, Subscription
from ..model import EventKind, Member, MembershipEvent, MemberState
from ..nodeinfo import NodeInfo, NodeInfoError
from ..peer_client import PeerClient, PeerUnreachable


@dataclass
class _Peer:
    node_id: str
    state: MemberState
    last_heard: float  # monotonic
    since: float  # monotonic time the current state began
    host: str
    api_port: int
    info: NodeInfo
    extra: dict[str, Any] = field(default_factory=dict)


class HeartbeatMembership:
    """Membership by HTTP heartbeats (the host's protocol, kept as the fallback backend)."""

    name = "heartbeat"

    def __init__(
        self,
        config: ClusterConfig,
        client: PeerClient,
        self_info: Callable[[], NodeInfo],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._client = client
        self._self_info = self_info
        self._clock = clock
        self._log = structlog.get_logger("ringrift.membership.heartbeat")
        hb = config.heartbeat
        self.suspect_after_s = hb.suspect_timeout_s * config.jitter_factor
        self.failed_after_s = hb.peer_timeout_s * config.jitter_factor
        # Where to send heartbeats: the configured hosts, plus peers that contacted us first.
        self._targets: dict[str, tuple[str, int]] = {h.node_id: (h.address, h.api_port) for h in config.peers}
        self._peers: dict[str, _Peer] = {}
        self._hub: EventHub[MembershipEvent] = EventHub()
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self._bad_replies: set[str] = set()
        self.heartbeats_sent = 0
        self.heartbeats_received = 0
        self.local_stalls = 0
        self._sweep_period_s = min(hb.interval_s / 4, 1.0)
        # A sweep this late means we, not our peers, were stopped.
        self._stall_threshold_s = max(3 * self._sweep_period_s, hb.interval_s)
        self._last_sweep: float | None = None

    # -- Membership interface ------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._started

    async def start(self) -> None:
        self._started = True
        self._tasks = [
            asyncio.create_task(self._send_loop(), name="heartbeat-send"),
            asyncio.create_task(self._sweep_loop(), name="heartbeat-sweep"),
        ]

    async def stop(self, graceful: bool = True) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if graceful and self._started:
            body = self._self_info()
            payload = {**body.to_dict(), "leaving": True}
            alive = [n for n, p in self._peers.items() if p.state in (MemberState.ALIVE, MemberState.SUSPECT)]
            await asyncio.gather(
                *(self._post_heartbeat(n, payload) for n in alive if n in self._targets),
                return_exceptions=True,
            )
        self._started = False
        self._hub.close()

    def members(self) -> Mapping[str, Member]:
        return MappingProxyType({node_id: self._member(p) for node_id, p in self._peers.items()})

    def subscribe(self) -> Subscription[MembershipEvent]:
        return self._hub.subscribe()

    def describe(self) -> dict[str, Any]:
        now = self._clock()
        counts = {state.value: 0 for state in MemberState}
        for peer in self._peers.values():
            counts[peer.state.value] += 1
        return {
            "backend": self.name,
            "started": self._started,
            "interval_s": self._config.heartbeat.interval_s,
            "suspect_after_s": round(self.suspect_after_s, 3),
            "failed_after_s": round(self.failed_after_s, 3),
            "counts": counts,
            "heartbeats_sent": self.heartbeats_sent,
            "heartbeats_received": self.heartbeats_received,
            "local_stalls": self.local_stalls,
            "peers": {
                node_id: {"state": p.state.value, "seconds_since_heartbeat": round(now - p.last_heard, 3)}
                for node_id, p in sorted(self._peers.items())
            },
        }

    # -- Receiving -----------------------------------------------------------------------------

    def handle_heartbeat(self, info: NodeInfo, remote_host: str | None) -> NodeInfo:
        """A peer's heartbeat arrived over HTTP: record it and answer with our NodeInfo.

        The socket's address is trusted over the self-reported host (kept as reported_host).
        """
        self.heartbeats_received += 1
        if info.node_id != self._config.node_id:
            host = remote_host or info.host
            if info.node_id not in self._targets:
                self._targets[info.node_id] = (host, info.port)
            self._heard(info, host)
        return self._self_info()

    def peer_info(self, node_id: str) -> NodeInfo | None:
        peer = self._peers.get(node_id)
        return peer.info if peer else None

    # -- Internals -----------------------------------------------------------------------------

    def _heard(self, info: NodeInfo, host: str) -> None:
        now = self._clock()
        peer = self._peers.get(info.node_id)
        reported = info.host if info.host != host else ""
        if reported != info.reported_host:
            info = NodeInfo(**{**info.to_dict(), "reported_host": reported, "leaving": info.leaving})
        if peer is None:
            if info.leaving:
                return  # a stranger saying goodbye: nothing to record
            self._peers[info.node_id] = _Peer(info.node_id, MemberState.ALIVE, now, now, host, info.port, info)
            self._emit(EventKind.JOINED, info.node_id, None)
            return
        peer.last_heard, peer.host, peer.api_port, peer.info = now, host, info.port, info
        if info.leaving:
            if peer.state is not MemberState.LEFT:
                self._transition(peer, MemberState.LEFT, EventKind.LEFT, None, now)
        elif peer.state is MemberState.LEFT:
            self._transition(peer, MemberState.ALIVE, EventKind.JOINED, None, now)
        elif peer.state is not MemberState.ALIVE:
            self._transition(peer, MemberState.ALIVE, EventKind.ALIVE, now - peer.since, now)

    def sweep(self) -> None:
        """Move silent peers to SUSPECT / FAILED. Runs on a timer; public for tests."""
        now = self._clock()
        self._forgive_local_stall(now)
        for peer in self._peers.values():
            silence = now - peer.last_heard
            if peer.state in (MemberState.LEFT, MemberState.FAILED):
                continue
            if silence >= self.failed_after_s:
                self._transition(peer, MemberState.FAILED, EventKind.FAILED, silence, now)
            elif silence >= self.suspect_after_s and peer.state is MemberState.ALIVE:
                self._transition(peer, MemberState.SUSPECT, EventKind.SUSPECT, silence, now)

    def _forgive_local_stall(self, now: float) -> None:
        """Silence we did not witness is no evidence: after a local stall (SIGSTOP, a frozen
        loop, a suspended VM) the heartbeats peers sent meanwhile are still queued unread, so
        judging them now would declare every healthy peer failed. Credit the stall to them."""
        gap = now - self._last_sweep if self._last_sweep is not None else 0.0
        self._last_sweep = now
        if gap <= self._stall_threshold_s:
            return
        stalled = gap - self._sweep_period_s
        for peer in self._peers.values():
            peer.last_heard += stalled
        self.local_stalls += 1
        self._log.warning("local_stall_detected", stalled_s=round(stalled, 3))

    def _transition(self, peer: _Peer, state: MemberState, kind: EventKind, after_s: float | None, now: float) -> None:
        peer.state, peer.since = state, now
        self._emit(kind, peer.node_id, after_s)

    def _emit(self, kind: EventKind, node_id: str, after_s: float | None) -> None:
        fields = {"node_id": node_id, "source": self.name}
        if after_s is not None:
            fields["after_s"] = round(after_s, 3)
        self._log.info(f"member_{kind.value}", **fields)
        self._hub.publish(MembershipEvent(kind=kind, node_id=node_id, source=self.name, after_s=after_s))

    async def _send_loop(self) -> None:
        interval = self._config.heartbeat.interval_s
        while True:
            started = self._clock()
            payload = self._self_info().to_dict()
            await asyncio.gather(*(self._post_heartbeat(n, payload) for n in list(self._targets)))
            await asyncio.sleep(max(0.0, interval - (self._clock() - started)))

    async def _sweep_loop(self) -> None:
        # Sweep several times per heartbeat so a verdict is late by a fraction of an interval.
        while True:
            self.sweep()
            await asyncio.sleep(self._sweep_period_s)

    async def _post_heartbeat(self, node_id: str, payload: dict[str, Any]) -> None:
        host, port = self._targets[node_id]
        try:
            status, body = await self._client.post(_url(host, port), "/heartbeat", payload, self._config.heartbeat.request_timeout_s)
            self.heartbeats_sent += 1
        except PeerUnreachable:
            return  # silence is the signal; the sweep turns it into suspect / failed
        if status != 200:
            self._warn_once(node_id, f"status {status}: {body}")
            return
        try:
            info = NodeInfo.parse(body)
        except NodeInfoError as e:
            self._warn_once(node_id, str(e))
            return
        if info.node_id != node_id:
            self._warn_once(node_id, f"answered as {info.node_id!r}")
            return
        self._bad_replies.discard(node_id)
        self._heard(info, host)

    def _warn_once(self, node_id: str, reason: str) -> None:
        if node_id not in self._bad_replies:
            self._bad_replies.add(node_id)
            self._log.warning("heartbeat_reply_rejected", node_id=node_id, reason=reason)

    def _member(self, peer: _Peer) -> Member:
        host_config = self._config.hosts.get(peer.node_id)
        raft_address = f"{host_config.address}:{host_config.raft_port}" if host_config else ""
        info = peer.info
        return Member(
            node_id=peer.node_id,
            state=peer.state,
            host=peer.host,
            api_port=peer.api_port,
            role=info.role,
            raft_address=raft_address,
            capabilities=tuple(info.capabilities),
            has_gpu=info.has_gpu,
            gpu_name=info.gpu_name,
            last_seen=peer.last_heard,
            source=self.name,
            meta={
                "leader_id": info.leader_id,
                "leader_term": info.leader_term,
                "version": info.version,
                "reported_host": info.reported_host,
                "cpu_percent": info.cpu_percent,
                "memory_percent": info.memory_percent,
            },
        )


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
