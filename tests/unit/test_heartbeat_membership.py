"""The heartbeat membership's transitions on a fake clock (no network: heartbeats are handed in)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ringrift_cluster.config import load_config
from ringrift_cluster.membership.heartbeat import HeartbeatMembership
from ringrift_cluster.model import MemberState
from ringrift_cluster.nodeinfo import NodeInfo
from ringrift_cluster.peer_client import PeerClient
from ringrift_cluster.testing.stubs import ManualClock


@pytest.fixture
def membership(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"hosts": {n: {"p2p_host": "127.0.0.1", "p2p_port": 9000 + i, "swim_port": 9100 + i,
                                                  "raft_port": 9200 + i} for i, n in enumerate(["a", "b", "c"])}}))
    config = load_config(path, env={"RINGRIFT_NODE_ID": "a"})
    clock = ManualClock(1000.0)
    me = NodeInfo(node_id="a", host="127.0.0.1", port=9000)
    hb = HeartbeatMembership(config, PeerClient("a"), lambda: me, clock=clock)
    return hb, clock


def advance(hb: HeartbeatMembership, clock: ManualClock, seconds: float, step: float = 0.25) -> None:
    """Time passes with the sweep running on schedule (as it does in a live node)."""
    end = clock.now + seconds
    while clock.now < end:
        clock.now = min(end, clock.now + step)
        hb.sweep()


def drain(sub) -> list[tuple[str, str]]:
    out = []
    while not sub.queue.empty():
        event = sub.queue.get_nowait()
        out.append((event.kind.value, event.node_id))
    return out


def info(node_id: str, **kw: object) -> NodeInfo:
    return NodeInfo(node_id=node_id, host="127.0.0.1", port=9001, **kw)


async def test_alive_suspect_failed_alive_then_left(membership) -> None:
    hb, clock = membership
    events = hb.subscribe()
    hb.sweep()
    reply = hb.handle_heartbeat(info("b", role="follower"), "127.0.0.1")
    assert reply.node_id == "a"
    assert hb.members()["b"].state is MemberState.ALIVE
    advance(hb, clock, hb.suspect_after_s - 0.01, step=0.01)
    assert hb.members()["b"].state is MemberState.ALIVE
    advance(hb, clock, 0.02, step=0.01)
    assert hb.members()["b"].state is MemberState.SUSPECT and hb.members()["b"].is_alive
    advance(hb, clock, hb.failed_after_s)
    hb.sweep()  # a second sweep reports nothing new
    assert hb.members()["b"].state is MemberState.FAILED and not hb.members()["b"].is_alive
    hb.handle_heartbeat(info("b"), "127.0.0.1")
    assert hb.members()["b"].state is MemberState.ALIVE
    hb.handle_heartbeat(info("b", leaving=True), "127.0.0.1")
    advance(hb, clock, 2 * hb.failed_after_s, step=1.0)
    assert hb.members()["b"].state is MemberState.LEFT  # left stays left, never failed
    hb.handle_heartbeat(info("b"), "127.0.0.1")
    assert drain(events) == [("joined", "b"), ("suspect", "b"), ("failed", "b"), ("alive", "b"), ("left", "b"), ("joined", "b")]


async def test_jittered_thresholds(membership) -> None:
    hb, _ = membership
    config_factor = hb.suspect_after_s / 90.0
    assert 0.95 <= config_factor <= 1.05
    assert hb.failed_after_s == pytest.approx(180.0 * config_factor)


async def test_socket_address_is_trusted_over_the_reported_host(membership) -> None:
    hb, _ = membership
    hb.handle_heartbeat(NodeInfo(node_id="b", host="192.168.9.9", port=9001), "127.0.0.2")
    member = hb.members()["b"]
    assert member.host == "127.0.0.2" and member.meta["reported_host"] == "192.168.9.9"


async def test_own_heartbeat_and_strangers_saying_goodbye_are_ignored(membership) -> None:
    hb, _ = membership
    hb.handle_heartbeat(info("a"), "127.0.0.1")
    hb.handle_heartbeat(info("zz", leaving=True), "127.0.0.1")
    assert dict(hb.members()) == {}


async def test_members_are_keyed_by_node_id_with_metadata(membership) -> None:
    hb, _ = membership
    hb.handle_heartbeat(info("c", capabilities=["gpu", "train"], has_gpu=True, gpu_name="H100", role="follower"), "127.0.0.1")
    member = hb.members()["c"]
    assert member.capabilities == ("gpu", "train") and member.has_gpu and member.gpu_name == "H100"
    assert member.raft_address == "127.0.0.1:9202" and member.source == "heartbeat"
    assert all(":" not in key for key in hb.members())


async def test_a_local_stall_is_not_taken_for_peer_deaths(membership) -> None:
    hb, clock = membership
    events = hb.subscribe()
    hb.sweep()
    hb.handle_heartbeat(info("b"), "127.0.0.1")
    advance(hb, clock, 1.0)
    clock.now += 10 * hb.failed_after_s  # we were SIGSTOPped: no sweep ran meanwhile
    hb.sweep()
    assert hb.members()["b"].state is MemberState.ALIVE and hb.local_stalls == 1
    advance(hb, clock, hb.failed_after_s + 1)  # but silence witnessed after the stall counts
    assert hb.members()["b"].state is MemberState.FAILED
    assert drain(events) == [("joined", "b"), ("suspect", "b"), ("failed", "b")]
