"""Fixtures the adapter tests share."""

from __future__ import annotations

import pytest

import adapters.leader_election as le
from ringrift_cluster.testing.stubs import ManualClock


@pytest.fixture
def clocks(monkeypatch: pytest.MonkeyPatch) -> tuple[ManualClock, ManualClock]:
    """(monotonic, wall) clocks of the adapter, moved by hand."""
    mono, wall = ManualClock(1000.0), ManualClock(1_700_000_000.0)
    monkeypatch.setattr(le, "_monotonic", mono)
    monkeypatch.setattr(le, "_wall", wall)
    return mono, wall
