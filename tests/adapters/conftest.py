"""Fixtures the adapter tests share."""

from __future__ import annotations

import pytest
from adapter_hosts import Clock

import adapters.leader_election as le


@pytest.fixture
def clocks(monkeypatch: pytest.MonkeyPatch) -> tuple[Clock, Clock]:
    """(monotonic, wall) clocks of the adapter, moved by hand."""
    mono, wall = Clock(1000.0), Clock(1_700_000_000.0)
    monkeypatch.setattr(le, "_monotonic", mono)
    monkeypatch.setattr(le, "_wall", wall)
    return mono, wall
