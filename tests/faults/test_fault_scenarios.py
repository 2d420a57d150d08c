"""Membership and election under real faults: 5 namespace hosts, the ``local`` preset.

Each test runs one scenario of ``ringrift_cluster.testing.nemesis`` with a fixed seed (the seed
picks victims, splits and hold times; the comment says which case it lands on) and requires no
violation: the scenario's own expectations (a new leader within the failover bound, no leader on
a minority side, ...) plus the history checks over the whole run (at most one leader per term,
never two unexpired leader leases at once, no healthy node declared failed where the scenario
checks deaths, one agreed leader and full convergence after heal). ``scripts/faults.py`` runs
the same scenarios with random seeds and soaks.
"""

from __future__ import annotations

import pytest

from ringrift_cluster.testing.nemesis import ScenarioResult
from ringrift_cluster.testing.scenarios import run_named


def run(make_netns_cluster, name: str, seed: int) -> ScenarioResult:
    """Run a scenario; fail on any violation, including those of the node issues this suite once
    found (``nemesis.KNOWN_ISSUES``, all fixed: they must not come back)."""
    cluster = make_netns_cluster(5)
    result = run_named(name, cluster, seed)
    print(result.report())
    assert result.ok and not result.known, result.report()
    return result


def test_leader_isolated_from_the_majority(make_netns_cluster) -> None:
    """The majority elects a new leader, the old one steps down, one leader after heal."""
    run(make_netns_cluster, "leader-isolated", seed=1)


@pytest.mark.parametrize("seed", [1, 2], ids=["leader-in-minority", "leader-in-majority"])
def test_split_two_three_only_the_majority_leads(make_netns_cluster, seed: int) -> None:
    result = run(make_netns_cluster, "split-minority", seed)
    minority = result.ops[0].detail["groups"][0]
    assert ("node-5" in minority) == (seed == 1)


@pytest.mark.parametrize("seed", [2, 3], ids=["leader-loses-quorum", "leader-keeps-quorum"])
def test_one_way_drop_to_the_leader(make_netns_cluster, seed: int) -> None:
    """3 (seed 2) or 2 (seed 3) followers cannot reach the leader; its packets still reach them.

    With 3 cut, the leader loses its quorum but one follower still reaches it: the majority must
    still elect a leader (this suite once found the Bully election stuck here)."""
    drops = 3 if seed == 2 else 2
    result = run(make_netns_cluster, "one-way-to-leader", seed)
    assert sum(op.kind == "drop" for op in result.ops) == drops


def test_bridge_only_one_leader(make_netns_cluster) -> None:
    """The leader and the greatest follower cannot reach each other; both reach the other three.
    The follower sees the leader failed and campaigns, but the voters hold the leader's lease:
    the leader stays, and there is never a second one (a voter granting it twice is caught here,
    see test_fault_mutations.py)."""
    result = run(make_netns_cluster, "bridge", seed=1)
    assert sum(op.kind == "drop" for op in result.ops) == 2


def test_sigkill_the_leader_then_restart(make_netns_cluster) -> None:
    run(make_netns_cluster, "kill-leader", seed=1)


def test_sigkill_a_follower_then_restart(make_netns_cluster) -> None:
    run(make_netns_cluster, "kill-follower", seed=1)


def test_sigkill_a_majority_then_restart(make_netns_cluster) -> None:
    """Seed 1 kills node-3, node-4 and node-5 (the leader among them)."""
    run(make_netns_cluster, "kill-majority", seed=1)


def test_full_cluster_sigkill_and_restart(make_netns_cluster) -> None:
    run(make_netns_cluster, "full-crash", seed=1)


def test_lost_elections_then_full_restart_everyone_follows_the_leader(make_netns_cluster) -> None:
    """Followers cut from the leader run (and lose) elections; after heal and a full restart
    every node must follow the new leader (this suite once found inflated, persisted epochs
    making them reject it)."""
    run(make_netns_cluster, "inflate-then-crash", seed=1)


@pytest.mark.parametrize("seed", [1, 2], ids=["leader-paused", "follower-paused"])
def test_sigstop_a_member_for_five_seconds(make_netns_cluster, seed: int) -> None:
    """No healthy member is declared failed by anyone; the paused one is alive again after.

    That includes the paused node's own verdicts right after SIGCONT (this suite once found it
    sweeping before it read the heartbeats queued during the pause)."""
    run(make_netns_cluster, "pause-member", seed)


def test_ten_percent_loss_on_every_link(make_netns_cluster) -> None:
    """No false deaths with the local timings (heartbeat 0.5 s, suspect 2 s, peer timeout 4 s);
    a majority leader throughout, or back within the failover bound."""
    run(make_netns_cluster, "lossy-links", seed=1)


def test_flapping_partition(make_netns_cluster) -> None:
    run(make_netns_cluster, "flapping-partition", seed=1)
