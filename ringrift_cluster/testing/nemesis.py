"""Fault scenarios over a :class:`~ringrift_cluster.testing.netns.NetnsCluster`, seeded.

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
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol, TypeVar

from .history import (Exemption, Recorder, false_deaths, leader_violations, max_window, role_mismatches,
                      unavailability)
from .netns import NetnsCluster

T = TypeVar("T")

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

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def faults(self) -> int:
        return sum(1 for op in self.ops if op.kind not in ("heal", "resume", "start", "clear_loss"))

    def report(self) -> str:
        lines = [f"{self.name} seed={self.seed}: {len(self.ops)} ops, {len(self.violations)} violations, "
                 f"max unavailability {self.max_unavailable_s:.1f}s, {self.duration_s:.1f}s, {self.rounds} rounds"]
        lines += [f"  op  {op}" for op in self.ops]
        lines += [f"  VIOLATION {v}" for v in self.violations]
        lines += [f"  KNOWN {v}" for v in self.known]
        lines += [f"  note {v}" for v in self.notes]
        return "\n".join(lines)


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
        self._stop = threading.Event()

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
        elif kind == "term":
            for node in detail["nodes"]:
                c.stop(node)
        elif kind == "pause":
            c.pause(detail["node"])
        elif kind == "resume":
            c.resume(detail["node"])
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

    def never(self, probe: Callable[[], object], duration: float, what: str) -> bool:
        """``probe()`` must stay falsy for ``duration``; the first truthy value is a violation."""
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            try:
                seen = probe()
            except Exception:  # noqa: BLE001
                seen = None
            if seen:
                self.violations.append(f"{what}: {seen}")
                return False
            self._stop.wait(0.1)
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
# Scenarios


def leader_isolated(run: ScenarioRun) -> None:
    """The leader is cut from everyone: the majority elects another, the old one steps down."""
    c, t = run.cluster, run.timings
    old = run.leader()
    rest = [n for n in run.ids if n != old]
    run.op("isolate", node=old)
    new = run.expect(lambda: run.new_leader(rest, old), t.failover_s, f"the majority elects a leader other than {old}",
                     describe=lambda: c.leaders(run.statuses(rest)))
    run.expect(lambda: (s := c.status(old)) is not None and s.get("role") != "leader" and s.get("leader_id") != old,
               t.lease_s + 2.0, f"{old} steps down once cut off", describe=lambda: run.leaders_in([old]))
    run.never(lambda: run.leaders_in([old]), run.pick_hold(), f"{old} claims or names a leader while cut off")
    if new is not None:
        run.expect(lambda: c.agreed_leader(rest) == new, 2.0, f"the majority keeps {new}")
    run.op("heal")


def split_minority_majority(run: ScenarioRun) -> None:
    """A symmetric split (2/3 of 5): only the majority side has a leader."""
    c, t = run.cluster, run.timings
    old = run.leader()
    ids = run.ids
    small = len(ids) - run.quorum
    # Put the leader on the minority side about half the time.
    minority = set(run.rng.sample(ids, small))
    if run.rng.random() < 0.5 and old not in minority:
        minority = {old, *run.rng.sample([n for n in ids if n != old], small - 1)}
    majority = [n for n in ids if n not in minority]
    run.op("partition", groups=[sorted(minority), majority])
    run.expect(lambda: c.agreed_leader(majority), t.failover_s, "the majority side agrees on a leader",
               describe=lambda: c.leaders(run.statuses(majority)))
    run.expect(lambda: not run.leaders_in(minority), t.detect_s + t.lease_s, "the minority side has no leader",
               describe=lambda: run.leaders_in(minority))
    run.never(lambda: run.leaders_in(minority), run.pick_hold(), "a leader on the minority side")
    run.op("heal")


def one_way_drop_to_leader(run: ScenarioRun) -> None:
    """Some followers' packets never reach the leader (its own still reach them)."""
    c, t = run.cluster, run.timings
    old = run.leader()
    term = (c.status(old) or {}).get("leader_term")
    followers = [n for n in run.ids if n != old]
    cut = sorted(run.rng.sample(followers, run.rng.randint(1, len(followers))))
    for src in cut:
        run.op("drop", src=src, dst=old)
    leader_keeps_quorum = len(run.ids) - len(cut) >= run.quorum
    raft_leads = c.settings.get("consensus_mode") == "raft"
    if leader_keeps_quorum and raft_leads:
        # Raft without PreVote (pysyncobj has none): a follower whose packets cannot reach the
        # leader loses its connection, campaigns and moves the term, possibly again and again
        # while the drop lasts. Safety is checked from the history (one leader per term), and the
        # runner requires one agreed leader after the heal.
        run.hold(run.pick_hold())
    elif leader_keeps_quorum:
        run.never(lambda: run.leadership_changed(old, term), run.pick_hold() + t.detect_s,
                  f"{old} stays the leader (it still reaches a quorum)")
    else:
        rest = [n for n in run.ids if n != old]
        # When some follower still reaches the cut leader, the connectivity is not transitive.
        known = KNOWN_BULLY_ALIVE if len(cut) < len(followers) else None
        run.expect(lambda: run.new_leader(rest, old), t.failover_s, f"a leader other than {old}",
                   describe=lambda: c.leaders(run.statuses(rest)), known=known)
        run.expect(lambda: (c.status(old) or {}).get("role") != "leader", t.lease_s + 2.0, f"{old} steps down")
        run.hold(run.pick_hold())
    run.op("heal")


