"""A long run on one cluster, judged by what the node processes use over time.

:class:`Sampler` reads, every ``interval_s``, each node's resident memory and open file
descriptors (``/proc/<pid>``, the pid its ``/health`` names) and, from its ``/metrics``, the
tasks its event loop holds and how many event-loop stalls over 100 ms it has counted
(``ringrift_event_loop_stall_seconds``). :func:`judge` compares the end of the run with the end
of the warm-up, per node:

- resident memory grew by at most ``rss_growth`` (10 %);
- the task count stayed within ``task_slack`` of the warm-up's highest (tasks do not pile up);
- no event-loop stall over 100 ms after the warm-up (or another bound of :data:`STALL_BOUNDS`);
- open descriptors stayed within ``fd_slack`` of the warm-up's highest (no leak; HTTP
  connections come and go).

Nodes restarted during the run (a new pid) are judged from their restart on.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from .api_client import OPENER as _OPENER
# The soak's cluster keeps small retention bounds (``state.*``) and its load abandons no claim,
# so its state stops growing within the warm-up: memory that grows after that is a leak, not data.
STEADY_LIMITS = {"max_finished_work": 300, "max_finished_jobs": 300, "dedup_max_entries": 2000}
STALL_S = 0.1  # by default a stall longer than this is a violation
STALL_BOUNDS = (0.1, 0.25, 0.5, 1.0)  # bounds a run can be judged by: bucket bounds of the histogram


@dataclass(frozen=True)
class Sample:
    t: float  # wall clock
    node: str
    pid: int
    rss_kb: int
    fds: int
    tasks: int
    stalls_over: tuple[int, ...]  # event-loop stalls over each of STALL_BOUNDS since the node started
    stall_max_s: float
    records: int = 0  # records in this node's copy of the state (ringrift_state_records)


def _metrics(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(("ringrift_event_loop_", "ringrift_state_records ")):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def read_sample(node_id: str, url: str, timeout: float = 2.0) -> Sample | None:
    """One node's figures now, or None when it does not answer (paused, restarting)."""
    try:
        with _OPENER.open(url + "/health", timeout=timeout) as r:
            pid = int(json.loads(r.read())["pid"])
        with _OPENER.open(url + "/metrics", timeout=timeout) as r:
            m = _metrics(r.read().decode())
        status = open(f"/proc/{pid}/status").read()
        rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, ValueError, KeyError, StopIteration):
        return None
    count = m.get("ringrift_event_loop_stall_seconds_count", 0.0)
    over = tuple(int(count - m.get(f'ringrift_event_loop_stall_seconds_bucket{{le="{b}"}}', 0.0)) for b in STALL_BOUNDS)
    return Sample(time.time(), node_id, pid, rss, fds, int(m.get("ringrift_event_loop_tasks", 0)), over,
                  m.get("ringrift_event_loop_stall_max_seconds", 0.0), int(m.get("ringrift_state_records", 0)))


class Sampler:
    """Samples every node of ``cluster`` every ``interval_s`` in a background thread."""

    def __init__(self, cluster: Any, interval_s: float = 5.0, progress: Callable[[str], None] | None = None,
                 progress_every_s: float = 60.0) -> None:
        self.cluster, self.interval_s = cluster, interval_s
        self.progress, self.progress_every_s = progress, progress_every_s
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)

    def start(self) -> "Sampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        started = last_told = time.monotonic()
        while not self._stop.is_set():
            latest = []
            for node_id, node in list(self.cluster.nodes.items()):
                if getattr(node, "running", True):
                    s = read_sample(node_id, node.url)
                    if s is not None:
                        self.samples.append(s)
                        latest.append(s)
            if self.progress is not None and latest and time.monotonic() - last_told >= self.progress_every_s:
                last_told = time.monotonic()
                rss = [s.rss_kb / 1024 for s in latest]
                self.progress(f"soak {(last_told - started) / 60:.0f} min: {len(latest)} nodes answering, RSS "
                              f"{min(rss):.0f}-{max(rss):.0f} MB, tasks <= {max(s.tasks for s in latest)}, fds <= "
                              f"{max(s.fds for s in latest)}, longest stall {max(s.stall_max_s for s in latest):.3f} s, "
                              f"state records <= {max(s.records for s in latest)}")
            self._stop.wait(self.interval_s)


