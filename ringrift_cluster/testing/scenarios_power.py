"""Power-cut scenarios: nodes lose power (SIGKILL, and their disks lose what no fsync covered, at
the same instant), then boot again. They need a
:class:`~ringrift_cluster.testing.netns.powercut_cluster.PowerCutCluster` (data dirs on
power-cut disks; :func:`needs_power_cut_disks` says which scenarios do).

What they judge, beside the runner's history checks: a leader that serves the state within the
start bound after power returns (an engine that hangs on what the disk kept fails here), in a
term above the one before the cut (a term or vote not on disk shows here), and, through the
state workload that runs across the cut, every acknowledged write still present (the history
checker and the linearizability search). The workload keeps writing until the instant of the
cut, so acknowledged writes that only the page cache held exist at that instant: with
``raft.durability: none`` these runs fail.
"""

from __future__ import annotations

from .nemesis import ScenarioAborted, ScenarioRun


CUT_AFTER_S = (0.0, 3.0)  # from the workload under way to the cut: a random point in its stream
WRITE_AFTER_S = (2.0, 4.0)  # the workload after power returns


def needs_power_cut_disks(name: str) -> bool:
    return name in POWER_CUT_SCENARIOS


def power_cut_all(run: ScenarioRun) -> None:
    """Every node loses power at once (a data hall), then all boot again."""
    _require_disks(run)
    run.leader()
    run.hold(run.pick_hold(CUT_AFTER_S))
    before = run.max_term()
    run.op("power_cut", nodes=run.ids)
    run.hold(run.pick_hold((0.0, 2.0)))
    run.op("start", nodes=run.ids)
    _serving_again(run, before)


def power_cut_majority(run: ScenarioRun) -> None:
    """The leader and enough followers to make a majority lose power (a rack); the minority keeps
    running without a quorum; the majority boots again."""
    _require_disks(run)
    run.hold(run.pick_hold(CUT_AFTER_S))
    leader = run.leader()
    before = run.max_term()
    others = [n for n in run.ids if n != leader]
    victims = sorted([leader, *run.rng.sample(others, run.quorum - 1)])
    run.op("power_cut", nodes=victims)
    run.hold(run.pick_hold((0.5, 3.0)))
    run.op("start", nodes=victims)
    _serving_again(run, before)


def _require_disks(run: ScenarioRun) -> None:
    if not hasattr(run.cluster, "power_cut"):
        raise ScenarioAborted(f"{run.name} needs a PowerCutCluster (each data dir on a power-cut disk)")


def _serving_again(run: ScenarioRun, before: int) -> None:
    """A leader every node agrees on, serving the state, within the start bound, in a newer term."""
    c, t = run.cluster, run.timings
    leader = run.expect(lambda: c.agreed_leader() if c.state_served() else None, t.start_s,
                        "a leader serving the state after power returns",
                        describe=lambda: {n: (f"leader={(s or {}).get('leader_id')}@{(s or {}).get('leader_term')} "
                                              f"state={(s or {}).get('state')}") for n, s in run.statuses().items()})
    if leader is not None:
        term = (c.status(leader) or {}).get("leader_term") or 0
        if term <= before:
            run.violations.append(f"the leader after the power cut, {leader}, has term {term}, not above {before} "
                                  f"from before it (a term or vote was not durable)")
    run.hold(run.pick_hold(WRITE_AFTER_S))  # the workload goes on: writes after the cut are judged too


POWER_CUT_SCENARIOS = {"power-cut-all": power_cut_all, "power-cut-majority": power_cut_majority}

__all__ = ["POWER_CUT_SCENARIOS", "needs_power_cut_disks", "power_cut_all", "power_cut_majority"]
