"""SWIM with bounded gossip on real nodes: 40 nodes keep every datagram within the packet budget
and fail a silently killed member everywhere; a member list far bigger than one datagram still
reaches every node, through anti-entropy (full syncs over TCP)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest


from ringrift_cluster.testing.swim_clusters import PackCluster, wait_for, write_cluster_yaml
from ringrift_cluster.testing.wait import until

from ringrift_cluster.config import load_config
from ringrift_cluster.membership.swim import SwimMembership, failure_bound_s

pytestmark = pytest.mark.integration
BUDGET = 1400


def test_forty_nodes_datagrams_within_budget_and_a_kill_is_failed_everywhere(tmp_path: Path) -> None:
    cluster = PackCluster(tmp_path, 40, per_process=10)
    cluster.start()
    try:
        wait_for(lambda: len(cluster.started) == 40, 120, "40 nodes started", lambda: len(cluster.started))
        wait_for(cluster.converged, 90, "every node sees the 39 others alive",
                   lambda: sorted(s["alive"] for s in cluster.snapshot().values())[:8])
        converged_at = time.monotonic()
        victim = cluster.ids[17]
        t_kill = cluster.kill(victim)
        survivors = cluster.live()
        bound = failure_bound_s(load_config(cluster.config_path, env={}, overrides={"node_id": survivors[0]}).swim)
        def missing() -> list[str]:
            return sorted(set(survivors) - set(cluster.events_about(victim, "failed", t_kill)))

        wait_for(lambda: not missing(), bound + 10, f"{victim} failed on all {len(survivors)} survivors",
                   lambda: {n: cluster.snapshot().get(n) for n in missing()[:3]})
        last = max(cluster.events_about(victim, "failed", t_kill).values())
        wait_for(lambda: all(st["mono"] > last for st in cluster.snapshot().values()), 10,
                   "counters from every survivor after the last report")
        status = cluster.snapshot()
        assert set(status) == set(survivors)
        for node_id, st in status.items():
            assert st["largest_datagram"] <= BUDGET, f"{node_id} sent a {st['largest_datagram']} B datagram"
            assert st["datagram_sizes"][-3:] == [0, 0, 0], f"{node_id}: datagrams over 4 KB {st['datagram_sizes']}"
            assert st["oversize_dropped"] == 0 and st["failed"] == 1
        sent_heartbeats = sum((st["by_type"] or {}).get("sent:HEARTBEAT", [0, 0])[0] for st in status.values())
        assert sent_heartbeats > 40 * 10  # gossip ran; each of its datagrams was within budget
        false = [(e["observer"], e["kind"], e["node_id"]) for e in cluster.events
                 if e["kind"] in ("suspect", "failed") and e["node_id"] != victim and e["mono"] >= converged_at]
        assert not [f for f in false if f[1] == "failed"], f"false failures: {false}"
    finally:
        cluster.close()


def _inject(membership: SwimMembership, start: int, count: int) -> None:
    """Put ``count`` synthetic DEAD members straight into the library's table of one running node,
    without recording them as changes: no heartbeat will ever carry them, only a full sync."""
    from swim.protocol.member import Member, MemberState

    done = threading.Event()

    def inject(engine: Any) -> None:
        members = engine.node.members
        for i in range(start, start + count):
            addr = (f"127.0.1.{1 + i // 250}", 40000 + i)
            members._members[addr] = Member(addr=addr, state=MemberState.DEAD, incarnation=1,
                                            metadata={"id": f"synthetic-{i:04d}", "rack": f"rack-{i % 40:02d}"})
        done.set()

    membership.on_engine_loop(inject)
    assert done.wait(5), "the SWIM loop did not run the injection within 5 s"


async def _wait(condition: Any, timeout: float, what: str, seen: Any) -> None:
    await until(condition, timeout, interval=0.2, what=what, describe=seen)


def test_member_list_far_bigger_than_a_datagram_converges_through_anti_entropy(tmp_path: Path) -> None:
    ids = ["a01", "a02", "a03"]
    path = tmp_path / "cluster.yaml"
    write_cluster_yaml(path, ids, swim={"sync_interval_s": 5.0})

    async def run() -> None:
        nodes = {i: SwimMembership(load_config(path, env={}, overrides={"node_id": i})) for i in ids}
        try:
            await nodes["a01"].start()
            _inject(nodes["a01"], 0, 500)  # ~90 KB as a digest: 60x the packet budget
            await asyncio.gather(nodes["a02"].start(), nodes["a03"].start())

            def sizes() -> dict[str, int]:
                return {i: m.describe()["library_members"] for i, m in nodes.items()}

            # The joiners pull a01's list (or each other's) in full, on start.
            await _wait(lambda: all(v == 503 for v in sizes().values()), 30, "503 members everywhere", sizes)
            # A second batch after everyone is up: only the periodic anti-entropy can carry it.
            _inject(nodes["a01"], 500, 500)
            await _wait(lambda: all(v == 1003 for v in sizes().values()), 40, "1003 members everywhere", sizes)
            for i, m in nodes.items():
                d = m.describe()
                assert d["largest_datagram"] <= BUDGET, f"{i} sent a {d['largest_datagram']} B datagram"
                assert d["oversize_dropped"] == 0
                assert d["alive_count"] == 2 and d["failed_count"] == 0  # synthetic ones are not hosts
            assert sum(m.describe()["oversize"] for m in nodes.values()) >= 2  # full syncs went over TCP
        finally:
            await asyncio.gather(*(m.stop(graceful=False) for m in nodes.values()), return_exceptions=True)

    asyncio.run(run())


def test_dead_members_are_forgotten_after_the_tombstone_period_but_stay_failed(tmp_path: Path) -> None:
    ids = ["t01", "t02", "t03"]
    path = tmp_path / "cluster.yaml"
    write_cluster_yaml(path, ids, swim={"tombstone_s": 5.0})

    async def run() -> None:
        nodes = {i: SwimMembership(load_config(path, env={}, overrides={"node_id": i})) for i in ids}
        try:
            await asyncio.gather(*(m.start() for m in nodes.values()))
            survivors = [nodes["t01"], nodes["t02"]]
            await _wait(lambda: all(m.describe()["alive_count"] == 2 for m in nodes.values()), 20,
                        "3 nodes converge", lambda: [m.describe()["alive_count"] for m in nodes.values()])
            await nodes.pop("t03").stop(graceful=False)  # silent: no leave

            def states() -> list[Any]:
                return [(m.describe()["failed_count"], m.describe()["library_members"]) for m in survivors]

            await _wait(lambda: all(m.describe()["failed_count"] == 1 for m in survivors), 20, "t03 failed", states)
            # Forgotten by the engine (the list no longer holds it), still failed in the view.
            await _wait(lambda: all(m.describe()["library_members"] == 2 for m in survivors), 40,
                        "t03 forgotten by both survivors", states)
            for m in survivors:
                d = m.describe()
                assert d["failed_count"] == 1 and d["forgotten"] >= 1
                assert {x["id"]: x["state"] for x in d["members"]}["t03"] == "failed"
        finally:
            await asyncio.gather(*(m.stop(graceful=False) for m in nodes.values()), return_exceptions=True)

    asyncio.run(run())