def kill_leader(run: ScenarioRun) -> None:
    """SIGKILL the leader: a new one within the failover bound; the old one restarts and follows."""
    c, t = run.cluster, run.timings
    run.check_deaths = True
    old = run.leader()
    rest = [n for n in run.ids if n != old]
    run.exempt(old, run.op("kill", nodes=[old]), as_observer=True)
    run.expect(lambda: run.new_leader(rest, old), t.failover_s, f"a leader other than {old}",
               describe=lambda: c.leaders(run.statuses(rest)))
    run.expect(lambda: run.everyone_sees(old, "failed", rest), t.detect_s, f"{old} failed in every view")
    run.hold(run.pick_hold((0.5, 3.0)))
    run.op("start", nodes=[old])


def kill_follower(run: ScenarioRun) -> None:
    """SIGKILL a follower: failed everywhere, the leader stays; it restarts and follows."""
    c, t = run.cluster, run.timings
    run.check_deaths = True
    leader = run.leader()
    term = (c.status(leader) or {}).get("leader_term")
    victim = run.rng.choice([n for n in run.ids if n != leader])
    rest = [n for n in run.ids if n != victim]
    run.exempt(victim, run.op("kill", nodes=[victim]), as_observer=True)
    run.expect(lambda: run.everyone_sees(victim, "failed", rest), t.detect_s, f"{victim} failed in every view")
    run.never(lambda: run.leadership_changed(leader, term), run.pick_hold((1.0, 3.0)), f"{leader} stays the leader")
    run.op("start", nodes=[victim])
    run.expect(lambda: run.everyone_sees(victim, "alive", rest), t.converge_s, f"{victim} alive in every view again")
    run.expect(lambda: (c.status(victim) or {}).get("leader_id") == leader, t.converge_s, f"{victim} follows {leader}")


def kill_majority(run: ScenarioRun) -> None:
    """SIGKILL a majority: the survivors have no leader; restarted, the cluster elects one."""
    c, t = run.cluster, run.timings
    run.check_deaths = True
    run.leader()
    victims = sorted(run.rng.sample(run.ids, run.quorum))
    survivors = [n for n in run.ids if n not in victims]
    at = run.op("kill", nodes=victims)
    for v in victims:
        run.exempt(v, at, as_observer=True)
    run.expect(lambda: not run.leaders_in(survivors), t.detect_s + t.lease_s, "the survivors have no leader",
               describe=lambda: run.leaders_in(survivors))
    run.never(lambda: run.leaders_in(survivors), run.pick_hold((1.0, 3.0)), "a leader without a quorum")
    run.op("start", nodes=victims)


def full_crash(run: ScenarioRun) -> None:
    """SIGKILL every node at once, restart them all: a leader again, in a newer term."""
    c, t = run.cluster, run.timings
    run.leader()
    before = run.max_term()
    at = run.op("kill", nodes=run.ids)
    for n in run.ids:
        run.exempt(n, at, as_observer=True)
    run.hold(run.pick_hold((0.0, 2.0)))
    run.op("start", nodes=run.ids)
    leader = run.expect(c.agreed_leader, t.start_s, "a leader after the full restart",
                        describe=lambda: c.leaders(run.statuses()), known=run.epoch_split)
    if leader is not None:
        term = (c.status(leader) or {}).get("leader_term") or 0
        if term <= before:
            run.violations.append(f"the new leader {leader} has term {term}, not above {before} from before the crash")


def inflate_then_crash(run: ScenarioRun) -> None:
    """Two followers (the greatest among them) cannot reach the leader for a while: it keeps
    its quorum, they run lost elections. Heal, SIGKILL everyone, restart: every node must follow
    one leader again."""
    c, t = run.cluster, run.timings
    old = run.leader()
    followers = [n for n in run.ids if n != old]
    # The greatest follower among the cut: nobody above it answers ALIVE, so it runs lease rounds.
    top = max(followers)
    cut = [top, *run.rng.sample([n for n in followers if n != top], len(run.ids) - run.quorum - 1)]
    for src in sorted(cut):
        run.op("drop", src=src, dst=old)
    run.hold(run.pick_hold((6.0, 9.0)))  # past failure detection: the cut ones start elections
    run.op("heal")
    run.expect(lambda: converged(c), t.converge_s, "converged after heal")
    at = run.op("kill", nodes=run.ids)
    for n in run.ids:
        run.exempt(n, at, as_observer=True)
    run.op("start", nodes=run.ids)
    run.expect(lambda: run.leaders_in(run.ids), t.start_s, "a leader after the restart")
    run.expect(c.agreed_leader, t.failover_s, "every node follows the leader after the restart",
               describe=lambda: {n: f"{(s or {}).get('leader_id')}@{(s or {}).get('leader_term')}"
                                 for n, s in run.statuses().items()}, known=run.epoch_split)


