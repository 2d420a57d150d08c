"""The benchmark report's pure parts: percentiles, wrk's summary, tables, verdicts, the ADR matrix.
No timing here: the benchmarks themselves run on demand, never in CI."""

from __future__ import annotations

import pytest
from bench_common import cdf_points, percentile, summary  # scripts/bench: on the path (pyproject's pythonpath)
from report_render import adr_matrix, beside_table, fmt, table, targets_table, verdict
from wrk_load import parse, wrk_command


def test_percentile_interpolates_between_closest_ranks():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5, 1, 3], 0) == 1 and percentile([5, 1, 3], 100) == 5
    assert percentile([7], 99) == 7
    assert percentile([], 50) is None
    assert percentile(range(101), 99) == 99
    with pytest.raises(ValueError):
        percentile([1], 101)


def test_summary_and_cdf_points():
    s = summary([3.0, 1.0, 2.0])
    assert (s["n"], s["min"], s["p50"], s["max"]) == (3, 1.0, 2.0, 3.0)
    assert summary([])["p50"] is None
    assert cdf_points([3, 1, 2]) == ([1, 2, 3], [1 / 3, 2 / 3, 1.0])


def test_wrk_summary_is_read_back_in_ms():
    out = ('Running 3s test @ http://127.0.0.1:1/\n'
           'WRK_JSON {"requests": 600, "duration_us": 3000000, "bytes": 1, "errors": {"connect": 0, "read": 0, '
           '"write": 0, "status": 2, "timeout": 1}, "mean_us": 1500.0, "max_us": 9000, "statuses": {"200": 598, '
           '"409": 2}, "percentiles_us": [[50, 1200], [99, 4800], [99.9, 8000]]}\n')
    r = parse(out)
    assert r["rate"] == 200 and r["errors"] == 3 and r["statuses"] == {200: 598, 409: 2}
    assert (r["p50_ms"], r["p99_ms"], r["max_ms"]) == (1.2, 4.8, 9.0)
    with pytest.raises(ValueError):
        parse("no summary")


def test_wrk_rate_is_split_over_threads_and_bodies_passed_through():
    cmd = wrk_command("http://h:1/x", rate=200, seconds=10, threads=2, method="POST", body='{"k": "{id}"}',
                      headers={"A": "b"})
    assert cmd[-5:-1] == ["http://h:1/x", "--", "100", "POST"]
    assert cmd[-1] == '{"k": "{id}"}' and "-t2" in cmd and "-d10s" in cmd and "A: b" in cmd


def test_table_escapes_pipes_and_fmt_marks_missing():
    assert table(["a", "b"], [["x|y", 1]]) == "| a | b |\n|---|---|\n| x\\|y | 1 |"
    assert fmt(None) == "-" and fmt(1234.5, "ms") == "1,234 ms" and fmt(0.123, "s", 2) == "0.12 s"


def test_verdict_says_by_how_much():
    assert verdict(300, 350, "ms") == "met"
    assert verdict(700, 350, "ms") == "missed by 350 ms (100 %)"
    assert verdict(80, 90, "points", higher_is_better=True) == "missed by 10 points (11 %)"
    assert verdict(1.5, 1.0, "%") == "missed by 0.50 % (50 %)"
    assert verdict(None, 1) == "not measured"
    assert verdict(2, 0) == "missed by 2" and verdict(0, 0) == "met"


def _row(mode, n, detection, lost=0, msgs=60.0):
    return {"mode": mode, "nodes": n, "idle": {"cpu_pct": [0.5, 1.5], "rss_mb": [40, 50], "msgs_per_min": [msgs]},
            "trials": [{"detection_s": detection, "failover_s": 1.0, "next_write_s": 1.2, "lost": lost, "acked": 10}]}


