"""``within``: the package's one wait with a timeout. Unlike ``asyncio.wait_for`` before Python
3.12, it never drops a cancellation that arrives in the same loop iteration as the result; that
race once left a Bully leader's election loop running after its node's stop had cancelled it
(the stop waited forever; the test harness killed the node after 15 s)."""

from __future__ import annotations

import ast
import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

import ringrift_cluster
from ringrift_cluster.config import load_config
from ringrift_cluster.consensus.bully import BullyElection
from ringrift_cluster.timeouts import within

PACKAGE = Path(ringrift_cluster.__file__).resolve().parent


def test_the_result_comes_back() -> None:
    async def run() -> int:
        async def seven() -> int:
            await asyncio.sleep(0)
            return 7
        return await within(seven(), 1.0)

    assert asyncio.run(run()) == 7


def test_no_limit_waits_for_the_result() -> None:
    async def run() -> str:
        return await within(asyncio.sleep(0.01, result="done"), None)

    assert asyncio.run(run()) == "done"


def test_time_running_out_raises_and_cancels_what_was_awaited() -> None:
    async def run() -> bool:
        cancelled = asyncio.Event()

        async def forever() -> None:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        with pytest.raises(asyncio.TimeoutError):
            await within(forever(), 0.05)
        return cancelled.is_set()

    assert asyncio.run(run())


def test_a_cancel_in_the_same_iteration_as_the_wake_up_is_delivered() -> None:
    """A wake-up loop, woken and cancelled at once, ends (``asyncio.wait_for`` on 3.11 loops on)."""
    async def run() -> str:
        wake = asyncio.Event()
        rounds = 0

        async def loop() -> None:
            nonlocal rounds
            while True:
                try:
                    await within(wake.wait(), 0.05)
                except asyncio.TimeoutError:
                    pass
                wake.clear()
                rounds += 1

        task = asyncio.create_task(loop())
        await asyncio.sleep(0.01)
        wake.set()
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=2.0)
        if not done:
            task.cancel()
            return f"still running after 2 s ({rounds} rounds since)"
        return "cancelled" if task.cancelled() else f"ended otherwise: {task}"

    assert asyncio.run(run()) == "cancelled"


class NoMembers:
    def members(self) -> dict[str, Any]:
        return {}


class NoPeers:
    async def post(self, *args: Any, **kwargs: Any) -> tuple[int, Any]:
        return 200, {}


def test_a_bully_election_stops_when_woken_as_its_stop_begins(tmp_path: Path) -> None:
    """The CI failure this module exists for: a member leaves (the election loop is woken) just as
    the node stops (the loop is cancelled)."""
    hosts = {n: {"p2p_host": "127.0.0.1", "p2p_port": 9100 + i, "swim_port": 9200 + i, "raft_port": 9300 + i}
             for i, n in enumerate("abc")}
    path = tmp_path / "cluster.yaml"
    path.write_text(json.dumps({"hosts": hosts, "ringrift_cluster": {"preset": "local", "consensus_mode": "bully"}}))
    config = load_config(path, env={}, overrides={"node_id": "a", "data_dir": str(tmp_path / "a")})

    async def run() -> str:
        election = BullyElection(config, NoPeers(), NoMembers())  # type: ignore[arg-type]
        await election.start()
        for _ in range(5):
            await asyncio.sleep(0)  # the loop is now waiting for a wake-up
        election._wake.set()
        stopping = asyncio.create_task(election.stop())
        done, _ = await asyncio.wait({stopping}, timeout=5.0)
        return "stopped" if done else "stop still waiting after 5 s"

    assert asyncio.run(run()) == "stopped"


def test_the_package_waits_with_a_timeout_only_through_within() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "wait_for" \
                    and isinstance(node.value, ast.Name) and node.value.id == "asyncio":
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == [], f"use ringrift_cluster.timeouts.within, not asyncio.wait_for: {offenders}"
