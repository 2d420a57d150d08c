"""One command for the benchmark report: run the suite, write ``docs/benchmarks.md`` and its plots.

    .venv/bin/python scripts/bench/report.py --quick     # sized for 10 minutes on a quiet 2-core machine
    .venv/bin/python scripts/bench/report.py --full      # more trials, longer windows, N = 5, 10, 30
    .venv/bin/python scripts/bench/report.py --smoke     # smallest runs: checks the pipeline, not the figures

Each benchmark runs in its own process, one after the other (so they never compete with each
other for the machine), with its progress shown as it goes; its JSON, its log and the load
average when it started are kept in ``--keep`` (a temporary directory by default). Needs the
``bench`` extra (matplotlib), ``wrk``, and ``etcd``/``etcdctl`` (Debian: wrk, etcd-server,
etcd-client); a benchmark that fails or cannot run is reported as such, never left out silently.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_common import machine, progress
from report_render import adr_matrix, beside_table, table, targets_table, why_missed

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

# name -> arguments per profile. Sizes follow the issue: 5 voters for failover, 3 for latency,
# 5 and 30 nodes for the modes, 200 requests/s for the API.
SUITES: dict[str, dict[str, list[str]]] = {
    "raft_failover": {"smoke": ["--nodes", "5", "--trials", "2"],
                      "quick": ["--nodes", "5", "--trials", "5"],
                      "full": ["--nodes", "5", "--trials", "15"]},
    "raft_latency": {"smoke": ["--nodes", "3", "--n", "200", "--pipeline", "1000", "--inflight", "100"],
                     "quick": ["--nodes", "3", "--n", "500", "--pipeline", "4000", "--inflight", "100"],
                     "full": ["--nodes", "3", "--n", "2000", "--pipeline", "20000", "--inflight", "100"]},
    "api_bench": {"smoke": ["--nodes", "3", "--seconds", "3", "--locks", "20", "--trials", "1"],
                  "quick": ["--nodes", "3", "--seconds", "6", "--locks", "100", "--trials", "2"],
                  "full": ["--nodes", "3", "--seconds", "30", "--locks", "500", "--trials", "5"]},
    "etcd_bench": {"smoke": ["--seconds", "3", "--trials", "2", "--locks", "20", "--lock-trials", "1", "--idle", "3"],
                   "quick": ["--seconds", "6", "--trials", "5", "--locks", "100", "--lock-trials", "2", "--idle", "5"],
                   "full": ["--seconds", "30", "--trials", "15", "--locks", "500", "--lock-trials", "5", "--idle", "30"]},
    "cluster_modes": {"smoke": ["--sizes", "3,5", "--trials", "1", "--idle", "3", "--pause", "5"],
                      # 10, not 30: 30 nodes heartbeating every 0.5 s (`local`) in http and hybrid
                      # modes are ~3,400 HTTP requests a second, more than 2 cores serve (30 nodes
                      # idle with the production preset: cluster_idle below).
                      "quick": ["--sizes", "5,10", "--trials", "1", "--idle", "5", "--pause", "5",
                                "--converge-timeout", "120"],
                      "full": ["--sizes", "5,10,30", "--trials", "3", "--idle", "30", "--pause", "8"]},
    # The idle footprint and SWIM traffic with the production preset (the modes above run `local`,
    # whose timers are 4-5x faster, to keep kill trials short).
    "cluster_idle": {"smoke": ["--preset", "lan", "--sizes", "3", "--trials", "0", "--idle", "3", "--pause", "0"],
                     "quick": ["--preset", "lan", "--sizes", "5,30", "--trials", "0", "--idle", "10", "--pause", "0",
                               "--converge-timeout", "120"],
                     "full": ["--preset", "lan", "--sizes", "5,30", "--trials", "0", "--idle", "60", "--pause", "0"]},
    # A leader whose machine goes silent (its packets dropped), beside a SIGKILL in the same
    # harness: real network namespaces, so it needs root.
    "failover_blackhole": {"smoke": ["--nodes", "5", "--trials", "1"],
                           "quick": ["--nodes", "5", "--trials", "4"],
                           "full": ["--nodes", "5", "--trials", "10"]},
}
SCRIPTS = {"cluster_idle": "cluster_modes"}  # a suite run by another suite's script
FIGURE_SUITES = {"failover": ["raft_failover", "etcd_bench", "cluster_modes", "failover_blackhole"],
                 "latency": ["api_bench", "etcd_bench", "raft_latency"],
                 "throughput": ["raft_latency", "api_bench", "etcd_bench"],
                 "modes": ["cluster_modes"], "footprint": ["cluster_idle", "etcd_bench"]}


def run_suite(name: str, args: list[str], keep: Path, index: int, total: int) -> dict[str, Any]:
    """Run one benchmark, echoing its output with its name; returns its run record."""
    out = keep / f"{name}.json"
    script = SCRIPTS.get(name, name)
    cmd = [sys.executable, str(HERE / f"{script}.py"), *args, "--json", str(out)]
    shown = f"python scripts/bench/{script}.py {' '.join(args)}"
    record: dict[str, Any] = {"name": name, "command": shown, "machine": machine()}
    progress(f"({index}/{total}) {shown}")
    started = time.monotonic()
    with open(keep / f"{name}.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            print(f"  [{name}] {line}", end="", flush=True)
        record["exit"] = proc.wait()
    record["seconds"] = time.monotonic() - started
    if out.exists():  # a benchmark that failed part-way may still have written what it measured
        record["result"] = json.loads(out.read_text())
    if record["exit"] != 0:
        record["tail"] = (keep / f"{name}.log").read_text().splitlines()[-5:]
    progress(f"({index}/{total}) {name}: {outcome(record)} in {record['seconds']:.0f} s")
    return record


def outcome(record: dict[str, Any]) -> str:
    if record["exit"] == 0 and "result" in record:
        return "ok"
    state = "partial" if "result" in record else "failed"
    return f"{state} (exit {record['exit']}): {' / '.join(record.get('tail', []))[-300:]}"


def footers(runs: dict[str, dict[str, Any]], command: str) -> dict[str, str]:
    """Per figure: the machine when its first suite started, and the commands behind it."""
    from report_plots import stamp

    out = {}
    for figure, names in FIGURE_SUITES.items():
        present = [runs[n] for n in names if n in runs]
        out[figure] = stamp(present[0]["machine"], [r["command"] for r in present], command) if present else ""
    return out


def markdown(profile: str, command: str, runs: dict[str, dict[str, Any]], start: dict[str, Any],
             end: dict[str, Any] | None, figures: dict[str, dict[str, str]], elapsed: float) -> str:
    results = {name: run.get("result") for name, run in runs.items()}
    targets = targets_table(results)
    load = "/".join(f"{x:.2f}" for x in start["load"])
    busy = start["load"][0] > (start["nproc"] or 1)
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `{command}` ({profile} profile) in {elapsed / 60:.1f} minutes from {start['at']}. "
        "Every figure below comes from that run.",
        "",
        f"**Machine:** {start['nproc']} cores, {start['cpu']}, Linux {start['kernel']}, Python {start['python']}; "
        f"load average (1/5/15 min) **{load}** at the start"
        + (f", {'/'.join(f'{x:.2f}' for x in end['load'])} at the end." if end else "."),
        "",
    ]
    if busy or profile == "smoke":
        lines += ["> **Not for comparison with other machines or runs.** "
                  + (f"The 1-minute load average ({start['load'][0]:.1f}) was above the core count: other "
                     "work shared the CPUs, so latencies and failover times are inflated and noisy. "
                     if busy else "")
                  + ("The smoke profile runs the fewest trials and shortest windows. " if profile == "smoke" else "")
                  + "Regenerate on a quiet machine with `report.py --quick` or `--full`. Ratios within the run "
                  "(us beside raw pysyncobj and etcd, measured minutes apart) hold better than absolute times.", ""]
    lines += ["## Runs", "",
              table(["benchmark", "command", "load at start", "took", "outcome"],
                    [[name, f"`{run['command']}`", f"{run['machine']['load'][0]:.1f}", f"{run['seconds']:.0f} s",
                      outcome(run)]
                     for name, run in runs.items()]), "",
              "## Targets", "",
              "Targets from issue 16 and `targets.md`; where one is missed the verdict says by how much.", "",
              targets, "",
              *(["Why the misses:", "", why, ""] if (why := why_missed(targets)) else []),
              "## ADR-013 comparison matrix, measured", "",
              "The ADR's claims beside what real nodes did in this run (`cluster_modes.py`, `local` preset, "
              "at most 5 voters). In hybrid the killed leader is the one `/status` names; writes follow Raft's "
              "leader, which may be another node (`raft_leader` in the JSON), so a write may not wait for a new "
              "one.", "",
              "Detection: leader SIGKILL until every survivor's own event log has it "
              "`failed`. Failover: until the survivors agree on a new leader (polled every 0.1 s) / until the "
              "first write started after the kill is acknowledged. State replication: acknowledged writes the new "
              "leader does not hold (consistent reads). Split-brain: the leader paused (SIGSTOP) past its lease "
              "while writes go on, then resumed. Bandwidth: membership messages sent per node per minute while idle, "
              "with the production (`lan`) preset's intervals when the idle suite ran "
              "(heartbeat requests and answers, or SWIM datagrams; Raft's own traffic is not counted).", "",
              adr_matrix(results.get("cluster_modes"), results.get("cluster_idle")), "",
              "## Beside raw pysyncobj and etcd", "",
              "Same run, same machine. In-process figures are submitted inside a node process "
              "(`raft_latency.py`, `raft_failover.py`); HTTP figures go through each system's HTTP API on loopback "
              "(wrk for rates; a kept-alive connection for one-at-a-time calls). etcd runs with heartbeat "
              f"{(results.get('etcd_bench') or {}).get('heartbeat_ms', '?')} ms and election timeout "
              f"{(results.get('etcd_bench') or {}).get('election_ms', '?')} ms and fsyncs before it acknowledges; "
              f"{(results.get('etcd_bench') or {}).get('version', 'etcd')}.", "",
              beside_table(results), "",
              "## Figures", ""]
    for name, figure in figures.items():
        machine_line, *commands = figure["stamp"].splitlines()
        lines += [f"### {figure['title']}", "", f"![{figure['title']}](benchmarks/{name})", "",
                  f"Measured on {machine_line}; made by " + ", ".join(f"`{c.removeprefix('$ ')}`" for c in commands)
                  + ".", ""]
    lines += ["Each figure states the machine and the commands that made it. wrk (Debian ships wrk, not wrk2) "
              "keeps the rate with `scripts/bench/fixed_rate.lua` and times each request from its send; a request "
              "whose slot passed is sent at once, and the achieved rate is shown beside the latencies.", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group(required=True)
    for profile in ("smoke", "quick", "full"):
        group.add_argument(f"--{profile}", dest="profile", action="store_const", const=profile)
    parser.add_argument("--only", help="comma-separated benchmarks (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--keep", type=Path, help="keep each benchmark's JSON and log here")
    parser.add_argument("--from-json", type=Path, help="render only, from a --keep directory of an earlier run")
    args = parser.parse_args()
    command = "python scripts/bench/report.py " + " ".join(sys.argv[1:])
    names = args.only.split(",") if args.only else list(SUITES)
    keep = args.keep or Path(tempfile.mkdtemp(prefix="wt-bench-report-"))
    keep.mkdir(parents=True, exist_ok=True)
    started, start = time.monotonic(), machine()
    if args.from_json:
        saved = json.loads((args.from_json / "runs.json").read_text())
        runs, start, end, elapsed = saved["runs"], saved["start"], saved.get("end"), saved["elapsed"]
        command, args.profile = saved["command"], saved["profile"]
    else:
        progress(f"{args.profile}: {len(names)} benchmarks, results in {keep}")
        runs = {name: run_suite(name, SUITES[name][args.profile], keep, i, len(names))
                for i, name in enumerate(names, start=1)}
        elapsed, end = time.monotonic() - started, machine()
        (keep / "runs.json").write_text(json.dumps({"runs": runs, "start": start, "end": end, "elapsed": elapsed,
                                                    "command": command, "profile": args.profile}, indent=1))
    from report_plots import draw_all  # matplotlib only once there is something to draw

    results = {name: run.get("result") for name, run in runs.items()}
    figures = draw_all(results, args.out.parent / "benchmarks", footers(runs, command))
    args.out.write_text(markdown(args.profile, command, runs, start, end, figures, elapsed))
    failed = [name for name, run in runs.items() if outcome(run) != "ok"]
    progress(f"wrote {args.out} and {len(figures)} figures in {elapsed / 60:.1f} minutes"
             + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
