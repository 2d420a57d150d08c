"""scripts/bench/commit_trace.py's arithmetic, on a hand-made trace of two writes."""

from __future__ import annotations

from commit_trace import phases, sync_times

US = 1000  # events are in ns


def _write(t0: int) -> list[tuple[int, str, str]]:
    """One write on 3 members: client C, leader L, followers F1 and F2 (times in µs from t0)."""
    at = [
        (0, "C", "client0"), (100, "L", "http conn"), (300, "L", "propose"),
        (350, "L", "send append_entries"), (400, "L", "send append_entries"), (420, "L", "sync0"),
        (450, "F1", "recv append_entries"), (460, "F1", "sync0"), (700, "F1", "sync1"),
        (710, "F1", "send next_node_idx"), (720, "L", "sync1"), (800, "L", "recv next_node_idx"),
        (900, "L", "apply0"), (950, "L", "apply1"), (980, "F2", "send next_node_idx"),
        (1200, "C", "client1"),
    ]
    return [(t0 + us * US, pid, name) for us, pid, name in at]


def test_each_phase_of_each_write() -> None:
    events = _write(0) + _write(5000 * US)
    got = phases(events, "C", nodes=3)
    assert got["call start -> connection accepted"] == [100, 100]
    assert got["accepted -> proposed"] == [200, 200]
    assert got["proposed -> applied on the leader"] == [600, 600]
    assert got["applied -> answer at the client"] == [250, 250]  # from the end of the apply
    assert got["whole call"] == [1200, 1200]
    assert got["proposed -> last AppendEntries sent"] == [100, 100]  # the second of two followers
    # 3 members: one follower's acknowledgement makes a majority; F2's came after the apply.
    assert got["proposed -> majority's last acknowledgement sent"] == [410, 410]
    assert got["leader's sync end - that acknowledgement"] == [10, 10]


def test_a_write_seen_only_in_part_is_left_out() -> None:
    events = _write(0) + [e for e in _write(5000 * US) if e[2] != "client1"]
    assert phases(events, "C", nodes=3)["whole call"] == [1200]


def test_sync_times_per_member_leave_the_client_out() -> None:
    events = sorted(_write(0) + [(10 * US, "C", "sync0"), (20 * US, "C", "sync1")])
    assert dict(sync_times(events, "C")) == {"L": [300], "F1": [240]}
