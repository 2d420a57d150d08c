"""What the replicated-state integration tests share: how long a cluster may take to start, and
the one way they unwrap a call that must succeed."""

from __future__ import annotations

START_S = 30.0  # a cluster of real node processes starts, elects and converges within this


def ok(response: tuple[int, dict]) -> dict:
    """The body of a call that must have answered 200 (otherwise the body says why)."""
    status, body = response
    assert status == 200, body
    return body
