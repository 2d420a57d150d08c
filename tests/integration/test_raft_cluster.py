"""Raft backend on real processes over loopback (ringrift_cluster.testing.drivers.raft runs one node each).

Nothing is mocked: every node is a separate process running RaftConsensus over pysyncobj.
Conditions are awaited with ``poll_until`` (deadline + what was last seen), never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from ringrift_cluster.config.settings import PRESETS
from ringrift_cluster.testing.engines import RaftCluster, poll_until

pytestmark = pytest.mark.integration

FAILOVER_BOUND_S = 3.0  # leader SIGKILL -> first write started after it is committed


async def _views_identical(cluster: RaftCluster, nodes: list[str]) -> tuple[bool, Any]:
    states = {nid: await cluster.get(nid, "/state", timeout=2.0) for nid in nodes}
    indexes = {nid: s.get("applied_index") for nid, s in states.items()}
    views = [s.get("view") for s in states.values()]
    same = all(s.get("ok") for s in states.values()) and len(set(indexes.values())) == 1 \
        and all(v == views[0] for v in views)
    return same, {"applied_index": indexes, "log_lengths": {n: len(s["view"]["log"]) for n, s in states.items()
                                                            if s.get("ok")}}


async def _linearizable_log(cluster: RaftCluster, nid: str) -> list[Any]:
    state = await cluster.get(nid, "/state?linearizable=1")
    assert state["ok"], state
    return state["view"]["log"]


async def test_three_voters_elect_and_survive_bad_commands(tmp_path):
    async with RaftCluster(3, tmp_path) as cluster:
        await cluster.start_all()
        leader, term = await cluster.wait_agreed_leader(10.0)
        assert leader in cluster.ids and term >= 1
        follower = next(n for n in cluster.ids if n != leader)

        described = await cluster.get(follower, "/describe")
        assert described["leader"] == leader and described["term"] == term and not described["is_leader"]
        assert set(described["members"]) == set(cluster.ids)
        await cluster.wait_full_mesh(10.0)

        # A command whose apply raises, and malformed ones: answered, nothing wedges.
        raised = await cluster.submit(follower, {"op": "test_raise"}, timeout=2.0)
        assert raised["ok"] and raised["result"]["ok"] is False and raised["result"]["error"] == "internal", raised
        for bad in ({"op": "no.such.op"}, {"op": "test_append", "args": {}}, {"op": "tick", "v": 99},
                    {"op": "work.add", "args": {"work_id": 7}}):
            answer = await cluster.submit(follower, bad, timeout=2.0)
            assert answer["ok"] and answer["result"]["ok"] is False, (bad, answer)
        good = await cluster.submit(follower, {"op": "test_append", "args": {"value": "after-bad"}}, timeout=2.0)
        assert good["ok"] and good["result"]["ok"], good

        async def applied_everywhere() -> tuple[bool, Any]:
            seen = {n: await cluster.get(n, "/describe") for n in cluster.ids}
            short = {n: (d["applied_index"], d["commit_index"], d["apply_failures"], d["term"]) for n, d in seen.items()}
            done = all(d["apply_failures"] == 1 and d["applied_index"] == d["commit_index"] for d in seen.values())
            return done, short

        await poll_until(applied_everywhere, 5.0, "every replica applied the raising entry once")

        # The leader proposes the clock: with no client writes, the replicated clock still moves.
        start_clock = (await cluster.get(follower, "/state"))["view"]["inner"]["clock"]

        async def clock_moves() -> tuple[bool, Any]:
            clock = (await cluster.get(follower, "/state"))["view"]["inner"]["clock"]
            return clock > start_clock, (start_clock, clock)

        await poll_until(clock_moves, 5.0, "a tick from the leader")

        # Timed out, then retried with the same rid: applied once.
        command = {"op": "work.add", "rid": "retry-w1", "args": {"work_id": "w1", "work_type": "selfplay"}}
        timed_out = await cluster.submit(follower, command, timeout=0)
        assert timed_out["error"] == "ClusterTimeout" and timed_out["may_commit"], timed_out

        async def committed() -> tuple[bool, Any]:
            state = await cluster.get(follower, "/state")
            return "retry-w1" in state["view"]["inner"]["dedup"], state.get("applied_index")

        await poll_until(committed, 5.0, "the timed-out command to commit anyway")
        retried = await cluster.submit(follower, command, timeout=2.0)
        assert retried["ok"] and retried["result"]["ok"], retried
        again = await cluster.submit(leader, command, timeout=2.0)
        assert again["result"] == retried["result"]
        await poll_until(lambda: _views_identical(cluster, cluster.ids), 5.0, "identical replicas")
        for nid in cluster.ids:
            items = (await cluster.get(nid, "/state"))["view"]["inner"]["work"]["items"]
            assert list(items) == ["w1"], (nid, items)


async def test_five_voters_elect_encrypted(tmp_path):
    async with RaftCluster(5, tmp_path, raft={"password": "test-cluster-secret"}) as cluster:
        await cluster.start_all()
        leader, term = await cluster.wait_agreed_leader(10.0)
        assert leader in cluster.ids and term >= 1
        for nid in cluster.ids:
            answer = await cluster.submit_acknowledged(nid, {"op": "test_append", "rid": f"r-{nid}",
                                                             "args": {"value": nid}})
            assert answer["ok"] and answer["result"]["ok"], (nid, answer)
        await poll_until(lambda: _views_identical(cluster, cluster.ids), 5.0, "identical replicas")
        assert (await cluster.get(leader, "/describe"))["config"]["encrypted"] is True
        events = await cluster.get(leader, "/events")
        assert events and events[-1]["leader"] == leader and events[-1]["outcome"] == "won", events


async def _writer(cluster: RaftCluster, nid: str, prefix: str, acked: list[tuple[str, float, float]],
                  stop: asyncio.Event) -> None:
    """Sequential appends through ``nid``; each retried with its rid until acknowledged."""
    i = 0
    while not stop.is_set():
        i += 1
        value = f"{prefix}-{i}"
        command = {"op": "test_append", "rid": f"rid-{value}", "args": {"value": value}}
        while True:
            started = time.monotonic()
            try:
                answer = await cluster.submit(nid, command, timeout=1.0, http_timeout=5.0)
            except Exception:
                answer = {"ok": False}
            if answer.get("ok") and answer["result"].get("ok"):
                acked.append((value, started, time.monotonic()))
                break
            if stop.is_set():
                return  # unacknowledged: allowed to be missing (or present once)
            await asyncio.sleep(0.01)


async def test_leader_sigkill_under_load(tmp_path):
    async with RaftCluster(3, tmp_path) as cluster:
        await cluster.start_all()
        await cluster.wait_full_mesh(10.0)
        leader, term = await cluster.wait_agreed_leader(10.0)
        followers = [n for n in cluster.ids if n != leader]
        acked: list[tuple[str, float, float]] = []
        stop = asyncio.Event()
        writers = [asyncio.create_task(_writer(cluster, nid, nid, acked, stop)) for nid in followers]

        await poll_until(lambda: _count_ge(acked, 30), 10.0, "30 acknowledged writes before the kill")
        killed_at = time.monotonic()
        cluster.kill(leader, signal.SIGKILL)
        await poll_until(lambda: _acked_after(acked, killed_at, 20), 10.0, "20 writes acknowledged after the kill")
        stop.set()
        await asyncio.gather(*writers)

        failover = min(done for _, started, done in acked if started >= killed_at) - killed_at
        assert failover < FAILOVER_BOUND_S, f"first write after the kill committed after {failover:.2f} s"
        new_leader, new_term = await cluster.wait_agreed_leader(10.0, nodes=followers)
        assert new_leader != leader and new_term > term
        # The survivors saw the leader's connection close: one campaigned at once (consensus/raft/hints.py)
        # instead of waiting out its election timeout.
        hints = [(await cluster.get(nid, "/describe"))["leader_hints"] for nid in followers]
        assert all(h["enabled"] for h in hints) and sum(h["elections_started"] for h in hints) >= 1, hints

        cluster.spawn(leader)  # back, from its journal
        await cluster.wait_serving(leader)
        await poll_until(lambda: _views_identical(cluster, cluster.ids), 15.0, "identical replicas after rejoin")
        log = await _linearizable_log(cluster, followers[0])
        assert len(log) == len(set(log)), "a value was applied twice"
        missing = [value for value, _, _ in acked if value not in set(log)]
        assert not missing, f"acknowledged writes lost: {missing[:10]}"
        print(f"failover to next committed write: {failover:.3f} s; {len(acked)} acknowledged writes")


async def test_a_leader_lost_after_its_followers_sat_idle_is_replaced_in_the_next_term(tmp_path):
    """Followers send each other nothing until an election, and pysyncobj drops a link (with the
    message on it) when it sends on one it has read nothing from for its connection timeout: the
    first vote request was lost and the election needed another term (pacing.py keeps the links
    alive). Three voters: the survivors' one link carries the only vote either can get."""
    async with RaftCluster(3, tmp_path) as cluster:
        await cluster.start_all()
        await cluster.wait_full_mesh(10.0)
        leader, term = await cluster.wait_agreed_leader(10.0)
        followers = [n for n in cluster.ids if n != leader]
        # The stimulus: the followers' link idle for twice the connection timeout (1.5 s, local).
        idle_s = 2 * PRESETS["local"]["raft"]["connection_timeout_s"]
        await asyncio.sleep(idle_s)
        kept = {nid: (await cluster.get(nid, "/describe"))["leader_hints"]["keepalives"] for nid in followers}
        assert all(count > 0 for count in kept.values()), f"keepalives sent by the followers: {kept}"
        cluster.kill(leader, signal.SIGKILL)
        new_leader, new_term = await cluster.wait_agreed_leader(10.0, nodes=followers, exclude=leader)
        assert new_term == term + 1, (f"term {term} -> {new_term}: an election failed after {idle_s:.1f} s "
                                      f"of idle links (keepalives {kept})")
        print(f"{leader} killed in term {term}; {new_leader} leads in term {new_term}; keepalives {kept}")


