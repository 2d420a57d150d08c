"""Every judge can fail, under real faults: a Bully voter that grants its lease to a second
leader while the first one's is unexpired must be caught by the bridge scenario (the leader and
the greatest follower cut from each other, both still reaching the voters). See
``tests/integration/test_mutations_caught.py`` for the mutations caught on loopback."""

from __future__ import annotations

from ringrift_cluster.testing.mutants import run_mutant


def test_bully_double_grant_is_caught_by_the_bridge_scenario() -> None:
    run = run_mutant("bully-double-grant", "tests/faults/test_fault_scenarios.py::test_bridge_only_one_leader",
                     ["leaders with unexpired leases", "stays the leader of the nodes that reach it"], timeout=420)
    print(run.report())
    assert run.caught, run.report()


def test_a_dropped_lock_release_is_caught_by_the_linearizability_search() -> None:
    # The state machine acknowledges a release but keeps the lock: no order of a lock's history
    # explains an acknowledged release followed by "held" (or by the lock still held at the end).
    run = run_mutant("lock-release-dropped",
                     "tests/faults/test_fault_workload.py::test_raft_state_survives_killing_the_leader",
                     ["not linearizable: lock:"], timeout=300)
    print(run.report())
    assert run.caught, run.report()
