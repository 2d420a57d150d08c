"""The soak's judge on made-up samples: each bound can fail, and a steady node passes."""

from __future__ import annotations

from ringrift_cluster.testing.soak import Sample, judge


def run(rss_end: int = 100_000, tasks_end: int = 20, fds_end: int = 30, stalls_end: tuple = (0, 0, 0, 0),
        pid_change_at: int | None = None) -> list[Sample]:
    """One node sampled at t = 0..19; warm-up ends at t = 5. Figures ramp to their end values."""
    out = []
    for t in range(20):
        late = t >= 10
        pid = 2 if pid_change_at is not None and t >= pid_change_at else 1
        out.append(Sample(float(t), "node-1", pid, rss_end if late else 100_000, fds_end if late else 30,
                          tasks_end if late else 20, stalls_end if late else (0, 0, 0, 0), 0.05))
    return out


def test_a_steady_node_passes() -> None:
    figures, violations = judge(run(rss_end=105_000), 5.0)
    assert violations == [] and round(figures[0].rss_growth, 3) == 0.05


def test_each_bound_fails_alone() -> None:
    assert ["resident memory grew 15.0%" in v for v in judge(run(rss_end=115_000), 5.0)[1]] == [True]
    assert ["event-loop tasks grew from at most 20 to 31" in v for v in judge(run(tasks_end=31), 5.0)[1]] == [True]
    assert ["open file descriptors grew from at most 30 to 39" in v for v in judge(run(fds_end=39), 5.0)[1]] == [True]
    assert ["2 event-loop stalls over 100 ms" in v for v in judge(run(stalls_end=(2, 0, 0, 0)), 5.0)[1]] == [True]


def test_the_stall_bound_is_chosen_among_the_histogram_buckets() -> None:
    samples = run(stalls_end=(3, 1, 0, 0))
    assert judge(samples, 5.0, stall_s=0.5)[1] == []
    assert ["1 event-loop stalls over 250 ms" in v for v in judge(samples, 5.0, stall_s=0.25)[1]] == [True]


def test_a_restarted_node_is_judged_from_its_restart_and_too_few_samples_say_so() -> None:
    # The first process used 100 MB; the one started at t = 3 uses 200 MB from then on, steadily.
    samples = [Sample(float(t), "node-1", 1 if t < 3 else 2, 100_000 if t < 3 else 200_000, 30, 20, (0, 0, 0, 0), 0.05)
               for t in range(20)]
    figures, violations = judge(samples, 5.0)
    assert violations == [] and figures[0].samples == 17 and figures[0].rss_warm_kb == 200_000
    assert "too few samples" in judge(run(), 18.5)[1][0]


def test_state_records_at_the_warm_up_and_the_end_are_shown_beside_memory() -> None:
    samples = [Sample(float(t), "node-1", 1, 100_000 if t < 10 else 120_000, 30, 20, (0, 0, 0, 0), 0.05,
                      records=1_000 + 100 * t) for t in range(20)]
    figures, violations = judge(samples, 5.0)
    assert (figures[0].records_warm, figures[0].records_end) == (1_400, 2_900)
    assert "state records 1400 -> 2900" in violations[0] and "1400/2900" in figures[0].row()
