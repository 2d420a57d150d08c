"""Recover the Raft state after a Raft run that ended without an export (a crash of all).

pysyncobj's files are its own (a pickled log and dump), so the state they hold is read the only
sound way: by running the engine on them with the other members (who are starting too, in the
same new mode), committing a barrier, and taking the snapshot. If no leader appears in time, the
state this replica applied locally is taken: the newest of all members' wins later anyway. The
engine stays up a little longer so slower members can finish theirs.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from ..config import ClusterConfig
from ..errors import ClusterError
from ..state import StateMachine
from ..state.lineage import of_snapshot

_LINGER_S = 5.0
_lingering: set[asyncio.Task[None]] = set()


async def recover_raft_state(config: ClusterConfig) -> dict[str, Any] | None:
    from ..consensus.raft import RaftConsensus  # imported only when a recovery is needed
    from .raft import RaftStore

    log = structlog.get_logger("ringrift.store.recovery").bind(node_id=config.node_id)
    if config.node_id not in config.raft_members or not (config.data_dir / "raft").exists():
        return None
    raft = RaftConsensus(config, StateMachine())
    store = RaftStore(raft, runs_engine=True)
    try:
        await store.start()
    except ClusterError as e:
        log.error("raft_recovery_failed", reason=str(e))
        return None
    wait = config.state.reconcile_wait_s
    snapshot: dict[str, Any] | None = None
    try:
        await raft.wait_for_leader(wait)
        snapshot = await store.read(lambda m: m.snapshot(), linearizable=True, timeout=wait)
        how = "committed"
    except ClusterError as e:
        log.warning("raft_recovery_local_only", reason=str(e))
        snapshot = await store.read_local(lambda m: m.snapshot())
        how = "local"
    log.info("raft_state_recovered", how=how, lineage=str(of_snapshot(snapshot)))

    async def linger() -> None:
        try:
            await asyncio.sleep(_LINGER_S)
        finally:
            await store.stop()

    task = asyncio.create_task(linger(), name="raft-recovery-linger")
    _lingering.add(task)
    task.add_done_callback(_lingering.discard)
    return snapshot


async def stop_lingering() -> None:
    """Stop recovery engines still running (a node stopping within the linger)."""
    for task in list(_lingering):
        task.cancel()
    await asyncio.gather(*_lingering, return_exceptions=True)
