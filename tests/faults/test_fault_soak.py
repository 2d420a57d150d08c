"""The soak, short: 5 namespace hosts (Raft, SWIM) under the state workload for 2 minutes with no
fault, judged by what the node processes use over time (``ringrift_cluster.testing.soak``) and by
every segment's history, linearizability included. ``scripts/faults.py --soak 30`` is the long
run."""

from __future__ import annotations

from ringrift_cluster.testing.soak import run_soak, steady_settings, steady_workload, table

SETTINGS = steady_settings({"membership_mode": "swim", "consensus_mode": "raft"})


def test_two_minutes_under_the_workload_stay_within_the_bounds(make_netns_cluster) -> None:
    cluster = make_netns_cluster(5, settings=SETTINGS)
    # Stalls are judged over 500 ms here, not the long run's 100 ms: five nodes and the clients
    # share two cores, and the scheduler alone now and then keeps a process off the CPU for
    # 100-200 ms (seen: 115 ms once in ten runs, with the other bounds far from their limits).
    soak = run_soak(cluster, 2.0, seed=1, workload=steady_workload(), warmup_s=30.0, interval_s=3.0, stall_s=0.5)
    report = "\n".join([table(soak.figures), *soak.violations] + [r.report() for r in soak.segments if not r.ok])
    print(report)
    assert len(soak.figures) == 5 and soak.samples >= 5 * 30, report  # every node sampled all along
    (run,) = soak.segments
    w = run.workload
    assert w["ok"] >= 200 and w["lin_keys"] >= 50 and w["lin_failed"] == 0, (w, report)
    assert soak.ok, report
