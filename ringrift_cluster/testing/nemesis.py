"""The fault-scenario runner over a :class:`~ringrift_cluster.testing.netns.NetnsCluster`, seeded
(the catalogue of scenarios is :mod:`ringrift_cluster.testing.scenarios`).

A scenario is a function of a :class:`ScenarioRun`: it injects faults (``run.op``), holds them
(``run.hold``, a deadline wait), and states what the cluster must do meanwhile (``run.expect``:
something becomes true in time; ``run.never``: something stays false for a while). A failed
expectation is a *violation*, recorded, not raised, so one run reports everything it saw.
Victims, group splits and hold times come from the seed, so a seed replays a schedule.

The runner (:func:`run_scenario`) starts the cluster, records its history
(:class:`~ringrift_cluster.testing.history.Recorder`) while the scenario runs, heals everything
at the end, requires one agreed leader and full convergence again, then checks the history:
at most one leader per term, no two unexpired leases at once, no healthy node declared failed
(where the scenario asks for it), and the longest time with no majority-acknowledged leader.

Replicated state (claims, locks, acknowledged writes) gets checked through a :class:`Workload`:
the runner starts it once the cluster has a leader, stops it before the final checks and adds its
violations (``workload.StateWorkload`` drives the state HTTP API).
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any, Callable, Iterable, TypeVar

from .history import (Exemption, Recorder, false_deaths, leader_violations, max_window, role_mismatches,
                      unavailability)
from .throttle import Throttle
from .nemesis_types import (KNOWN_BULLY_ALIVE, KNOWN_EPOCH_INFLATION, KNOWN_ISSUES, KNOWN_PAUSED_SWEEP, RECOVERY, Op,
                            ScenarioResult, Timings, Workload)
from .netns import NetnsCluster

T = TypeVar("T")


class ScenarioRun:
    """What a scenario body works with: the cluster, the seeded RNG, the timings, and verbs that
    log each fault and each broken expectation."""

    def __init__(self, name: str, cluster: NetnsCluster, seed: int, timings: Timings, recorder: Recorder) -> None:
        self.name = name
        self.cluster = cluster
        self.seed = seed
        self.rng = random.Random(f"{name}:{seed}")
        self.timings = timings
        self.recorder = recorder
        self.ops: list[Op] = []
        self.violations: list[str] = []
        self.known: list[str] = []
        self.exemptions: list[Exemption] = []
        self.check_deaths = False
        self.killed: dict[str, float] = {}  # node -> when it was killed (exempt until it is back)
        self.restarted: dict[str, float] = {}  # killed node -> when it was started again
        self._stop = threading.Event()
        self.throttles: dict[str, Throttle] = {}  # node -> its running throttle

    @property
    def ids(self) -> list[str]:
        return list(self.cluster.nodes)

    @property
    def quorum(self) -> int:
        return len(self.cluster.voters) // 2 + 1

    # -- Faults --------------------------------------------------------------------------------

    def op(self, kind: str, **detail: Any) -> float:
        """Do one named operation on the cluster and log it; returns its wall-clock time."""
        t = time.time()
        self.ops.append(Op(t, kind, detail))
        if kind in ("kill", "power_cut"):
            for node in detail["nodes"]:
                self.killed.setdefault(node, t)
        elif kind == "start":
            for node in detail["nodes"]:
                if node in self.killed:
                    self.restarted[node] = t
        c = self.cluster
        if kind == "isolate":
            c.isolate(detail["node"])
        elif kind == "partition":
            c.partition(detail["groups"])
        elif kind == "drop":
            c.drop(detail["src"], detail["dst"])
        elif kind == "loss_all":
            c.loss_all(detail["percent"])
        elif kind == "loss":
            c.loss(detail["node"], detail["percent"], detail.get("direction", "both"))
        elif kind in ("heal", "clear_loss"):
            c.heal()
        elif kind == "kill":
            c.kill_many(detail["nodes"])
        elif kind == "power_cut":  # SIGKILL and unsynced writes lost at once (a PowerCutCluster)
            c.power_cut(detail["nodes"])  # type: ignore[attr-defined]
        elif kind == "term":
            for node in detail["nodes"]:
                c.stop(node)
        elif kind == "pause":
            c.pause(detail["node"])
        elif kind == "resume":
            c.resume(detail["node"])
        elif kind == "throttle":
            node = detail["node"]
            self.throttles[node] = Throttle(lambda sig: c.signal(node, sig), share=detail["share"],
                                            period_s=detail["period_s"]).start()
        elif kind == "unthrottle":
            self.throttles.pop(detail["node"]).stop()
        elif kind == "start":
            for node in detail["nodes"]:
                c.start(node)
        else:
            raise ValueError(f"unknown operation {kind!r}")
        return t

    def exempt(self, node: str, start: float, end: float = float("inf"), *, as_peer: bool = True,
               as_observer: bool = False, known: str | None = None) -> None:
        """Verdicts about ``node`` (and, ``as_observer``, by it) in [start, end] are no violation:
        it is the one the fault hit. With ``known`` they are reported as that known issue."""
        self.exemptions.append(Exemption(node, start, end, as_peer, as_observer, known))

    def rejoined(self, nodes: Iterable[str], at: float | None = None) -> None:
        """Killed-and-restarted ``nodes`` are back in every view (now, or at ``at``): verdicts
        about them, or by them, from their kill until then were legitimate; any later one is not.
        (The runner calls this for every restarted node once the cluster has converged.)"""
        at = time.time() if at is None else at
        for node in list(nodes):
            if node in self.restarted:
                self.exempt(node, self.killed.pop(node), at, as_observer=True)
                del self.restarted[node]

    @property
    def fault_window(self) -> tuple[float, float] | None:
        faults = [op.t for op in self.ops if op.kind not in RECOVERY]
        if not faults:
            return None
        recoveries = [op.t for op in self.ops if op.kind in RECOVERY and op.t >= faults[0]]
        return faults[0], max(recoveries, default=time.time())

    # -- Time ----------------------------------------------------------------------------------

    def hold(self, seconds: float) -> None:
        """Let a fault stand for ``seconds`` (a deadline wait, not a sleep in a test)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._stop.wait(min(left, 0.2))

    def pick_hold(self, bounds: tuple[float, float] | None = None) -> float:
        low, high = bounds or self.timings.hold_s
        return round(self.rng.uniform(low, high), 2)

    # -- Expectations --------------------------------------------------------------------------

    def expect(self, probe: Callable[[], T], timeout: float, what: str,
               describe: Callable[[], object] | None = None,
               known: str | Callable[[], str | None] | None = None) -> T | None:
        """Wait until ``probe()`` is truthy; a violation (and None) if not within ``timeout``,
        reported under the ``known`` issue instead when given (a callable decides then, from
        what the cluster looks like, whether the failure has that issue's signature)."""
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            try:
                last = probe()
            except Exception as e:  # noqa: BLE001 - a node may be restarting
                last = f"{type(e).__name__}: {e}"
            else:
                if last:
                    return last  # type: ignore[return-value]
            if time.monotonic() >= deadline:
                seen = describe() if describe is not None else last
                message = f"{what}: not true after {timeout:.1f}s; last seen: {seen}"
                label = known() if callable(known) else known
                if label:
                    self.known.append(f"{label}: {message}")
                else:
                    self.violations.append(message)
                return None
            self._stop.wait(0.1)

    def never(self, probe: Callable[[], object], duration: float, what: str, *, max_errors: int = 2) -> bool:
        """``probe()`` must stay falsy for ``duration``; the first truthy value is a violation. A
        probe that raises saw nothing: more than ``max_errors`` such looks, or not one clean look,
        is a violation too (the check would otherwise pass without having looked)."""
        deadline = time.monotonic() + duration
        clean, errors = 0, []
        while True:
            try:
                seen = probe()
            except Exception as e:  # noqa: BLE001 - recorded, judged below
                errors.append(f"{type(e).__name__}: {e}")
            else:
                clean += 1
                if seen:
                    self.violations.append(f"{what}: {seen}")
                    return False
            if time.monotonic() >= deadline:
                break
            self._stop.wait(0.1)
        if clean == 0 or len(errors) > max_errors:
            self.violations.append(f"{what}: could not be checked: {clean} clean looks, {len(errors)} failed, "
                                   f"first error: {errors[0] if errors else None}")
            return False
        return True

    # -- Views ---------------------------------------------------------------------------------

    def statuses(self, among: Iterable[str] | None = None) -> dict[str, dict[str, Any] | None]:
        ids = [n for n in (among if among is not None else self.ids) if self.cluster.nodes[n].running]
        return self.cluster.statuses(ids)

    def leader(self) -> str:
        """The agreed leader now (the runner guarantees there is one at the start)."""
        leader = self.expect(self.cluster.agreed_leader, self.timings.failover_s, "an agreed leader")
        if leader is None:
            raise ScenarioAborted("no agreed leader to aim the fault at")
        return leader

    def new_leader(self, among: list[str], old: str | None) -> str | None:
        leader = self.cluster.agreed_leader(among)
        return leader if leader is not None and leader != old else None

    def leaders_in(self, among: Iterable[str]) -> dict[str, str]:
        """Nodes of ``among`` that claim leadership, or name a leader, right now."""
        out = {}
        for node, status in self.statuses(among).items():
            if status and (status.get("role") == "leader" or status.get("leader_id")):
                out[node] = f"role={status.get('role')} leader={status.get('leader_id')} term={status.get('leader_term')}"
        return out

    def peer_state(self, observer: str, peer: str) -> str | None:
        status = self.cluster.status(observer) or {}
        return (status.get("peers", {}).get(peer) or {}).get("state")

    def everyone_sees(self, peer: str, state: str, among: Iterable[str]) -> bool:
        return all(self.peer_state(o, peer) == state for o in among if o != peer)

    def leadership_changed(self, leader: str, term: int | None) -> dict[str, str]:
        """What contradicts "``leader`` still leads in ``term``" right now: it stopped claiming,
        or another node claims or is named. Nodes that do not answer are not counted."""
        problems = {}
        for node, s in self.statuses().items():
            if s is None:
                continue
            if node == leader and (s.get("role") != "leader" or s.get("leader_id") != leader or s.get("leader_term") != term):
                problems[node] = f"role={s.get('role')} leader={s.get('leader_id')} term={s.get('leader_term')}"
            elif node != leader and s.get("leader_id") not in (None, leader):
                problems[node] = f"names {s.get('leader_id')} (term {s.get('leader_term')})"
        return problems

    def epoch_split(self) -> str | None:
        """The signature of KNOWN_EPOCH_INFLATION: a leader, and leaderless nodes whose term is
        above the leader's (they reject its announcements as stale)."""
        statuses = {n: s for n, s in self.statuses().items() if s}
        leaders = [(n, s.get("leader_term") or 0) for n, s in statuses.items()
                   if s.get("role") == "leader" and s.get("leader_id") == n]
        if len(leaders) != 1:
            return None
        leader, term = leaders[0]
        stuck = {n: s.get("leader_term") for n, s in statuses.items()
                 if s.get("leader_id") is None and (s.get("leader_term") or 0) > term}
        return f"{KNOWN_EPOCH_INFLATION} ({leader} leads term {term}; terms of the leaderless: {stuck})" if stuck else None

    def max_term(self) -> int:
        return max((s.get("leader_term") or 0 for s in self.statuses().values() if s), default=0)


