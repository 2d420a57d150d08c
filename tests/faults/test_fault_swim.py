"""SWIM membership under real network faults (Raft consensus), judged as the heartbeats are:
no healthy member declared failed, a dead one failed on every survivor within the bound, and
every node alive in every view again after heal (which the cut-off side of a split and the
target of one-way drops once missed for good: held dead, never told, they never refuted).

One seed per scenario; ``scripts/faults.py --membership swim --scenarios all --seeds 5`` is the
long run."""

from __future__ import annotations

import pytest

from ringrift_cluster.testing.nemesis import Timings
from ringrift_cluster.testing.scenarios import run_named

SWIM = {"membership_mode": "swim", "consensus_mode": "raft"}


@pytest.mark.parametrize("name,seed", [
    ("split-minority", 1),  # node-1 and node-3 cut off for ~4 s, then healed
    ("one-way-to-leader", 1),  # every packet to node-3 dropped for ~6 s
    ("kill-follower", 1),
    ("slow-node", 1),  # one member stopped 180 ms of every 300 ms
])
def test_swim_membership_under_faults(make_netns_cluster, name: str, seed: int) -> None:
    cluster = make_netns_cluster(5, settings=SWIM)
    result = run_named(name, cluster, seed, timings=Timings(loss_hold_s=(8.0, 10.0)))
    print(result.report())
    modes = {n: (s or {}).get("swim_raft", {}).get("membership_mode") for n, s in cluster.statuses().items()}
    assert set(modes.values()) == {"swim"}, modes  # the nodes really ran SWIM
    assert result.ok and not result.known, result.report()
    assert result.faults >= 1 and result.rounds >= 10, result.report()


def test_a_long_split_heals_in_seconds_though_each_side_holds_the_other_dead(make_netns_cluster) -> None:
    """Cut off for 12 s, each side declares the other DEAD and, as a node probes only live members,
    no datagram crosses after the heal but the library's rare resurrection probes (once in ~35
    protocol cycles, when it picks a dead member). Our own entry sent to a member held dead every
    1-3 s (``hooks.reach_the_dead``) has both sides refute within seconds."""
    cluster = make_netns_cluster(5, settings=SWIM)
    result = run_named("split-minority", cluster, 2, timings=Timings(hold_s=(12.0, 12.0), converge_s=10.0))
    print(result.report())
    assert result.ok and not result.known, result.report()
    reached = sum((s or {}).get("membership", {}).get("dead_reached", 0) for s in cluster.statuses().values())
    assert reached > 0, cluster.statuses()
