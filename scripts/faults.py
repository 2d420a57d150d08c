#!/usr/bin/env python3
"""Randomized fault runs on a multi-host cluster of network namespaces (needs root).

    sudo .venv/bin/python scripts/faults.py --scenarios all --seeds 3
    sudo .venv/bin/python scripts/faults.py --scenarios kill-leader,lossy-links --seeds 10 --first-seed 100
    sudo .venv/bin/python scripts/faults.py --seeds 0 --churn 30  # random scenarios on one cluster, 30 min
    sudo .venv/bin/python scripts/faults.py --seeds 0 --soak 30 --mode raft --membership swim --workload state

Each (scenario, seed) runs on a fresh 5-node cluster; the seed chooses victims, splits and hold
times, so ``--scenarios X --seeds 1 --first-seed S`` replays one run. ``--churn`` keeps one
cluster up and runs random scenarios back to back on it. ``--soak`` keeps one cluster up under
a steady workload with no fault (small retention bounds, no abandoned claim: the state stops
growing within the warm-up) and judges the node processes over time
(``ringrift_cluster.testing.soak``): resident memory, event-loop tasks and open descriptors do
not grow after the warm-up, no event-loop stall over 100 ms, and its history clean. The table shows, per scenario:
runs, operations (faults) injected, violations, regressions of node issues this suite once found
(``nemesis.KNOWN_ISSUES``, all fixed),
the longest time with no majority-acknowledged leader, and time spent. Exit status 1 on any
violation, a regression of a node issue this suite once found included.

``--workload state`` runs clients on the replicated-state HTTP API during each scenario (work
items added, claimed, completed and failed; locks with short TTLs; model registrations) and checks
their history afterwards: no acknowledged write lost, no work item under two live claims, fence
tokens increasing and lock windows disjoint, unknown outcomes consistent, replicas' state digests
equal after heal (``ringrift_cluster.testing.workload``); and, independently of those rules, that
each key's history (a work item, a lock, a model name) has a linearization under a sequential
model of the API (``ringrift_cluster.testing.linearizability``: the table's ``linearizable``
column; a history without one fails the run and leaves ``linearizability.html``, a timeline, and
``history.json``, in porcupine's operation format, in the evidence directory it names). ``--mode raft`` (or ``hybrid``) runs the
nodes with that consensus mode; in ``bully`` mode only the leader holds the state, so losses across
a leader change are expected there and only counted (``expected_anomalies`` in ``--json``).

    sudo .venv/bin/python scripts/faults.py --mode raft --workload state --scenarios kill-leader --seeds 3

``--membership swim`` (or ``hybrid``) runs the nodes with that membership mode; every scenario
judges membership the same way in each: no healthy member declared failed, the dead and the cut
off declared failed within the bound, everyone alive again after heal.

``power-cut-all`` and ``power-cut-majority`` put every node's data dir on a disk that loses what
was not fsynced (``ringrift_cluster.testing.netns.powercut_cluster``, FUSE: needs fuse3), SIGKILL
every node (or the leader and enough others for a majority) and cut their disks at one instant
while the clients write, then boot them: every acknowledged write must still be there, and a
leader serve within the start bound in a newer term. ``--durability fsync|batch|none`` sets the
nodes' ``raft.durability``; with ``none`` power-cut-all loses acknowledged writes (the ``lost``
column: acknowledged writes the history checker found missing). ``--writeback SECONDS`` makes the
disks write back what is dirty that often, as a kernel does: without it pysyncobj alone (``none``)
cannot even map the empty journal a cut leaves, and the run fails on no leader.

    sudo .venv/bin/python scripts/faults.py --mode raft --workload state --scenarios power-cut-all --seeds 20
    sudo .venv/bin/python scripts/faults.py --mode raft --workload state --scenarios power-cut-all --durability none --writeback 5

Without network namespaces, LocalCluster (ringrift_cluster.testing) covers the process faults
(SIGKILL, SIGTERM, SIGSTOP, restart) on loopback; this script needs namespaces.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from ringrift_cluster.testing.nemesis import ScenarioResult, Timings, Workload
from ringrift_cluster.testing.scenarios import SCENARIOS, run_named
from ringrift_cluster.testing.netns import NetnsCluster, netns_unavailable_reason
from ringrift_cluster.testing.netns.powercut_cluster import PowerCutCluster
from ringrift_cluster.testing.scenarios_power import needs_power_cut_disks
from ringrift_cluster.testing.checks.calls import read_history
from ringrift_cluster.testing.judge import judge_history
from ringrift_cluster.testing.soak import run_soak, steady_settings, steady_workload
from ringrift_cluster.testing.soak import table as soak_table
from ringrift_cluster.testing.workload import StateWorkload

# name -> factory of a client workload with its history checker (see nemesis.Workload).
WORKLOADS: dict[str, Callable[..., Workload]] = {"state": StateWorkload}
MODES = ("bully", "raft", "hybrid")
MEMBERSHIP = ("http", "swim", "hybrid")
DURABILITY = ("fsync", "batch", "none")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default="all", help=f"'all' or a comma list of: {', '.join(SCENARIOS)}")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per scenario (default 1)")
    parser.add_argument("--first-seed", type=int, default=None, help="first seed (default: random)")
    parser.add_argument("--churn", type=float, default=0.0, metavar="MINUTES",
                        help="after the seeded runs, run random scenarios on one cluster for MINUTES")
    parser.add_argument("--soak", type=float, default=0.0, metavar="MINUTES",
                        help="after those, keep one cluster under the workload (no fault) for MINUTES and "
                             "judge memory, tasks, descriptors and event-loop stalls")
    parser.add_argument("--loss-hold", type=float, default=None, metavar="SECONDS",
                        help="how long lossy-links (and slow-node) hold their fault (default: 15-25 s)")
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--workload", choices=sorted(WORKLOADS),
                        help="client workload and history checker: 'state' = work queue, locks and models "
                             "over the replicated-state HTTP API (use with --mode raft or hybrid)")
    parser.add_argument("--mode", choices=MODES, default=None,
                        help="consensus_mode of the nodes (default: the nodes' default, bully)")
    parser.add_argument("--membership", choices=MEMBERSHIP, default=None,
                        help="membership_mode of the nodes (default: the nodes' default, http)")
    parser.add_argument("--durability", choices=DURABILITY, default=None,
                        help="raft.durability of the nodes (default: the nodes' default, batch); with none the "
                             "power-cut scenarios lose acknowledged writes")
    parser.add_argument("--writeback", type=float, default=None, metavar="SECONDS",
                        help="power-cut disks write back what is dirty every SECONDS, as a kernel does "
                             "(default: never, only an fsync makes data durable)")
    parser.add_argument("--data-dir", help="keep configs and node logs here (default: a temp dir, removed)")
    parser.add_argument("--json", help="also write every result to this JSON file")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each run's operations")
    parser.add_argument("--recheck", metavar="CALLS_JSONL",
                        help="run no cluster: check again the history a failed run left (its calls.jsonl) and "
                             "print what the history checks and the linearizability search find")
    args = parser.parse_args(argv)
    if args.recheck:
        return _recheck(Path(args.recheck))

    names = list(SCENARIOS) if args.scenarios == "all" else [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; known: {', '.join(SCENARIOS)}")
    reason = netns_unavailable_reason()
    if reason:
        print(f"faults.py: network namespaces unavailable: {reason}", file=sys.stderr)
        return 2
    # SIGTERM unwinds like Ctrl-C, so every namespace and process is removed on the way out.
    signal.signal(signal.SIGTERM, _interrupt)

    first = args.first_seed if args.first_seed is not None else random.randrange(1, 10**6)
    timings = Timings() if args.loss_hold is None else Timings(loss_hold_s=(args.loss_hold, args.loss_hold))
    results: list[ScenarioResult] = []
    temp = None if args.data_dir else tempfile.TemporaryDirectory(prefix="ringrift-faults-")
    root = Path(args.data_dir or temp.name)  # type: ignore[union-attr]
    print(f"scenarios: {', '.join(names)}; seeds {first}..{first + args.seeds - 1}; {args.nodes} nodes; "
          f"consensus: {args.mode or 'default'}; membership: {args.membership or 'default'}; "
          f"workload: {args.workload or 'none'}; durability: {args.durability or 'default'}", flush=True)
    # A history with no linearization leaves its timeline and operations here (kept after the run).
    evidence = Path(args.data_dir or tempfile.gettempdir()) / f"ringrift-faults-evidence-{first}"
    try:
        for name in names:
            for seed in range(first, first + args.seeds):
                with _cluster(args, [name], root / f"{name}-{seed}") as cluster:
                    result = run_named(name, cluster, seed, timings=timings,
                                       workload=_workload(args, evidence / f"{name}-{seed}"))
                results.append(result)
                _progress(result, args.verbose)
        if args.churn > 0:
            results += _churn(args, names, first + args.seeds, timings, root, evidence)
        if args.soak > 0:
            results += _soak(args, first + args.seeds, timings, root, evidence)
    except KeyboardInterrupt:
        print("interrupted: cleaning up", file=sys.stderr)
    finally:
        if temp is not None:
            temp.cleanup()

    print()
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps([_as_dict(r) for r in results], indent=2))
    bad = sum(len(r.violations) for r in results)
    known = sum(len(r.known) for r in results)
    return 1 if bad or known or not results else 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _workload(args: argparse.Namespace, evidence: Path) -> Workload | None:
    return WORKLOADS[args.workload](evidence_dir=str(evidence)) if args.workload else None


def _settings(args: argparse.Namespace) -> dict[str, object]:
    settings: dict[str, object] = {"consensus_mode": args.mode} if args.mode else {}
    if args.membership:
        settings["membership_mode"] = args.membership
    if args.durability:
        settings["raft"] = {"durability": args.durability}
    return settings


def _cluster(args: argparse.Namespace, names: list[str], root: Path) -> NetnsCluster:
    """Power-cut scenarios need every data dir on a disk that can lose power (FUSE)."""
    if any(needs_power_cut_disks(n) for n in names):
        return PowerCutCluster(args.nodes, root, settings=_settings(args), writeback_s=args.writeback)
    return NetnsCluster(args.nodes, root, settings=_settings(args))


def _churn(args: argparse.Namespace, names: list[str], seed: int, timings: Timings, root: Path,
           evidence: Path) -> list[ScenarioResult]:
    """Random scenarios back to back on one long-lived cluster until the time is up."""
    results = []
    deadline = time.monotonic() + args.churn * 60
    rng = random.Random(seed)
    with _cluster(args, names, root / "churn") as cluster:
        while time.monotonic() < deadline:
            name = rng.choice(names)
            result = run_named(name, cluster, seed, timings=timings,
                               workload=_workload(args, evidence / f"churn-{name}-{seed}"))
            result.name = f"churn:{name}"
            results.append(result)
            _progress(result, args.verbose)
            seed += 1
    return results


def _soak(args: argparse.Namespace, seed: int, timings: Timings, root: Path, evidence: Path) -> list[ScenarioResult]:
    """One cluster under the workload for ``--soak`` minutes: a row for its history, one for the
    resource bounds (``soak:resources``), and the figures per node."""
    began = time.monotonic()
    workload = steady_workload(evidence_dir=str(evidence / "soak")) if args.workload else None
    with NetnsCluster(args.nodes, root / "soak", settings=steady_settings(_settings(args))) as cluster:
        soak = run_soak(cluster, args.soak, seed=seed, timings=timings, workload=workload,
                        progress=lambda line: print(line, flush=True))
    for r in soak.segments:
        _progress(r, args.verbose)
    print(f"\nsoak: {args.soak:g} min, {soak.samples} samples\n{soak_table(soak.figures)}")
    for v in soak.violations:
        print(f"  VIOLATION {v}")
    verdict = ScenarioResult(name="soak:resources", seed=seed, ops=[], violations=soak.violations, known=[],
                             notes=[], max_unavailable_s=0.0, duration_s=time.monotonic() - began, rounds=0)
    return soak.segments + [verdict]


def _recheck(path: Path) -> int:
    calls, final = read_history(path)
    if final is None:
        print(f"{path}: no final state was read in that run; the checks need one", file=sys.stderr)
        return 2
    found, _ = judge_history(calls, final)
    for v in found:
        print(f"VIOLATION {v}")
    print(f"{path}: {len(calls)} calls, {len(found)} violations")
    return 1 if found else 0


def _progress(result: ScenarioResult, verbose: bool) -> None:
    flag = "ok" if result.ok and not result.known else ("KNOWN" if result.ok else "VIOLATION")
    print(f"  {result.name:<20} seed={result.seed:<8} {flag:<9} faults={result.faults:<3} "
          f"unavailable_max={result.max_unavailable_s:5.1f}s  {result.duration_s:5.1f}s"
          + (f"  acked={result.workload.get('ok', 0)} lost={lost_writes(result)}" if result.workload else ""), flush=True)
    if verbose or not result.ok or result.known:
        for line in result.report().splitlines()[1:]:
            print(f"      {line}", flush=True)


def _linearizable(rs: list[ScenarioResult]) -> str:
    """The linearizability search's verdict over runs: ``ok``, ``FAIL n`` (keys with no
    linearization) or ``-`` (no state workload)."""
    checked = [r.workload for r in rs if "lin_keys" in r.workload]
    if not checked:
        return "-"
    failed = sum(w["lin_failed"] for w in checked)
    return f"FAIL {failed}" if failed else "ok"


def lost_writes(result: ScenarioResult) -> int:
    """Acknowledged writes the history checker found missing (its "lost write" violations)."""
    return sum(1 for v in result.violations if "lost write:" in v)


def table(results: list[ScenarioResult]) -> str:
    rows: dict[str, list[ScenarioResult]] = {}
    for r in results:
        rows.setdefault(r.name, []).append(r)
    header = (f"{'scenario':<26} {'runs':>4} {'ops':>5} {'faults':>6} {'violations':>10} {'known':>5} "
              f"{'linearizable':>12} {'lost':>5} {'max unavail':>11} {'time':>7}")
    lines = [header, "-" * len(header)]
    for name, rs in list(rows.items()) + [("total", results)]:
        if name == "total":
            lines.append("-" * len(header))
        lines.append(f"{name:<26} {len(rs):>4} {sum(len(r.ops) for r in rs):>5} {sum(r.faults for r in rs):>6} "
                     f"{sum(len(r.violations) for r in rs):>10} {sum(len(r.known) for r in rs):>5} "
                     f"{_linearizable(rs):>12} {sum(lost_writes(r) for r in rs):>5} "
                     f"{max((r.max_unavailable_s for r in rs), default=0):>10.1f}s "
                     f"{sum(r.duration_s for r in rs):>6.0f}s")
    return "\n".join(lines)


def _as_dict(r: ScenarioResult) -> dict[str, object]:
    return {"name": r.name, "seed": r.seed, "ops": [str(op) for op in r.ops], "violations": r.violations,
            "known": r.known, "notes": r.notes, "lost_writes": lost_writes(r), "max_unavailable_s": round(r.max_unavailable_s, 3),
            "duration_s": round(r.duration_s, 3), "rounds": r.rounds, "workload": r.workload}


if __name__ == "__main__":
    sys.exit(main())
