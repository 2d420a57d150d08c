"""An acknowledged write survives losing power on every node at once (and on a majority).

Each node's data dir is a lazy FUSE disk (``ringrift_cluster.testing.powercut``): what no fsync
covered is lost when the disk "loses power". With ``raft.durability`` ``fsync`` or ``batch``
nothing the cluster acknowledged may be missing afterwards; with ``none`` (what pysyncobj does
alone) the same harness must show writes lost, or it proves nothing."""

from __future__ import annotations

import itertools
import random
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ringrift_cluster.testing import LocalCluster, wait_until
from ringrift_cluster.testing.powercut import PowerCutDisk

pytestmark = pytest.mark.integration
START_S = 40.0
TOKEN = "power-cut-token"


class Writer:
    """Adds work items through random nodes with request ids; keeps the acknowledged ones."""

    def __init__(self, cluster: LocalCluster, nodes: list[str]) -> None:
        self.cluster, self.nodes = cluster, nodes
        self.acked: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.rng = random.Random(7)

    def run(self) -> None:
        for i in itertools.count():
            if self.stop.is_set():
                return
            work_id = f"w{i:05d}"
            try:
                status, _ = self.cluster.post(self.rng.choice(self.nodes), "/raft/work",
                                              {"work_id": work_id, "work_type": "t", "request_id": work_id}, timeout=3)
            except OSError:
                continue
            if status == 200:
                self.acked.append(work_id)


def start(tmp_path: Path, consensus: str, durability: str,
          first: list[str] | None = None) -> tuple[LocalCluster, dict[str, PowerCutDisk]]:
    """A cluster on power-cut disks, ``first`` (default: every node) started and serving."""
    cluster = LocalCluster(3, tmp_path / "cluster", auth_token=TOKEN,
                           settings={"consensus_mode": consensus, "raft": {"durability": durability}})
    disks = {n: PowerCutDisk(tmp_path / "disks" / n, node.data_dir) for n, node in cluster.nodes.items()}
    for disk in disks.values():
        disk.mount()
    cluster.write_config()
    for node_id in first or list(cluster.nodes):
        cluster.start(node_id)
    cluster.wait_converged(START_S)
    cluster.wait_for_leader(START_S, among=first)
    return cluster, disks


def cut(cluster: LocalCluster, disks: dict[str, PowerCutDisk], victims: list[str]) -> None:
    for node_id in victims:  # the machines die ...
        cluster.kill(node_id)
    for node_id in victims:  # ... and whatever their disks had not synced is gone
        disks[node_id].cut()
    for node_id in victims:
        disks[node_id].mount()


