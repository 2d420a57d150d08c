"""Every judge can fail: each deliberately broken build (``ringrift_cluster.mutations``) is run
through the test that claims to catch that class of bug, which must fail for that reason. A
mutation that survives fails here. (The Bully one needs network namespaces: it is in
``tests/faults/test_fault_mutations.py``.)"""

from __future__ import annotations

import pytest

from ringrift_cluster.testing.mutants import run_mutant

pytestmark = pytest.mark.integration

CASES = [
    # Raft acknowledges before commit: writes acknowledged around a leader SIGKILL are lost.
    ("raft-ack-before-commit", "tests/integration/test_raft_cluster.py::test_leader_sigkill_under_load",
     ["acknowledged writes lost"]),
    # The SWIM view publishes raw suspicions at once: a pause long enough to be declared failed
    # raises raw suspicions everywhere, and the per-test check finds them published undamped.
    ("swim-undamped", "tests/integration/test_swim_cluster.py::test_long_pause_fails_then_member_is_back_fast",
     ["undamped"]),
    # A lock release is acknowledged but dropped: the next holder is refused the lock.
    ("lock-release-dropped", "tests/integration/test_legacy_state.py::test_work_and_locks_through_any_node",
     ["lock_held"]),
]


@pytest.mark.parametrize("mutation,test,signatures", CASES, ids=[c[0] for c in CASES])
def test_mutation_is_caught(mutation: str, test: str, signatures: list[str]) -> None:
    run = run_mutant(mutation, test, signatures, timeout=300)
    print(run.report())
    assert run.caught, run.report()