class ScenarioAborted(Exception):
    """The scenario cannot go on (its precondition failed); recorded as a violation."""


# --------------------------------------------------------------------------------------------
# The runner


def run_scenario(body: Callable[[ScenarioRun], None], cluster: NetnsCluster, seed: int, *, name: str | None = None,
                 timings: Timings | None = None, workload: Workload | None = None) -> ScenarioResult:
    """Run the scenario ``body`` on ``cluster`` (started here if it is not running) and check it.
    (``scenarios.run_named`` runs one of the catalogue by name.)"""
    name = name or body.__name__.replace("_", "-")
    timings = timings or Timings()
    began = time.monotonic()
    if not cluster.running():
        cluster.start_all()
    cluster.wait_converged(timings.start_s)
    cluster.wait_for_leader(timings.start_s)
    recorder = Recorder(cluster)
    run = ScenarioRun(name, cluster, seed, timings, recorder)
    since = time.time()
    with recorder:
        if workload is not None:
            workload.start(cluster, run.rng)
            ready = getattr(workload, "ready", None)  # optional: the clients are under way before the fault
            if ready is not None:
                run.expect(ready, timings.start_s, f"the {workload.name} workload is under way")
        try:
            body(run)
        except ScenarioAborted as e:
            run.violations.append(f"aborted: {e}")
        finally:
            # Whatever happened: network back, every node running and not paused.
            for node_id in list(run.throttles):
                run.op("unthrottle", node=node_id)
            if cluster.faults()["blocked"] or cluster.faults()["loss"]:
                run.op("heal")
            for node_id, node in cluster.nodes.items():
                if node.running:
                    cluster.resume(node_id)
            down = [n for n, node in cluster.nodes.items() if not node.running]
            if down:
                run.op("start", nodes=down)
        back = run.expect(lambda: converged(cluster), timings.converge_s, "after heal every node sees every other alive",
                          describe=lambda: {n: {p: v.get("state") for p, v in (s or {}).get("peers", {}).items()}
                                            for n, s in cluster.statuses().items()})
        # Restarted nodes are exempt until they are back everywhere, and not a moment longer.
        for node, t in list(run.restarted.items()):
            run.rejoined([node], time.time() if back else t + timings.detect_s)
        for node, t in run.killed.items():  # killed and never started again: cannot happen after the finally
            run.exempt(node, t, as_observer=True)
        run.expect(cluster.agreed_leader, timings.converge_s, "after heal one agreed leader",
                   describe=lambda: cluster.leaders(cluster.statuses()), known=run.epoch_split)
        if workload is not None:
            workload.stop()
    rounds = recorder.snapshot()
    violations = list(run.violations)
    violations += recorder.health()
    violations += leader_violations(rounds, leases=str(cluster.settings.get("consensus_mode", "bully")) == "bully")
    known = list(run.known)
    if run.check_deaths:
        logs = {n: node.log_path for n, node in cluster.nodes.items()}
        deaths, known_deaths = false_deaths(rounds, run.exemptions, logs=logs, since=since)
        known += known_deaths
        violations += [f"healthy node declared failed: {v}" for v in deaths]
    notes = []
    mismatches = role_mismatches(rounds)
    if mismatches:
        notes.append(f"{len(mismatches)} answers with role=leader but another or no leader_id, "
                     f"first: {mismatches[0]}")
    if workload is not None:
        violations += [f"{workload.name}: {v}" for v in workload.check()]
    return ScenarioResult(
        name=name, seed=seed, ops=run.ops, violations=violations, known=known, notes=notes,
        max_unavailable_s=max_window(unavailability(rounds, len(cluster.nodes))),
        duration_s=time.monotonic() - began, rounds=len(rounds),
        workload=workload.summary() if workload is not None else {}, fault_window=run.fault_window,
    )


def converged(cluster: NetnsCluster) -> bool:
    statuses = cluster.statuses()
    if len(statuses) != len(cluster.nodes) or any(s is None for s in statuses.values()):
        return False
    return all(all((s["peers"].get(o) or {}).get("is_alive") for o in cluster.nodes if o != n)  # type: ignore[index]
               for n, s in statuses.items())


__all__ = ["KNOWN_BULLY_ALIVE", "KNOWN_EPOCH_INFLATION", "KNOWN_ISSUES", "KNOWN_PAUSED_SWEEP", "Op", "ScenarioAborted",
           "ScenarioResult", "ScenarioRun", "Timings", "Workload", "converged", "run_scenario"]