@dataclass
class NodeFigures:
    node: str
    samples: int
    rss_warm_kb: int
    rss_end_kb: int
    tasks_warm_max: int
    tasks_end_max: int
    fds_warm_max: int
    fds_end_max: int
    stalls_after_warmup: int
    stall_max_s: float  # over the whole run, warm-up included
    stall_s: float = STALL_S  # the bound stalls_after_warmup counts over
    records_warm: int = 0  # state records at the end of the warm-up and at the end: memory the
    records_end: int = 0  # state needs as it fills its bounded tables, not a leak

    @property
    def rss_growth(self) -> float:
        return self.rss_end_kb / self.rss_warm_kb - 1 if self.rss_warm_kb else 0.0

    def row(self) -> str:
        return (f"{self.node:<8} {self.samples:>7} {self.rss_warm_kb / 1024:>8.1f} {self.rss_end_kb / 1024:>8.1f} "
                f"{self.rss_growth * 100:>+7.1f}% {self.tasks_warm_max:>5}/{self.tasks_end_max:<5} "
                f"{self.fds_warm_max:>4}/{self.fds_end_max:<4} {self.stalls_after_warmup:>12} "
                f"{self.stall_max_s * 1000:>9.0f} {self.records_warm:>7}/{self.records_end:<7}")


HEADER = (f"{'node':<8} {'samples':>7} {'rss MB':>8} {'end MB':>8} {'growth':>8} {'tasks':>11} "
          f"{'fds':>9} {'stalls>bound':>12} {'max ms':>9} {'state records':>15}")


def judge(samples: list[Sample], warmup_end: float, *, rss_growth: float = 0.10, task_slack: int = 10,
          fd_slack: int = 8, stall_s: float = STALL_S, tail: float = 1 / 3) -> tuple[list[NodeFigures], list[str]]:
    """Per node: its figures, and what broke a bound. The warm-up is every sample before
    ``warmup_end``; the end is the last ``tail`` of the samples after it; ``stall_s`` is one of
    :data:`STALL_BOUNDS`."""
    k = STALL_BOUNDS.index(stall_s)
    figures, violations = [], []
    nodes = sorted({s.node for s in samples})
    for node in nodes:
        mine = [s for s in samples if s.node == node]
        pid = mine[-1].pid  # judge the last process of this node from its start
        mine = [s for s in mine if s.pid == pid]
        warm = [s for s in mine if s.t < warmup_end]
        after = [s for s in mine if s.t >= warmup_end]
        if not warm or len(after) < 3:
            violations.append(f"{node}: too few samples to judge ({len(warm)} in the warm-up, {len(after)} after)")
            continue
        end = after[-max(1, int(len(after) * tail)):]
        f = NodeFigures(node, len(mine), warm[-1].rss_kb, end[-1].rss_kb, max(s.tasks for s in warm),
                        max(s.tasks for s in end), max(s.fds for s in warm), max(s.fds for s in end),
                        after[-1].stalls_over[k] - warm[-1].stalls_over[k], max(s.stall_max_s for s in mine),
                        stall_s, warm[-1].records, end[-1].records)
        figures.append(f)
        if f.rss_growth > rss_growth:
            violations.append(f"{node}: resident memory grew {f.rss_growth * 100:.1f}% after the warm-up "
                              f"({f.rss_warm_kb} kB -> {f.rss_end_kb} kB; bound {rss_growth * 100:.0f}%; state "
                              f"records {f.records_warm} -> {f.records_end})")
        if f.tasks_end_max > f.tasks_warm_max + task_slack:
            violations.append(f"{node}: event-loop tasks grew from at most {f.tasks_warm_max} to "
                              f"{f.tasks_end_max} (slack {task_slack})")
        if f.fds_end_max > f.fds_warm_max + fd_slack:
            violations.append(f"{node}: open file descriptors grew from at most {f.fds_warm_max} to "
                              f"{f.fds_end_max} (slack {fd_slack})")
        if f.stalls_after_warmup:
            violations.append(f"{node}: {f.stalls_after_warmup} event-loop stalls over {stall_s * 1000:.0f} ms "
                              f"after the warm-up (longest in the run {f.stall_max_s * 1000:.0f} ms)")
    return figures, violations


