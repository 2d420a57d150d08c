"""Raft log compaction with the state machine: the dump is written off the tick thread, in the
file format pysyncobj writes itself, and a node restarts from it."""

from __future__ import annotations

import gzip
import pickle
import time

from pysyncobj import SERIALIZER_STATE
from pysyncobj.serializer import Serializer

from ringrift_cluster.consensus.raft import bridge as raft_bridge
from ringrift_cluster.consensus.raft.dump import DumpWriter
from ringrift_cluster.consensus.raft import RaftConsensus
from ringrift_cluster.store.raft import RaftStore
from ringrift_cluster.state import StateMachine, commands as c
from ringrift_cluster.testing import wait_until

from test_raft_backend import _config, _free_ports, _wait  # noqa: E402 (rootdir-relative, as pytest imports)


def _machine(n: int) -> StateMachine:
    m = StateMachine()
    for i in range(n):
        m.apply(c.add_work(f"w{i}", "selfplay", priority=i % 3, rid=f"a{i}", now=100.0 + i))
    return m


def _consumer(machine: StateMachine) -> "raft_bridge._MachineConsumer":
    return raft_bridge._MachineConsumer(machine, lambda m, snap: m.restore(snap) or m)


def _write(tmp_path, machine: StateMachine) -> tuple[str, DumpWriter]:
    path = str(tmp_path / "dump.bin")
    writer = DumpWriter(_consumer(machine), path, SERIALIZER_STATE, pickle.load, raft_bridge._spawn_dump)
    writer.serialize(path + ".tmp", (("e1", 2, 1), ("e0", 1, 1), {"cluster"}))
    deadline = time.monotonic() + 10
    while (state := writer.check()) == SERIALIZER_STATE.SERIALIZING:
        assert time.monotonic() < deadline, "the dump thread did not finish"
        time.sleep(0.01)
    assert state == SERIALIZER_STATE.SUCCESS, writer.last_error
    assert writer.check() == SERIALIZER_STATE.NOT_SERIALIZING  # reported once
    return path, writer


def test_dump_is_the_state_at_the_freeze_in_pysyncobjs_own_format(tmp_path):
    machine = _machine(1500)
    expected = machine.snapshot()
    path, _ = _write(tmp_path, machine)
    # pysyncobj's own loader (no custom hooks) reads it: same tuple, same consumer data.
    loaded = Serializer(path, 1024, False, None, None, None).deserialize()
    assert loaded[0][1] == {"format": 1, "machine": expected}
    assert loaded[1:] == (("e1", 2, 1), ("e0", 1, 1), {"cluster"})


def test_dump_ignores_commands_applied_while_it_is_written(tmp_path):
    machine = _machine(3000)
    expected = machine.snapshot()
    path = str(tmp_path / "dump.bin")
    writer = DumpWriter(_consumer(machine), path, SERIALIZER_STATE, pickle.load, raft_bridge._spawn_dump)
    writer.serialize(path + ".tmp", ((), (), set()))
    for i in range(300):  # the engine keeps applying while the writer runs
        machine.apply(c.claim_work("n1", rid=f"c{i}", now=5000.0 + i))
    wait_until(lambda: writer.check() != SERIALIZER_STATE.SERIALIZING, 10, interval=0.01,
               what="the dump thread finished")
    with gzip.open(path) as f:
        assert pickle.load(f)[0][1]["machine"] == expected
    assert machine.work_stats()["claimed"] == 300


def test_a_dump_in_pysyncobjs_default_format_restores(tmp_path):
    """Dumps written before the writer existed (pysyncobj pickled them itself) still load."""
    source = _machine(700)
    path = str(tmp_path / "old.bin")
    with open(path, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb") as g:
        pickle.dump(([{}, {"format": 1, "machine": source.snapshot()}], "e1", "e0", "cluster"), g, 2)
    target = _consumer(StateMachine())
    tail = DumpWriter(target, path, SERIALIZER_STATE, pickle.load, raft_bridge._spawn_dump).deserialize(path)
    assert tail == ("e1", "e0", "cluster") and target.restore_failed is None
    assert target.machine.snapshot() == source.snapshot()
    claim = c.claim_work("n", rid="x", now=1e6)
    assert target.machine.apply(claim) == source.apply(claim)


async def test_node_compacts_with_the_writer_and_restarts_from_its_dump(tmp_path):
    config = _config(tmp_path, raft={"log_compaction_min_entries": 10}, ports=_free_ports(3))
    first = RaftConsensus(config, StateMachine())
    first_store = RaftStore(first, runs_engine=True)
    await first_store.start()
    try:
        await first.wait_for_leader(5.0)
        for i in range(60):
            assert (await first_store.submit(c.add_work(f"w{i}", "selfplay", priority=i % 4)))["ok"]
        await _wait(lambda: (first.describe()["engine_stalls"]["dumps_written"] or 0) >= 1, 10.0, "a dump")
        stalls = first.describe()["engine_stalls"]
        assert stalls["dump_error"] is None and 0 < stalls["longest_snapshot_ms"] < 1000
        before = await first_store.read(lambda m: m.work_list(status="pending"), linearizable=True)
    finally:
        await first_store.stop()
    second = RaftConsensus(config, StateMachine())
    second_store = RaftStore(second, runs_engine=True)
    await second_store.start()
    try:
        await second.wait_for_leader(5.0)
        assert await second_store.read(lambda m: m.work_list(status="pending"), linearizable=True) == before
        assert second.describe()["restore_error"] is None
    finally:
        await second_store.stop()
