"""Group commit (``raft.durability: batch``) on three real pysyncobj members in one process.

The leader sends its AppendEntries before its own sync, so the two writes overlap; what must hold
is Raft's rule: no member acknowledges an entry before it is on its disk, and the leader never
counts an entry toward a commit before it is on its own."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from pysyncobj import SyncObj, SyncObjConf
from pysyncobj import journal as pso_journal
from pysyncobj import syncobj as pso_syncobj
from pysyncobj.transport import TCPTransport

from ringrift_cluster.consensus.raft.durable import build_durably
from ringrift_cluster.testing import wait_until
from ringrift_cluster.testing.local_cluster import free_base_port

from pso_counter import Counter, await_all

pytestmark = pytest.mark.integration


def last_index(journal: Any) -> int:
    return journal[-1][1] if len(journal) else 0


def test_no_entry_is_acknowledged_or_counted_before_it_is_synced(tmp_path: Path, monkeypatch: Any) -> None:
    synced: dict[int, int] = {}  # id(journal) -> the last index its latest sync covered
    owner: dict[int, Any] = {}  # id(transport) -> its journal
    violations: list[str] = []
    acks = [0]
    real_send = TCPTransport.send

    def watched_send(self: Any, node: Any, message: Any) -> Any:
        journal = owner.get(id(self))
        if journal is not None and message.get("type") == "next_node_idx" and message.get("success"):
            acks[0] += 1
            if message["next_node_idx"] - 1 > synced.get(id(journal), 0):
                violations.append(f"ack of {message['next_node_idx'] - 1} with {synced.get(id(journal))} synced")
        return real_send(self, node, message)

    monkeypatch.setattr(TCPTransport, "send", watched_send)  # before the members capture it
    base = free_base_port(3)
    addresses = [f"127.0.0.1:{base + i}" for i in range(3)]
    members, lock = [], threading.Lock()
    try:
        for i, address in enumerate(addresses):
            conf = SyncObjConf(journalFile=str(tmp_path / f"m{i}.journal"), appendEntriesUseBatch=False,
                               dynamicMembershipChange=False)
            counter = Counter()
            syncobj, journal = build_durably(
                "batch", pso_syncobj, pso_journal,
                lambda a=address: SyncObj(a, [o for o in addresses if o != a], conf=conf, consumers=[counter]),
                solo=False, guard=lock)
            owner[id(syncobj._SyncObj__transport)] = journal
            sync, set_commit = journal.sync, journal.setRaftCommitIndex

            def watched_sync(journal: Any = journal, sync: Any = sync) -> None:
                at = last_index(journal)
                sync()
                synced[id(journal)] = at

            def watched_commit(index: int, journal: Any = journal, syncobj: Any = syncobj,
                               set_commit: Any = set_commit) -> None:
                if syncobj._isLeader() and index > synced.get(id(journal), 0):
                    violations.append(f"leader committed {index} with {synced.get(id(journal))} synced")
                set_commit(index)

            journal.sync, journal.setRaftCommitIndex = watched_sync, watched_commit
            members.append((syncobj, counter))
        wait_until(lambda: any(s._isLeader() for s, _ in members), 30, what="a leader")
        leader, counter = next(m for m in members if m[0]._isLeader())
        await_all([counter.add] * 400, 30)
        # Commands forwarded through a follower: the leader answers with their index before its
        # sync (that answer claims nothing of its log); acknowledgements and commits still wait.
        follower_counter = next(c for s, c in members if s is not leader)
        await_all([follower_counter.add] * 50, 30, what="a forwarded command")
        wait_until(lambda: all(c.value == 450 for _, c in members), 30,
                   what="every member applied 450", describe=lambda: [c.value for _, c in members])
    finally:
        for syncobj, _ in members:
            syncobj.destroy()
    assert acks[0] > 0, "no acknowledgement seen: the watch saw nothing"
    assert not violations, violations[:10]
    leader_journal = owner[id(leader._SyncObj__transport)]
    assert leader_journal.syncs < 450, f"{leader_journal.syncs} syncs on the leader for 450 entries: no grouping"
    # What GET /raft/status reports as engine_stalls.longest_journal_sync_ms / longest_meta_write_ms.
    assert 0 < leader_journal.longest_sync_s < 30 and leader_journal.longest_meta_s < 30
    print(f"leader: {leader_journal.syncs} syncs for 450 entries; {acks[0]} acknowledgements")
