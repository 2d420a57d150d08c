"""What a fault-scenario run is made of: its :class:`Timings`, the :class:`Workload` protocol,
the :class:`Op` s it logged, its :class:`ScenarioResult`, and the node issues it once found
(``KNOWN_*``, all fixed, reported under their names should they come back)."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from .netns import NetnsCluster

RECOVERY = ("heal", "resume", "start", "clear_loss", "unthrottle")

# Node issues these scenarios found, all fixed since. Their signatures stay, so that if one comes
# back it is reported under its name (the tests and scripts/faults.py fail on them as on any
# other violation).
KNOWN_PAUSED_SWEEP = ("regression (heartbeat sweep after a local stall): a node resumed after SIGSTOP "
                      "declares its healthy peers failed before reading their queued heartbeats")
KNOWN_BULLY_ALIVE = ("regression (Bully liveness): a higher node that cannot win (no quorum in its view) still "
                     "answers ALIVE, so the candidates below it defer and time out forever; no leader while "
                     "the leader is cut from a majority but still reaches one follower")
KNOWN_EPOCH_INFLATION = ("regression (Bully epochs): every lost candidacy raises the candidate's persisted epoch; "
                         "after a restart it rejects the elected leader's lower epoch as stale and stays "
                         "leaderless, and the leader never moves above the epoch it saw")
KNOWN_ISSUES = (KNOWN_PAUSED_SWEEP, KNOWN_BULLY_ALIVE, KNOWN_EPOCH_INFLATION)


@dataclass(frozen=True)
class Timings:
    """Bounds the scenarios hold the cluster to. The defaults are the ``local`` preset's
    (heartbeat 0.5 s, suspect 2 s, peer timeout 4 s, lease 4 s, election timeout 2 s, jitter 5 %)
    plus slack for a loaded 2-core machine."""

    start_s: float = 30.0  # processes up, converged, a leader
    detect_s: float = 4.0 * 1.05 + 2.0  # a silent peer is failed in every view
    lease_s: float = 4.0  # a leader's lease, as voters grant it
    failover_s: float = 4.0 + 4.0 * 1.05 + 2.0 + 3.0  # lease + detection + election timeout + slack
    converge_s: float = 20.0  # after heal / restart: everyone alive everywhere, one leader
    pause_s: float = 5.0  # SIGSTOP length in the pause scenario
    loss_percent: float = 10.0
    loss_hold_s: tuple[float, float] = (15.0, 25.0)
    hold_s: tuple[float, float] = (2.0, 5.0)  # how long a fault stays after its effect is seen
    slow_share: float = 0.6  # the slow node is stopped this share of every slow_period_s
    slow_period_s: float = 0.3


class Workload(Protocol):
    """Client operations on replicated state during a scenario, and their checker.

    ``start`` is called once the cluster has a leader (run clients in threads against
    ``cluster``); ``stop`` before the final checks; ``check`` returns violations found in the
    recorded history (acknowledged writes lost, two live claims of one work item, overlapping
    lock holders by fence token, replicas different after heal); ``summary`` the counts for the
    report (operations issued, acknowledged, failed)."""

    name: str

    def start(self, cluster: NetnsCluster, rng: random.Random) -> None: ...

    def stop(self) -> None: ...

    def check(self) -> list[str]: ...

    def summary(self) -> dict[str, int]: ...


@dataclass
class Op:
    t: float  # wall clock
    kind: str
    detail: dict[str, Any]

    def __str__(self) -> str:
        args = " ".join(f"{k}={v}" for k, v in self.detail.items())
        return f"{time.strftime('%H:%M:%S', time.localtime(self.t))}.{int((self.t % 1) * 1000):03d} {self.kind} {args}".rstrip()


@dataclass
class ScenarioResult:
    name: str
    seed: int
    ops: list[Op]
    violations: list[str]
    known: list[str]  # violations of a known, reported node issue (see KNOWN_ISSUES)
    notes: list[str]  # odd but not unsafe observations (counts)
    max_unavailable_s: float
    duration_s: float
    rounds: int
    workload: dict[str, int] = field(default_factory=dict)
    fault_window: tuple[float, float] | None = None  # wall clock: first fault .. last recovery op

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def faults(self) -> int:
        return sum(1 for op in self.ops if op.kind not in RECOVERY)

    def report(self) -> str:
        lines = [f"{self.name} seed={self.seed}: {len(self.ops)} ops, {len(self.violations)} violations, "
                 f"max unavailability {self.max_unavailable_s:.1f}s, {self.duration_s:.1f}s, {self.rounds} rounds"]
        lines += [f"  op  {op}" for op in self.ops]
        lines += [f"  VIOLATION {v}" for v in self.violations]
        lines += [f"  KNOWN {v}" for v in self.known]
        lines += [f"  note {v}" for v in self.notes]
        return "\n".join(lines)


__all__ = ["KNOWN_BULLY_ALIVE", "KNOWN_EPOCH_INFLATION", "KNOWN_ISSUES", "KNOWN_PAUSED_SWEEP", "RECOVERY", "Op",
           "ScenarioResult", "Timings", "Workload"]