def test_adr_matrix_puts_measured_beside_claimed():
    modes = {"rows": [_row("http+bully", 5, 4.0, lost=3, msgs=900), _row("swim+raft", 5, 2.0),
                      _row("http+bully", 30, 4.5, msgs=950), _row("swim+raft", 30, 2.5, msgs=55)]}
    modes["rows"][1]["split_brain"] = {"most_leaders_at_once": 1, "lost": 0, "acked": 20}
    text = adr_matrix(modes)
    assert "| Failure detection, 5 nodes | 60-90 s | 5-10 s | 4.00 s | 2.00 s | - |" in text
    assert "Failure detection, 30 nodes" in text and "3 of 20 acknowledged writes lost" in text
    assert "| Leader failover, 5 nodes | 60-90 s | < 2 s | 1.00 s agreed / 1.20 s next write |" in text
    assert "at most 1 claiming to lead at once, 0 of 20 writes lost" in text
    assert "| Bandwidth (30 nodes, idle, `local` preset) | ~900 req/min | ~60 msg/min | 950 msg/min/node | 55 msg/min/node | - |" in text
    # With the production preset's idle run, bandwidth comes from it, at its largest size.
    idle = {"preset": "lan", "rows": [_row("http+bully", 30, None, msgs=48), _row("swim+raft", 30, None, msgs=294)]}
    text = adr_matrix(modes, idle)
    assert "| Bandwidth (30 nodes, idle, `lan` preset) | ~900 req/min | ~60 msg/min | 48 msg/min/node | 294 msg/min/node | - |" in text
    assert "Failure detection, 30 nodes | 60-90 s | 5-10 s | 4.50 s | 2.50 s" in text  # still the modes run


def test_report_tables_render_with_suites_missing():
    assert "not measured" in targets_table({})
    assert "-" in beside_table({})
    results = {"raft_failover": {"nodes": 5, "failover_s": {"adapter (RaftConsensus)": [0.2, 0.7], "raw": [0.5]}},
               "etcd_bench": {"failover_ms": [510.0], "idle": {"e0": {"cpu_pct": 0.4, "rss_mb": 30.0}}},
               "cluster_modes": {"rows": [_row("swim+raft", 30, 3.5)]}}
    text = targets_table(results)
    assert "| ≤ 350 ms | 450 ms | raw pysyncobj 500 ms; etcd 510 ms | missed by 100 ms (29 %) |" in text
    assert "missed by 100 ms (17 %)" in text  # max 700 against 600
    assert "idle node, swim+raft, 30 nodes, local preset: CPU (mean / max) | ≤ 1 % | 1.00 % / 1.50 %" in text


def test_idle_figures_come_from_the_production_preset_run_when_there_is_one():
    results = {"cluster_modes": {"preset": "local", "rows": [_row("swim+raft", 30, 3.5)]},
               "cluster_idle": {"preset": "lan", "rows": [_row("swim+raft", 30, 0.5)]}}
    text = targets_table(results)
    assert "idle node, swim+raft, 30 nodes, lan preset: CPU" in text
    assert "idle node, swim+raft, 30 nodes, local preset" not in text
    assert "SWIM messages sent per node per minute, 30 nodes, lan preset" in text
    assert "(swim+raft, 30 nodes, lan preset)" in beside_table(results)


def test_a_failed_mode_is_named_and_the_others_still_render():
    modes = {"rows": [_row("swim+raft", 5, 2.0), {"mode": "http+bully", "nodes": 30, "voters": 5,
                                                  "error": "WaitTimeout: 30 nodes see each other alive"}]}
    text = adr_matrix(modes)
    assert text.startswith("> http+bully at 30 nodes failed: WaitTimeout")
    assert "| Failure detection, 5 nodes | 60-90 s | 5-10 s | - | 2.00 s | - |" in text
    assert "idle node, swim+raft, 5 nodes" in targets_table({"cluster_modes": modes})


def test_a_blackholed_leader_is_reported_beside_a_kill_in_the_same_harness():
    silent = {"results": {"blackhole": {"samples_ms": [400.0, 700.0], "elections_on_return": 1},
                          "kill": {"samples_ms": [300.0, 320.0]}}}
    text = targets_table({"failover_blackhole": silent})
    row = next(line for line in text.splitlines() if "leader blackholed" in line)
    assert "550 ms" in row and "SIGKILL in the same harness 310 ms" in row, row
    assert "missed by 100 ms" in next(line for line in text.splitlines() if "the same: max of 2" in line)


def test_each_missed_target_gets_its_why_once_and_met_ones_none():
    from report_render import why_missed
    text = table(["what", "target", "ours", "beside", "verdict"], [
        ["SWIM messages sent per node per minute, 30 nodes", "< 100", "301", "", "missed by 201 (201 %)"],
        ["idle node, swim+raft, 5 nodes: CPU", "≤ 1 %", "1.3 %", "", "missed by 0.3 points (30 %)"],
        ["idle node, hybrid, 5 nodes: CPU", "≤ 1 %", "1.2 %", "", "missed by 0.2 points (20 %)"],
        ["SWIM failure detection, 30 nodes: p50", "≤ 3 s", "2.1 s", "", "met"]])
    why = why_missed(text)
    assert why.count("**idle node**") == 1 and "**SWIM messages sent per node per minute**" in why
    assert "SWIM failure detection" not in why