def table(figures: list[NodeFigures]) -> str:
    return "\n".join([HEADER, "-" * len(HEADER)] + [f.row() for f in figures])


@dataclass
class SoakResult:
    segments: list[Any]  # the ScenarioResult of the run (its history checks)
    figures: list[NodeFigures]
    violations: list[str]  # the resource bounds broken
    samples: int

    @property
    def ok(self) -> bool:
        return not self.violations and all(r.ok for r in self.segments)


def steady_settings(settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Cluster settings with the soak's retention bounds (``STEADY_LIMITS``) added."""
    out = dict(settings or {})
    out["state"] = {**out.get("state", {}), **STEADY_LIMITS}
    return out


def steady_workload(**kwargs: Any) -> Any:
    """The state workload as a steady load: no claim abandoned, a model version every 40 items
    (not 4), and finished items allowed to be compacted away before the final read."""
    from .workload import StateWorkload

    return StateWorkload(**{"workers": 3, "abandon": 0.0, "model_every": 40, "compacts": True, **kwargs})


def run_soak(cluster: Any, minutes: float, *, seed: int, workload: Any = None, warmup_s: float | None = None,
             interval_s: float = 5.0, stall_s: float = STALL_S, timings: Any = None,
             progress: Callable[[str], None] | None = None, **bounds: Any) -> SoakResult:
    """Keep ``cluster`` under ``workload`` with no fault for ``minutes`` (one scenario run, so its
    history is checked once, at the end), sampling every node meanwhile; then judge the samples
    taken while the workload ran (the final reads and checks are not steady operation). The
    warm-up is the first ``warmup_s`` (default: a quarter of the run, at most 3 minutes).
    ``progress`` gets a line of the latest figures about once a minute."""
    from .nemesis import run_scenario

    total = minutes * 60
    warmup_s = warmup_s if warmup_s is not None else min(180.0, total / 4)
    if workload is not None and getattr(workload, "lease_s", None) is not None:
        # A claim the workload abandons must keep its lease to the end (the history's model has no
        # claim expiry): one shorter than the run expires mid-soak and reads back as pending.
        workload.lease_s = max(workload.lease_s, total + 300.0)
    held: dict[str, float] = {}

    def steady(run: Any) -> None:
        """No fault: the workload runs."""
        held["from"] = time.time()
        run.hold(total)
        held["to"] = time.time()

    if not cluster.running():
        cluster.start_all()
    cluster.wait_for_leader(60)
    sampler = Sampler(cluster, interval_s, progress).start()
    try:
        result = run_scenario(steady, cluster, seed, name="soak", timings=timings, workload=workload)
    finally:
        sampler.stop()
    began, ended = held.get("from", time.time()), held.get("to", time.time())
    steady_samples = [s for s in sampler.samples if began <= s.t <= ended]
    figures, violations = judge(steady_samples, began + warmup_s, stall_s=stall_s, **bounds)
    return SoakResult([result], figures, violations, len(steady_samples))


__all__ = ["HEADER", "NodeFigures", "STALL_BOUNDS", "STALL_S", "STEADY_LIMITS", "Sample", "Sampler", "SoakResult", "judge",
           "read_sample", "run_soak", "steady_settings", "steady_workload", "table"]