async def _count_ge(acked: list[Any], n: int) -> tuple[bool, Any]:
    return len(acked) >= n, len(acked)


async def _acked_after(acked: list[tuple[str, float, float]], t: float, n: int) -> tuple[bool, Any]:
    after = sum(1 for _, started, _ in acked if started >= t)
    return after >= n, {"after_kill": after, "total": len(acked)}


def _big_snapshot(items: int) -> dict[str, Any]:
    from ringrift_cluster.state import StateMachine, commands

    machine = StateMachine()
    for i in range(items):
        command = commands.add_work(f"imported-{i}", "selfplay", config={"board": "square8", "seed": i,
                                                                        "notes": "x" * 64})
        assert machine.apply(commands.stamp(command, 1_000_000.0 + i))["ok"]
    return machine.snapshot()


async def test_full_cluster_restart_keeps_acknowledged_state(tmp_path):
    raft = {"log_compaction_min_entries": 20}
    async with RaftCluster(3, tmp_path, raft=raft) as cluster:
        await cluster.start_all()
        leader, _ = await cluster.wait_agreed_leader(10.0)

        # A snapshot from another mode, far above pysyncobj's 64 KiB chunk size, through the log.
        snapshot = _big_snapshot(1200)
        follower = next(n for n in cluster.ids if n != leader)
        offered = await cluster.post(follower, "/import", {"snapshot": snapshot})
        assert offered["ok"] and offered["pending"], offered

        async def imported_everywhere() -> tuple[bool, Any]:
            counts = {}
            for nid in cluster.ids:
                items = (await cluster.get(nid, "/state"))["view"]["inner"]["work"]["items"]
                counts[nid] = len(items)
            return all(c == 1200 for c in counts.values()), counts

        await poll_until(imported_everywhere, 15.0, "the imported snapshot on every replica")
        values = [f"v{i}" for i in range(80)]
        for i, value in enumerate(values):
            nid = cluster.ids[i % 3]
            # Retried under its rid: a leader change under a loaded machine answers NoLeader, and
            # this test is about what survives a restart, not about the first try.
            answer = await cluster.submit_acknowledged(nid, {"op": "test_append", "rid": f"r-{value}",
                                                             "args": {"value": value}})
            assert answer["ok"] and answer["result"]["ok"], answer

        async def dumps_and_journals() -> tuple[bool, Any]:
            seen = {}
            for nid in cluster.ids:
                d = await cluster.get(nid, "/describe")
                seen[nid] = (d["dump_file_written"], d["log_size"], Path(d["journal_file"]).exists())
            return all(w and j and size < 60 for w, size, j in seen.values()), seen

        await poll_until(dumps_and_journals, 10.0, "a compaction (full dump written, log truncated) on every node")

        for nid in cluster.ids:
            cluster.kill(nid, signal.SIGKILL)
        await cluster.start_all()
        await cluster.wait_agreed_leader(10.0)
        for nid in cluster.ids:
            log = await _linearizable_log(cluster, nid)
            assert log == values, f"{nid}: {len(log)} values after restart"
            items = (await cluster.get(nid, "/state"))["view"]["inner"]["work"]["items"]
            assert len(items) == 1200, f"{nid}: {len(items)} imported items after restart"
        answer = await cluster.submit_acknowledged(cluster.ids[0], {"op": "test_append", "rid": "r-after",
                                                                    "args": {"value": "after"}})
        assert answer["ok"] and answer["result"]["ok"], answer