def pause_member(run: ScenarioRun) -> None:
    """SIGSTOP one member for 5 s: nobody healthy is declared failed; it is alive again after."""
    c, t = run.cluster, run.timings
    run.check_deaths = True
    victim = run.rng.choice(run.ids)
    at = run.op("pause", node=victim)
    run.hold(t.pause_s)
    end = run.op("resume", node=victim)
    run.exempt(victim, at, end + t.converge_s)  # it may be declared failed: it was silent 5 s
    # Its own verdicts right after SIGCONT: the node's sweep runs before the heartbeats that
    # queued up during the pause are read, so it declares every peer failed for a few ms.
    run.exempt(victim, end, end + 1.0, as_peer=False, as_observer=True, known=KNOWN_PAUSED_SWEEP)
    rest = [n for n in run.ids if n != victim]
    run.expect(lambda: run.everyone_sees(victim, "alive", rest), t.converge_s, f"{victim} alive in every view again")
    run.expect(lambda: all(run.peer_state(victim, p) == "alive" for p in rest), t.converge_s,
               f"{victim} sees everyone alive again")


def lossy_links(run: ScenarioRun) -> None:
    """10 % loss on every link for a while: no false deaths; a leader throughout or back soon."""
    t = run.timings
    run.check_deaths = True
    run.op("loss_all", percent=t.loss_percent)
    started = time.time()
    run.hold(run.pick_hold(t.loss_hold_s))
    ended = run.op("clear_loss")
    worst = max_window(unavailability(run.recorder.snapshot(), len(run.ids), start=started, end=ended))
    if worst > t.failover_s:
        run.violations.append(f"no majority leader for {worst:.1f}s under {t.loss_percent:.0f}% loss "
                              f"(bound {t.failover_s:.1f}s)")


def flapping_partition(run: ScenarioRun) -> None:
    """Random splits that come and go: some shorter than failure detection, some longer (so
    leaders change under churn); then heal: one leader, converged."""
    ids = run.ids
    for _ in range(run.rng.randint(4, 6)):
        size = run.rng.randint(1, len(ids) - 1)
        side = sorted(run.rng.sample(ids, size))
        run.op("partition", groups=[side, [n for n in ids if n not in side]])
        run.hold(run.pick_hold((0.5, 7.0)))
        run.op("heal")
        run.hold(run.pick_hold((0.5, 3.0)))


SCENARIOS: dict[str, Callable[[ScenarioRun], None]] = {
    "leader-isolated": leader_isolated,
    "split-minority": split_minority_majority,
    "one-way-to-leader": one_way_drop_to_leader,
    "kill-leader": kill_leader,
    "kill-follower": kill_follower,
    "kill-majority": kill_majority,
    "full-crash": full_crash,
    "inflate-then-crash": inflate_then_crash,
    "pause-member": pause_member,
    "lossy-links": lossy_links,
    "flapping-partition": flapping_partition,
}


# --------------------------------------------------------------------------------------------
# The runner


def run_scenario(name: str, cluster: NetnsCluster, seed: int, *, timings: Timings | None = None,
                 workload: Workload | None = None) -> ScenarioResult:
    """Run one scenario on ``cluster`` (started here if it is not running) and check it."""
    body = SCENARIOS[name]
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
        try:
            body(run)
        except ScenarioAborted as e:
            run.violations.append(f"aborted: {e}")
        finally:
            # Whatever happened: network back, every node running and not paused.
            if cluster.faults()["blocked"] or cluster.faults()["loss"]:
                run.op("heal")
            for node_id, node in cluster.nodes.items():
                if node.running:
                    cluster.resume(node_id)
            down = [n for n, node in cluster.nodes.items() if not node.running]
            if down:
                run.op("start", nodes=down)
        run.expect(lambda: converged(cluster), timings.converge_s, "after heal every node sees every other alive",
                   describe=lambda: {n: {p: v.get("state") for p, v in (s or {}).get("peers", {}).items()}
                                     for n, s in cluster.statuses().items()})
        run.expect(cluster.agreed_leader, timings.converge_s, "after heal one agreed leader",
                   describe=lambda: cluster.leaders(cluster.statuses()), known=run.epoch_split)
        if workload is not None:
            workload.stop()
    rounds = recorder.snapshot()
    violations = list(run.violations)
    violations += leader_violations(rounds)
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
        workload=workload.summary() if workload is not None else {},
    )


def converged(cluster: NetnsCluster) -> bool:
    statuses = cluster.statuses()
    if len(statuses) != len(cluster.nodes) or any(s is None for s in statuses.values()):
        return False
    return all(all((s["peers"].get(o) or {}).get("is_alive") for o in cluster.nodes if o != n)  # type: ignore[index]
               for n, s in statuses.items())


__all__ = ["KNOWN_ISSUES", "Op", "SCENARIOS", "ScenarioResult", "ScenarioRun", "Timings", "Workload", "run_scenario"]