def missing(cluster: LocalCluster, acked: list[str]) -> list[str]:
    """The acknowledged work ids a linearizable read does not find (404), after retries of
    reads that got no answer (a leader change is not a loss)."""
    reader = cluster.running()[0]
    url = cluster.nodes[reader].url

    def status_of(work_id: str) -> int | None:
        try:
            with urllib.request.urlopen(f"{url}/raft/work/{work_id}?consistent=true", timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as e:
            return e.code if e.code in (200, 404) else None
        except OSError:
            return None

    return [w for w in acked if wait_until(lambda: status_of(w), 30, what=f"a read of {w}") == 404]


def run_cut(tmp_path: Path, consensus: str, durability: str, victims: list[str] | None) -> tuple[list[str], list[str], bool]:
    """(acknowledged, lost, served again) for one power cut of ``victims`` (None: all)."""
    cluster, disks = start(tmp_path, consensus, durability)
    try:
        writer = Writer(cluster, list(cluster.nodes))
        writer.thread.start()
        wait_until(lambda: len(writer.acked) >= 40, 60, what="40 acknowledged writes")
        cut(cluster, disks, victims or list(cluster.nodes))
        writer.stop.set()
        writer.thread.join(timeout=30)
        acked = list(writer.acked)
        for node_id in victims or list(cluster.nodes):
            cluster.start(node_id)
        try:
            cluster.wait_for_leader(START_S)
        except Exception:
            return acked, acked, False  # an engine that never serves again has lost everything
        return acked, missing(cluster, acked), True
    finally:
        cluster.shutdown()
        for disk in disks.values():
            disk.stop()


@pytest.mark.parametrize("consensus,durability", [("raft", "batch"), ("raft", "fsync"), ("hybrid", "batch")])
def test_a_power_cut_of_every_node_loses_no_acknowledged_write(tmp_path: Path, consensus: str, durability: str) -> None:
    acked, lost, served = run_cut(tmp_path, consensus, durability, None)
    assert served, "the cluster did not serve again after the power cut"
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged writes lost: {lost[:10]}"


def test_a_power_cut_of_a_majority_loses_no_acknowledged_write(tmp_path: Path) -> None:
    acked, lost, served = run_cut(tmp_path, "raft", "batch", ["node-1", "node-2"])
    assert served and not lost, (served, len(acked), lost[:10])


def test_without_durability_the_same_cut_loses_acknowledged_writes(tmp_path: Path) -> None:
    """The harness can fail: pysyncobj alone keeps its journal in unsynced memory."""
    acked, lost, served = run_cut(tmp_path, "raft", "none", None)
    assert lost or not served, f"no write lost out of {len(acked)}: the harness cut nothing"


def test_a_snapshot_sent_to_a_late_member_survives_a_power_cut(tmp_path: Path) -> None:
    """A member that starts after the leader compacted its log gets the leader's snapshot, and
    that is then its whole state: pysyncobj writes it without fsync, so it must be made durable
    before the member acknowledges it (found by the netns power-cut scenario: an empty dump after
    the cut, the member's replica different from everyone's for good)."""
    first = ["node-1", "node-2"]
    cluster, disks = start(tmp_path, "raft", "batch", first)
    try:
        leader = cluster.wait_for_leader(START_S, among=first)
        for i in range(10):
            status, body = cluster.post(leader, "/raft/work", {"work_id": f"s{i}", "work_type": "t"}, timeout=5)
            assert status == 200, body
        # The leader's first dump drops the entries it covers: node-3 can only get a snapshot.
        raft_status = lambda n: cluster.get(n, "/raft/status") or {}  # noqa: E731
        wait_until(lambda: all(raft_status(n).get("dump_file_written") for n in first), 30,
                   what="both members compacted", describe=lambda: {n: raft_status(n) for n in first})
        cluster.start("node-3")
        wait_until(lambda: raft_status("node-3").get("dump_file_written")
                   and raft_status("node-3").get("applied_index", 0) >= raft_status(leader).get("commit_index", 1),
                   30, what="node-3 installed the snapshot", describe=lambda: raft_status("node-3"))
        cut(cluster, disks, list(cluster.nodes))
        for node_id in cluster.nodes:
            cluster.start(node_id)
        cluster.wait_for_leader(START_S)

        def digests() -> dict[str, object]:
            return {n: (cluster.get(n, "/state/digest") or {}).get("digest") for n in cluster.nodes}

        wait_until(lambda: len(set(digests().values())) == 1 and None not in digests().values(), 30,
                   what="every replica the same after the power cut", describe=digests)
    finally:
        cluster.shutdown()
        for disk in disks.values():
            disk.stop()


@pytest.mark.parametrize("durability", ["batch", "fsync", "none"])
def test_the_meta_file_survives_the_engines_own_rewrite_of_it(tmp_path: Path, durability: str) -> None:
    """pysyncobj rewrites its meta file (term, vote, commit index) about once a second by renaming
    an unsynced file over it: after a power cut that file is empty and the vote forgotten (a
    member could vote twice in one term). The durable journal writes it by the durable rule,
    the log first; with none (pysyncobj alone) the same steps lose it."""
    from pysyncobj import journal as pso_journal

    from ringrift_cluster.consensus.raft.durable import journal_class

    disk = PowerCutDisk(tmp_path / "backing", tmp_path / "mount")
    disk.mount()
    try:
        path = str(tmp_path / "mount" / "node.journal")
        journal = (pso_journal.FileJournal(path) if durability == "none"
                   else journal_class(pso_journal)(path, durability))
        journal.add(b"command", 1, 5)
        journal.setCurrentTerm(5, "node-2")
        journal.setRaftCommitIndex(1)
        journal.onOneSecondTimer()  # the engine's periodic store of the commit index
        disk.cut()
        del journal  # never touched again: its disk is gone, as after a power cut
        disk.mount()
        try:
            again = pso_journal.FileJournal(path)
        except ValueError as e:  # pysyncobj cannot map the empty journal a power cut left
            kept: object = f"{type(e).__name__}: {e}"
        else:
            kept = (again.getCurrentTerm(), again.getVotedForNodeId(), again.getRaftCommitIndex(), len(again))
            again._destroy()
    finally:
        disk.stop()
    if durability == "none":
        assert kept != (5, "node-2", 1, 1), f"the harness lost nothing: {kept}"
        print("without durability:", kept)
    else:
        assert kept == (5, "node-2", 1, 1), kept
