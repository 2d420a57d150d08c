"""Raw pysyncobj node for the benchmarks: the same SyncObjConf as RaftConsensus, no adapter.

Speaks the control API of ringrift_cluster/testing/drivers/raft.py (submit, leadership, describe, state, bench), so
the benchmark drives both kinds of cluster with one harness. Commands are applied by the same
TestMachine through one ``@replicated`` method; writes use pysyncobj's own ``sync=True`` (in an
executor) or ``callback=`` (pipelined), i.e. what a direct pysyncobj user would write.

    python scripts/bench/raft_rawnode.py --config C --node-id N --data-dir D
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, SyncObjConsumer, SyncObjException, replicated

from ringrift_cluster.consensus.raft import RaftConsensus
from ringrift_cluster.testing.drivers.raft import TestMachine, _real_machine, load_node_config, serve

_NAMES = {v: k for k, v in vars(FAIL_REASON).items() if not k.startswith("_")}


class RawConsumer(SyncObjConsumer):
    def __init__(self, machine: TestMachine) -> None:
        super().__init__()
        self.machine = machine
        self.lock = threading.Lock()

    @replicated
    def execute(self, payload: str) -> Any:
        with self.lock:
            try:
                return self.machine.apply(json.loads(payload))
            except Exception as e:
                return {"ok": False, "error": "internal", "message": type(e).__name__}

    def _serialize(self) -> Any:
        with self.lock:
            return self.machine.snapshot()

    def _deserialize(self, data: Any) -> None:
        with self.lock:
            self.machine.restore(data)


class RawBackend:
    def __init__(self, config: Any) -> None:
        self.config = config
        self.machine = TestMachine(_real_machine())
        adapter = RaftConsensus(config, self.machine)  # only to reuse its exact conf and address map
        self.conf = adapter.pysyncobj_conf()
        self.id_by_address = dict(adapter._id_by_address)
        self.self_address = adapter.self_address
        self.consumer = RawConsumer(self.machine)
        self.obj: SyncObj | None = None

    async def start(self) -> None:
        Path(self.conf["journalFile"]).parent.mkdir(parents=True, exist_ok=True)
        others = [a for a in sorted(self.id_by_address) if a != self.self_address]
        # Constructed on the main thread (it lives as long as the process), autoTick=True.
        self.obj = SyncObj(self.self_address, others, conf=SyncObjConf(**self.conf), consumers=[self.consumer])
        self.obj.waitBinded()

    async def stop(self) -> None:
        if self.obj is not None:
            self.obj.destroy()

    def leadership(self) -> dict[str, Any]:
        leader = self.obj._getLeader()
        leader_id = self.id_by_address.get(leader.address) if leader is not None else None
        return {"leader": leader_id, "term": self.obj.raftCurrentTerm, "is_self": bool(self.obj._isLeader())}

    def describe(self) -> dict[str, Any]:
        obj = self.obj
        members = {self.config.node_id: True}
        for node in obj.otherNodes:
            members[self.id_by_address[node.address]] = obj.isNodeConnected(node)
        lead = self.leadership()
        health = "unavailable" if lead["leader"] is None else ("healthy" if all(members.values()) else "partial")
        return {"leader": lead["leader"], "term": lead["term"], "members": members, "cluster_health": health,
                "applied_index": obj.raftLastApplied, "commit_index": obj.raftCommitIndex}

    def _sync(self, command: dict[str, Any], timeout: float | None) -> Any:
        command = {"v": 1, "now": time.time(), **command}
        command.setdefault("rid", f"raw-{time.monotonic_ns()}")
        return self.consumer.execute(json.dumps(command), sync=True, timeout=timeout or 5.0)

    async def submit(self, command: dict[str, Any], timeout: float | None) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(None, self._sync, command, timeout)
        except SyncObjException as e:
            code = getattr(e, "errorCode", None)
            raise RuntimeError(_NAMES.get(code, str(code))) from None

    async def state(self, linearizable: bool) -> Any:
        with self.consumer.lock:
            view = self.machine.view()
        return {"view": view, "applied_index": self.obj.raftLastApplied}

    async def bench_latency(self, n: int) -> list[float]:
        def run() -> list[float]:
            out = []
            for i in range(n):
                t0 = time.perf_counter()
                self._sync({"op": "test_append", "args": {"value": f"lat-{i}"}}, 5.0)
                out.append(time.perf_counter() - t0)
            return out

        return await asyncio.to_thread(run)

    async def bench_pipeline(self, n: int, inflight: int) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            sem = threading.Semaphore(inflight)
            done = threading.Event()
            state = {"left": n, "errors": 0}
            lock = threading.Lock()

            def callback(result: Any, error: int) -> None:
                with lock:
                    if error != 0:
                        state["errors"] += 1
                    state["left"] -= 1
                    if state["left"] == 0:
                        done.set()
                sem.release()

            t0 = time.perf_counter()
            for i in range(n):
                sem.acquire()
                payload = json.dumps({"v": 1, "op": "test_append", "rid": f"p-{i}-{t0}", "now": time.time(),
                                      "args": {"value": f"p-{i}"}})
                self.consumer.execute(payload, callback=callback)
            done.wait(120)
            elapsed = time.perf_counter() - t0
            return {"n": n, "errors": state["errors"], "elapsed_s": elapsed, "ops_per_s": n / elapsed}

        return await asyncio.to_thread(run)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--node-id", required=True)
    parser.add_argument("--data-dir", required=True)
    args = parser.parse_args()
    config = load_node_config(args)
    asyncio.run(serve(config, RawBackend(config)))


if __name__ == "__main__":
    main()
