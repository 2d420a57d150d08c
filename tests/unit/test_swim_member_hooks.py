"""The engine's hooks on swim-p2p's real ``MemberList``: what a probe answer may and may not undo."""

from __future__ import annotations

import asyncio
import types
from typing import Any

from ringrift_cluster.membership.swim.membership import _load_engine

_load_engine()  # imports swim-p2p with its import-time prints swallowed

from swim.protocol.member import MemberList, MemberState  # noqa: E402

from ringrift_cluster.membership.swim import hooks  # noqa: E402

ME = ("127.0.0.1", 7000)
PEER = ("127.0.0.1", 7003)


class _Engine:
    """What ``hook_member_list`` reads and writes on the engine."""

    def __init__(self) -> None:
        self.plan = types.SimpleNamespace(self_addr=ME)
        self.status = types.SimpleNamespace(deaths_originated=0)
        self._pending_announce = False
        self._announce_addrs: set[Any] = set()
        self._suspected_here: set[Any] = set()

    def _own_task(self, coro: Any) -> None:
        coro.close()

    async def _send_digest(self, addrs: Any, targets: Any) -> None:
        return None


def hooked(peer_state: MemberState, metadata: dict[str, Any]) -> MemberList:
    listed = MemberList(ME)
    listed.add_member(PEER)
    peer = listed.get_member(PEER)
    peer.state, peer.incarnation, peer.metadata = peer_state, 1000, metadata
    hooks.hook_member_list(_Engine(), types.SimpleNamespace(members=listed))
    return listed


def test_a_ping_answer_never_brings_back_a_member_that_left() -> None:
    async def run() -> None:
        listed = hooked(MemberState.DEAD, {"id": "n03", "left": True})
        # The library's resurrection after a PONG (direct) and after a PING-REQ-ACK (indirect).
        assert await listed.mark_alive(PEER, incarnation=1001, recovery_method="ping_response") is False
        assert await listed.mark_alive(PEER) is False
        peer = listed.get_member(PEER)
        assert (peer.state, peer.incarnation) == (MemberState.DEAD, 1000)

    asyncio.run(run())


def test_a_failed_member_that_answers_is_alive_again() -> None:
    async def run() -> None:
        listed = hooked(MemberState.DEAD, {"id": "n03"})
        assert await listed.mark_alive(PEER, incarnation=1001, recovery_method="ping_response") is True
        assert listed.get_member(PEER).state is MemberState.ALIVE

    asyncio.run(run())


def test_a_member_that_left_rejoins_by_its_own_newer_word() -> None:
    async def run() -> None:
        listed = hooked(MemberState.DEAD, {"id": "n03", "left": True})
        restarted = {"addr": f"{PEER[0]}:{PEER[1]}", "state": "ALIVE", "incarnation": 5000,
                     "metadata": {"id": "n03"}}
        assert await listed.merge_digest({"entries": [restarted]}) == 1
        peer = listed.get_member(PEER)
        assert (peer.state, peer.incarnation, peer.metadata.get("left")) == (MemberState.ALIVE, 5000, None)

    asyncio.run(run())
