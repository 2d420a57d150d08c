"""Deliberately broken builds, for the test suite's mutation runs only.

A test that claims to catch a class of bug is proven able to fail by running it against a build
with that bug: the suite sets ``RINGRIFT_TEST_MUTATION=<name>`` for the run (and the node
processes it starts), and the one-line hook at the matching place in the code takes the broken
path while :func:`active` says so. Unset, as in every real deployment, nothing changes.

This module is the one place that reads the variable (a unit test checks that).
"""

from __future__ import annotations

import os

ENV = "RINGRIFT_TEST_MUTATION"

MUTATIONS: dict[str, str] = {
    "raft-ack-before-commit": "Raft acknowledges a command as soon as it is proposed, before it commits",
    "bully-double-grant": "a Bully voter grants its lease to a second leader while the first one's is unexpired",
    "swim-undamped": "the SWIM view publishes the library's raw suspicions and deaths at once, undamped",
    "lock-release-dropped": "the state machine acknowledges a lock release but keeps the lock",
}


def active(name: str) -> bool:
    """Whether the mutation ``name`` is switched on for this process."""
    if name not in MUTATIONS:
        raise ValueError(f"unknown mutation {name!r}")
    value = os.environ.get(ENV, "")
    if value and value not in MUTATIONS:
        raise RuntimeError(f"{ENV}={value!r} names no mutation (known: {', '.join(sorted(MUTATIONS))})")
    return value == name


__all__ = ["ENV", "MUTATIONS", "active"]
