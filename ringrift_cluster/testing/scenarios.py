"""The catalogue of fault scenarios (:data:`SCENARIOS`): each a function of a
:class:`~ringrift_cluster.testing.nemesis.ScenarioRun` that injects faults, holds them and states
what the cluster must do meanwhile. :func:`run_named` runs one by name through
:func:`~ringrift_cluster.testing.nemesis.run_scenario`.

Killed nodes are exempt from the death checks only from the kill until they are back in every
view (the runner bounds that window); a paused node for its pause plus convergence.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from .history import max_window, unavailability
from .nemesis import (KNOWN_BULLY_ALIVE, KNOWN_PAUSED_SWEEP, NetnsCluster, ScenarioResult, ScenarioRun, converged,
                      run_scenario)
from .scenarios_power import POWER_CUT_SCENARIOS

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
    run.op("kill", nodes=[old])
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
    run.op("kill", nodes=[victim])
    run.expect(lambda: run.everyone_sees(victim, "failed", rest), t.detect_s, f"{victim} failed in every view")
    run.never(lambda: run.leadership_changed(leader, term), run.pick_hold((1.0, 3.0)), f"{leader} stays the leader")
    run.op("start", nodes=[victim])
    run.expect(lambda: run.everyone_sees(victim, "alive", rest), t.converge_s, f"{victim} alive in every view again")
    if c.settings.get("consensus_mode") == "raft":
        # pysyncobj has no PreVote: the restarted follower may time out before the leader's
        # first append reaches it and call an election (seen under load). It must then follow
        # whoever the cluster agrees on.
        run.expect(lambda: c.agreed_leader() is not None, t.converge_s, f"{victim} follows the agreed leader")
    else:
        run.expect(lambda: (c.status(victim) or {}).get("leader_id") == leader, t.converge_s,
                   f"{victim} follows {leader}")


def kill_majority(run: ScenarioRun) -> None:
    """SIGKILL a majority: the survivors have no leader; restarted, the cluster elects one."""
    t = run.timings
    run.check_deaths = True
    run.leader()
    victims = sorted(run.rng.sample(run.ids, run.quorum))
    survivors = [n for n in run.ids if n not in victims]
    run.op("kill", nodes=victims)
    run.expect(lambda: not run.leaders_in(survivors), t.detect_s + t.lease_s, "the survivors have no leader",
               describe=lambda: run.leaders_in(survivors))
    run.never(lambda: run.leaders_in(survivors), run.pick_hold((1.0, 3.0)), "a leader without a quorum")
    run.op("start", nodes=victims)


def full_crash(run: ScenarioRun) -> None:
    """SIGKILL every node at once, restart them all: a leader again, in a newer term."""
    c, t = run.cluster, run.timings
    run.leader()
    before = run.max_term()
    run.op("kill", nodes=run.ids)
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
    run.op("kill", nodes=run.ids)
    run.op("start", nodes=run.ids)
    run.expect(lambda: run.leaders_in(run.ids), t.start_s, "a leader after the restart")
    run.expect(c.agreed_leader, t.failover_s, "every node follows the leader after the restart",
               describe=lambda: {n: f"{(s or {}).get('leader_id')}@{(s or {}).get('leader_term')}"
                                 for n, s in run.statuses().items()}, known=run.epoch_split)


def bridge(run: ScenarioRun) -> None:
    """The leader and the greatest follower cannot reach each other (both ways); both still reach
    everyone else (a non-transitive partition). With heartbeats the follower thinks the leader is
    gone (SWIM's indirect probes through the others keep it alive there), but the voters still
    hold the leader's lease: nobody may grant it a second one, so the leader stays and
    there is never a second leader (the history checks); after heal one leader, converged."""
    c, t = run.cluster, run.timings
    old = run.leader()
    term = (c.status(old) or {}).get("leader_term")
    cut = max(n for n in run.ids if n != old)
    run.op("drop", src=old, dst=cut)
    run.op("drop", src=cut, dst=old)
    others = [n for n in run.ids if n not in (old, cut)]

    def cut_sees_old() -> str | None:
        return ((c.status(cut) or {}).get("peers", {}).get(old) or {}).get("state")

    membership = c.settings.get("membership_mode", "http")
    if membership == "http":  # direct heartbeats only: the cut follower loses the leader
        run.expect(lambda: cut_sees_old() not in (None, "alive"), t.detect_s, f"{cut} stops seeing {old} alive")
    elif membership == "swim":  # indirect probes through the others: the leader stays alive to it
        run.never(lambda: cut_sees_old() == "failed", t.detect_s, f"{cut} keeps {old} alive (indirect probes)")
    else:  # hybrid: either source may report it; the election checks below are what counts here
        run.hold(t.detect_s)
    raft_leads = c.settings.get("consensus_mode") == "raft"
    if raft_leads:
        run.hold(run.pick_hold())  # pysyncobj has no PreVote: the cut follower may move the term
    else:
        run.never(lambda: {n: v for n, v in run.leadership_changed(old, term).items() if n in others + [old]},
                  run.pick_hold() + t.lease_s, f"{old} stays the leader of the nodes that reach it")
    run.op("heal")


def pause_member(run: ScenarioRun) -> None:
    """SIGSTOP one member for 5 s: nobody healthy is declared failed; it is alive again after."""
    t = run.timings
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


def slow_node(run: ScenarioRun) -> None:
    """One member, the leader or not, runs at 40 % speed for a while (stopped 180 ms of every
    300 ms): slow is not dead, so nobody is declared failed and a leader stays or is back soon."""
    t = run.timings
    run.check_deaths = True
    victim = run.rng.choice(run.ids)
    started = run.op("throttle", node=victim, share=t.slow_share, period_s=t.slow_period_s)
    run.hold(run.pick_hold(t.loss_hold_s))
    ended = run.op("unthrottle", node=victim)
    worst = max_window(unavailability(run.recorder.snapshot(), len(run.ids), start=started, end=ended))
    if worst > t.failover_s:
        run.violations.append(f"no majority leader for {worst:.1f}s while {victim} was slow "
                              f"(bound {t.failover_s:.1f}s)")
    run.expect(lambda: run.everyone_sees(victim, "alive", [n for n in run.ids if n != victim]), t.converge_s,
               f"{victim} alive in every view after")


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
    "bridge": bridge,
    "pause-member": pause_member,
    "lossy-links": lossy_links,
    "flapping-partition": flapping_partition,
    "slow-node": slow_node,
    **POWER_CUT_SCENARIOS,  # need a PowerCutCluster (scenarios_power.needs_power_cut_disks)
}


def run_named(name: str, cluster: NetnsCluster, seed: int, **kwargs: Any) -> ScenarioResult:
    """Run the scenario called ``name`` (a key of :data:`SCENARIOS`) on ``cluster`` and check it."""
    return run_scenario(SCENARIOS[name], cluster, seed, name=name, **kwargs)


__all__ = ["SCENARIOS", "run_named"]
