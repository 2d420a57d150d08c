"""RaftConsensus in one process: validation, the failure table, and a single-voter cluster.

The single-voter cases run the real pysyncobj engine on a free loopback port (nothing mocked);
multi-process clusters are in tests/integration/test_raft_cluster.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time
from pathlib import Path

import pytest

from ringrift_cluster.config import PRESETS, RaftSettings, load_config, validate_raft_settings
from ringrift_cluster.consensus.raft import bridge as raft_bridge
from ringrift_cluster.consensus.base import Election
from ringrift_cluster.consensus.raft import RaftConsensus
from ringrift_cluster.consensus.raft.entry import MAX_COMMAND_BYTES, failure_error
from ringrift_cluster.errors import (
    BackendUnavailable, ClusterTimeout, CommandRejected, ConfigError, NoLeader, NotLeader,
)
from ringrift_cluster.model import ElectionOutcome
from ringrift_cluster.testing.engines import free_ports
from ringrift_cluster.testing.wait import until
from ringrift_cluster.state import StateMachine
from ringrift_cluster.store.raft import RaftStore


class AppendMachine:
    """A tiny deterministic machine: appends values, dedups by rid, raises on op 'raise'."""

    def __init__(self) -> None:
        self.log: list[object] = []
        self.seen: dict[str, dict] = {}

    def apply(self, command: dict) -> dict:
        if command.get("op") == "raise":
            raise RuntimeError("boom")
        if command.get("op") != "append":
            return {"ok": command.get("op") == "tick"}
        rid = command["rid"]
        if rid in self.seen:
            return dict(self.seen[rid])
        self.log.append(command.get("args", {}).get("value"))
        self.seen[rid] = {"ok": True, "index": len(self.log)}
        return dict(self.seen[rid])

    def snapshot(self) -> dict:
        return {"log": list(self.log), "seen": dict(self.seen)}

    def restore(self, snapshot: dict) -> None:
        self.log = list(snapshot["log"])
        self.seen = dict(snapshot["seen"])


def _free_ports(n: int) -> list[int]:
    return free_ports(n)


def _config(tmp_path: Path, *, members: int = 1, node: str = "a", raft: dict | None = None,
            data_dir: Path | None = None, ports: list[int] | None = None):
    ports = ports or _free_ports(3 * members)
    hosts = {}
    for i, nid in enumerate("abcde"[:members]):
        hosts[nid] = {"p2p_host": "127.0.0.1", "p2p_port": ports[3 * i], "swim_port": ports[3 * i + 1],
                      "raft_port": ports[3 * i + 2]}
    section = {"preset": "local", "consensus_mode": "raft"}
    if raft:
        section["raft"] = raft
    path = tmp_path / f"cluster-{node}.yaml"
    path.write_text(json.dumps({"hosts": hosts, "ringrift_cluster": section}))
    return load_config(path, env={}, overrides={"node_id": node, "data_dir": str(data_dir or tmp_path / node)})


async def _wait(predicate, timeout: float, what: str):
    return await until(predicate, timeout, what=what)


# ------------------------------------------------------------------------------------ pure


def test_failure_table_maps_every_code():
    assert isinstance(failure_error(raft_bridge.FailReason.MISSING_LEADER), NoLeader)
    not_leader = failure_error(raft_bridge.FailReason.NOT_LEADER, leader="b")
    assert isinstance(not_leader, NotLeader) and not_leader.leader == "b"
    for code in ("QUEUE_FULL", "REQUEST_DENIED", "DISCARDED", "LEADER_CHANGED", "UNKNOWN_OUTCOME"):
        error = failure_error(raft_bridge.FailReason[code], rid="r1")
        assert isinstance(error, ClusterTimeout) and error.rid == "r1" and error.raft_code == code
    assert failure_error(raft_bridge.FailReason.LEADER_CHANGED).may_commit is True
    assert failure_error(raft_bridge.FailReason.QUEUE_FULL).may_commit is False
    unknown = failure_error(99)
    assert isinstance(unknown, ClusterTimeout) and unknown.may_commit is True


def test_fail_reason_mirrors_pysyncobj():
    from pysyncobj import FAIL_REASON

    for reason in raft_bridge.FailReason:
        assert getattr(FAIL_REASON, reason.name) == reason.value


@pytest.mark.parametrize("changes, key", [
    ({"connection_timeout_s": 0.5, "max_timeout_s": 0.6}, "connection_timeout_s"),
    ({"leader_fallback_timeout_s": 0.05}, "leader_fallback_timeout_s"),
    ({"min_timeout_s": 0.1}, "min_timeout_s"),
    ({"min_timeout_s": 0.4, "max_timeout_s": 0.4}, "max_timeout_s"),
    ({"log_compaction_min_entries": 1}, "log_compaction_min_entries"),
    ({"bind_port": 0}, "bind_port"),
])
def test_settings_are_validated_before_pysyncobj(changes, key):
    base = RaftSettings(**{**PRESETS["local"]["raft"], "bind_host": "127.0.0.1"})
    with pytest.raises(ConfigError) as info:
        validate_raft_settings(dataclasses.replace(base, **changes))
    assert info.value.key == f"ringrift_cluster.raft.{key}"


def test_presets_are_valid():
    validate_raft_settings(RaftSettings(bind_host="127.0.0.1"))
    validate_raft_settings(RaftSettings(**{**PRESETS["local"]["raft"], "bind_host": "127.0.0.1"}))


def test_non_member_is_refused(tmp_path):
    config = _config(tmp_path, members=3, node="c")
    config = dataclasses.replace(config, raft_members=("a", "b"))
    with pytest.raises(BackendUnavailable, match="not in raft_members"):
        RaftConsensus(config, AppendMachine())


def test_conf_maps_settings(tmp_path):
    config = _config(tmp_path, raft={"password": "s3cret"})
    conf = RaftConsensus(config, AppendMachine()).pysyncobj_conf()
    s = config.raft
    assert conf["raftMinTimeout"] == s.min_timeout_s and conf["raftMaxTimeout"] == s.max_timeout_s
    assert conf["appendEntriesUseBatch"] is False and conf["commandsWaitLeader"] is False
    assert conf["dynamicMembershipChange"] is False and conf["password"] == "s3cret"
    assert conf["bindAddress"] == f"127.0.0.1:{config.hosts['a'].raft_port}"
    assert Path(conf["journalFile"]).parent == config.data_dir / "raft"
    assert Path(conf["fullDumpFile"]).parent == config.data_dir / "raft"
    from pysyncobj import SyncObjConf

    assert set(conf) <= set(vars(SyncObjConf()))  # pysyncobj ignores unknown names silently


def test_leader_hints_follow_the_heartbeat_period_and_can_be_turned_off(tmp_path):
    period = _config(tmp_path).raft.append_entries_period_s
    hints = RaftConsensus(_config(tmp_path), AppendMachine()).hint_settings()
    assert hints == {"confirm_s": period, "step_s": 2 * period, "jitter_s": period}
    (tmp_path / "off").mkdir()
    assert RaftConsensus(_config(tmp_path / "off", raft={"leader_hints": False}), AppendMachine()).hint_settings() == {}


# ------------------------------------------------------------------------------------ one voter


async def test_single_voter_lifecycle(tmp_path):
    config = _config(tmp_path)
    machine = AppendMachine()
    raft = RaftConsensus(config, machine)
    store = RaftStore(raft, runs_engine=True)
    assert isinstance(raft, Election) and raft.name == "raft"
    with pytest.raises(BackendUnavailable):
        await store.submit({"op": "x"})
    events = raft.subscribe()
    await store.start()
    try:
        lead = await raft.wait_for_leader(5.0)
        assert lead.leader == "a" and lead.is_self and lead.term >= 1
        event = await asyncio.wait_for(events.__anext__(), 1.0)
        assert event.leadership.leader == "a" and event.election_outcome is ElectionOutcome.WON
        assert event.election_latency_s is not None and event.election_latency_s < 5.0

        result = await store.submit({"op": "append", "rid": "r1", "args": {"value": 1}})
        assert result == {"ok": True, "index": 1}
        again = await store.submit({"op": "append", "rid": "r1", "args": {"value": 1}})
        assert again == result and machine.log == [1]
        assert await store.read(lambda m: list(m.log)) == [1]
        assert await store.read(lambda m: list(m.log), linearizable=True) == [1]

        # A raising apply is answered, counted, and does not wedge anything.
        boom = await store.submit({"op": "raise"})
        assert boom["ok"] is False and boom["error"] == "internal"
        assert (await store.submit({"op": "append", "args": {"value": 2}}))["ok"]

        with pytest.raises(CommandRejected):
            await store.submit({"op": "append", "args": {"value": float("nan")}})
        with pytest.raises(CommandRejected):
            await store.submit({"op": "append", "args": {"value": object()}})
        with pytest.raises(CommandRejected, match="too_large|bytes"):
            await store.submit({"op": "append", "args": {"value": "x" * MAX_COMMAND_BYTES}})

        d = raft.describe()
        assert d["leader"] == "a" and d["is_leader"] and d["cluster_health"] == "healthy"
        assert d["members"] == {"a": True} and d["config"]["bind_port"] == config.raft.bind_port
        assert d["apply_failures"] == 1 and d["applied_index"] == d["commit_index"]
        assert set(d) >= {"raft_enabled", "pysyncobj_available", "raft_initialized", "config", "cluster_health",
                          "leader", "term", "commit_index", "applied_index", "is_leader", "members"}
        json.dumps(d)
        assert "127.0.0.1" not in json.dumps({k: d[k] for k in ("leader", "members")})
        assert (config.data_dir / "raft" / "a.journal").exists()
        await _wait(lambda: d_written(raft), 10.0, "the first full dump")
        await _wait(raft.leader_confirmed, 5.0, "a tick committed as leader")
    finally:
        await store.stop()
    assert not any(t.name == "raft-owner" and t.is_alive() for t in threading.enumerate())
    assert raft.leadership().leader is None


def d_written(raft: RaftConsensus) -> bool:
    return raft.describe()["dump_file_written"]


async def test_restart_from_journal_and_dump(tmp_path):
    ports = _free_ports(3)
    config = _config(tmp_path, raft={"log_compaction_min_entries": 10}, ports=ports)
    first = RaftConsensus(config, AppendMachine())
    first_store = RaftStore(first, runs_engine=True)
    await first_store.start()
    try:
        await first.wait_for_leader(5.0)
        for i in range(40):
            await first_store.submit({"op": "append", "args": {"value": i}})
    finally:
        await first_store.stop()
    second_machine = AppendMachine()
    second = RaftConsensus(config, second_machine)
    second_store = RaftStore(second, runs_engine=True)
    await second_store.start()
    try:
        await second.wait_for_leader(5.0)
        assert await second_store.read(lambda m: list(m.log), linearizable=True) == list(range(40))
    finally:
        await second_store.stop()


async def test_second_instance_fails_fast(tmp_path):
    ports = _free_ports(3)
    config = _config(tmp_path, ports=ports)
    raft = RaftConsensus(config, AppendMachine())
    store = RaftStore(raft, runs_engine=True)
    await store.start()
    try:
        with pytest.raises(BackendUnavailable, match="held by another"):
            await RaftConsensus(config, AppendMachine()).start()  # same data dir
        other_dir = _config(tmp_path, ports=ports, data_dir=tmp_path / "other")
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match="bind"):
            await RaftConsensus(other_dir, AppendMachine()).start()  # same port
        assert time.monotonic() - started < 5.0
    finally:
        await store.stop()


async def test_timeout_then_retry_applies_once(tmp_path):
    config = _config(tmp_path)
    machine = StateMachine()
    raft = RaftConsensus(config, machine)
    store = RaftStore(raft, runs_engine=True)
    await store.start()
    try:
        await raft.wait_for_leader(5.0)
        command = {"v": 1, "op": "work.add", "rid": "add-w1", "args": {"work_id": "w1", "work_type": "selfplay"}}
        with pytest.raises(ClusterTimeout) as info:
            await store.submit(command, timeout=0)
        assert info.value.may_commit and info.value.rid == "add-w1"
        # The timed-out command still commits (pysyncobj cannot withdraw it) ...
        deadline = time.monotonic() + 5.0
        while not await store.read(lambda m: "add-w1" in m.dedup):
            assert time.monotonic() < deadline, "the timed-out command never committed"
            await asyncio.sleep(0.01)
        recorded = await store.read(lambda m: dict(m.dedup["add-w1"]["result"]))
        # ... and the retry with the same rid is answered from the dedup table, not applied again.
        retried = await store.submit(command)
        assert retried["ok"] and retried == recorded, (retried, recorded)
        assert await store.read(lambda m: m.work_stats()["total"]) == 1
    finally:
        await store.stop()


async def test_no_leader_fails_fast(tmp_path):
    # Two of three voters missing: no leader can exist; submit must say so at once.
    config = _config(tmp_path, members=3, node="a")
    raft = RaftConsensus(config, AppendMachine())
    store = RaftStore(raft, runs_engine=True)
    await store.start()
    try:
        started = time.monotonic()
        with pytest.raises(NoLeader):
            await raft.wait_for_leader(0.3)
        with pytest.raises(NoLeader):
            await store.submit({"op": "append", "args": {"value": 1}}, timeout=2.0)
        assert time.monotonic() - started < 1.5
        d = raft.describe()
        assert d["cluster_health"] == "unavailable" and d["members"] == {"a": True, "b": False, "c": False}
    finally:
        await store.stop()


async def test_final_snapshot_and_import(tmp_path):
    from ringrift_cluster.store.base import StateStore

    source = RaftConsensus(_config(tmp_path, node="a"), StateMachine())

    source_store = RaftStore(source, runs_engine=True)
    assert isinstance(source_store, StateStore)
    await source_store.start()
    try:
        await source.wait_for_leader(5.0)
        added = await source_store.submit({"v": 1, "op": "work.add", "args": {"work_id": "w1", "work_type": "selfplay"}})
        assert added["ok"], added
        snapshot = await source_store.final_snapshot()
        with pytest.raises(NoLeader):  # a stopping node takes no more writes
            await source_store.submit({"v": 1, "op": "tick"})
    finally:
        await source_store.stop()
    assert snapshot is not None and "w1" in snapshot["work"]["items"]

    target = RaftConsensus(_config(tmp_path, node="a", data_dir=tmp_path / "target"), StateMachine())

    target_store = RaftStore(target, runs_engine=True)
    await target_store.start()
    try:
        offered = target_store.import_snapshot(snapshot)
        assert offered["ok"] and offered["pending"]
        await _wait(lambda: target_store.last_import is not None, 5.0, "the import to commit")
        assert target_store.last_import["ok"], target_store.last_import
        assert await target_store.read(lambda m: m.work_get("w1") is not None, linearizable=True)
        assert target.describe()["backend"] == "raft"
    finally:
        await target_store.stop()
