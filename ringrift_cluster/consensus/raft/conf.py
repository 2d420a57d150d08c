"""What a Raft member runs with, from the config alone: pysyncobj's ``SyncObjConf`` keywords, the
leader-loss hint timing, the address <-> node id edge, and the files under ``data_dir/raft``
(with the lock that keeps a second process off them)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...config import ClusterConfig, RaftSettings
from ...errors import BackendUnavailable
from ...model import NodeId

try:
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX
    fcntl = None  # type: ignore[assignment]


def address(host: str, port: int) -> str:
    return f"{host}:{port}"


def ids_by_address(config: ClusterConfig) -> dict[str, NodeId]:
    """pysyncobj names members by ``host:raft_port``; we name them by node id."""
    return {address(config.hosts[n].address, config.hosts[n].raft_port): n for n in config.raft_members}


def pysyncobj_conf(s: RaftSettings, files: "RaftFiles") -> dict[str, Any]:
    """The SyncObjConf keyword arguments a member runs with."""
    return {
        "raftMinTimeout": s.min_timeout_s,
        "raftMaxTimeout": s.max_timeout_s,
        "appendEntriesPeriod": s.append_entries_period_s,
        "appendEntriesUseBatch": False,  # commit on send (~0.5 ms), not every period
        "connectionRetryTime": s.connection_retry_s,
        "connectionTimeout": s.connection_timeout_s,
        "leaderFallbackTimeout": s.leader_fallback_timeout_s,
        "commandsWaitLeader": False,  # no leader -> MISSING_LEADER now, not a late commit
        "bindAddress": address(s.bind_host, s.bind_port),
        "password": s.password or None,
        "journalFile": str(files.journal),
        "fullDumpFile": str(files.dump),
        "logCompactionMinEntries": s.log_compaction_min_entries,
        "logCompactionMinTime": s.log_compaction_min_time_s,
        "dynamicMembershipChange": False,
        "autoTick": True,
        # How often the tick thread wakes with nothing to do (sockets wake it at once). Twice per
        # heartbeat period keeps heartbeats on time; more is idle CPU (0.5 % of a core at 20 Hz).
        "autoTickPeriod": min(0.1, max(0.05, s.append_entries_period_s / 2)),
        "useFork": False,  # no fork() of a multi-threaded process; snapshots are small
        "bindRetryTime": 0.25,
        "maxBindRetries": 4,  # a taken port fails start() in ~1 s instead of retrying forever
    }


def hint_settings(s: RaftSettings) -> dict[str, float]:
    """LeaderLossHints timing: confirm a closed connection for one heartbeat period; rank
    steps of two periods (longer than a tick and a vote's round trip), jitter one period."""
    if not s.leader_hints:
        return {}
    period = s.append_entries_period_s
    return {"confirm_s": period, "step_s": 2 * period, "jitter_s": period}


@dataclass
class RaftFiles:
    """``data_dir/raft``: this member's journal and full dump, and the lock file."""

    dir: Path
    journal: Path
    dump: Path
    _fd: int | None = None

    @classmethod
    def of(cls, config: ClusterConfig) -> "RaftFiles":
        d = Path(config.data_dir) / "raft"
        return cls(d, d / f"{config.node_id}.journal", d / f"{config.node_id}.dump")

    def lock(self) -> None:
        """A second process on the same data dir would share the journal: refuse it."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if fcntl is None:
            return
        path = self.dir / "lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise BackendUnavailable(f"raft: {path} is held by another process (already running?)") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def unlock(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


__all__ = ["RaftFiles", "address", "hint_settings", "ids_by_address", "pysyncobj_conf"]
