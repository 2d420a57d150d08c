"""The report's text: tables, target verdicts and the ADR-013 matrix, from the suites' JSON.
Pure (no I/O), so it is unit-tested; a figure a suite did not produce is shown as "-"."""

from __future__ import annotations

import statistics
from typing import Any, Iterable, Sequence

from bench_common import percentile

MISSING = "-"


def fmt(value: float | None, unit: str = "", digits: int = 0) -> str:
    """A number for a table: thousands separated, ``-`` when it was not measured."""
    if value is None:
        return MISSING
    return f"{value:,.{digits}f}{(' ' + unit) if unit else ''}"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table; cells are str()'d and pipes in them escaped."""
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(value: float | None, target: float, unit: str = "", higher_is_better: bool = False) -> str:
    """``met`` or ``missed by X (Y %)``: how far a figure is from its target."""
    if value is None:
        return "not measured"
    ok = value >= target if higher_is_better else value <= target
    if ok:
        return "met"
    gap = abs(value - target)
    digits = 0 if gap >= 10 or float(gap).is_integer() else 2
    share = f" ({100 * gap / target:.0f} %)" if target else ""
    return f"missed by {gap:,.{digits}f}{(' ' + unit) if unit else ''}{share}"


def med(values: Sequence[float] | None) -> float | None:
    return statistics.median(values) if values else None


def top(values: Sequence[float] | None) -> float | None:
    return max(values) if values else None


def p(values: Sequence[float] | None, q: float) -> float | None:
    return percentile(values, q) if values else None


def mean(values: Sequence[float] | None) -> float | None:
    return statistics.fmean(values) if values else None


def scaled(values: Sequence[float] | None, factor: float) -> list[float] | None:
    return [v * factor for v in values] if values else None


# -- Pulling figures out of the suites' JSON (a missing suite gives None everywhere) ----------------


def idle_suite(results: dict[str, Any]) -> dict[str, Any] | None:
    """The idle measurements: the production-preset run when there is one, else the modes run."""
    return results.get("cluster_idle") or results.get("cluster_modes")


def preset_of(runs: dict[str, Any] | None) -> str:
    return str((runs or {}).get("preset", "local"))


def measured_rows(modes: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The (mode, N) runs that got as far as their idle window (a failed one carries ``error``)."""
    return [r for r in (modes or {}).get("rows", []) if "idle" in r]


def mode_rows(modes: dict[str, Any] | None, mode: str) -> list[dict[str, Any]]:
    return sorted((r for r in measured_rows(modes) if r["mode"] == mode), key=lambda r: r["nodes"])


def mode_row(modes: dict[str, Any] | None, mode: str, n: int) -> dict[str, Any] | None:
    return next((r for r in mode_rows(modes, mode) if r["nodes"] == n), None)


def trial_values(row: dict[str, Any] | None, key: str) -> list[float]:
    return [t[key] for t in (row or {}).get("trials", []) if t.get(key) is not None]


def largest_n(modes: dict[str, Any] | None) -> int | None:
    sizes = [r["nodes"] for r in measured_rows(modes)]
    return max(sizes) if sizes else None


def smallest_n(modes: dict[str, Any] | None) -> int | None:
    sizes = [r["nodes"] for r in measured_rows(modes)]
    return min(sizes) if sizes else None


def adr_matrix(modes: dict[str, Any] | None, idle_runs: dict[str, Any] | None = None) -> str:
    """ADR-013's comparison matrix, its claims beside what this run measured. Bandwidth comes
    from ``idle_runs`` (the production preset's intervals, which the ADR's figures assume) when
    given, else from ``modes``."""
    small, large = smallest_n(modes), largest_n(modes)
    quiet = idle_runs or modes
    quiet_n = largest_n(quiet)
    names = ["http+bully", "swim+raft", "hybrid"]

    def per_mode(render: Any) -> list[str]:
        return [render(name) for name in names]

    def detection(n: int | None) -> Any:
        return lambda m: fmt(med(trial_values(mode_row(modes, m, n), "detection_s")) if n else None, "s", 2)

    def failover(m: str) -> str:
        row = mode_row(modes, m, small) if small else None
        agreed, write = med(trial_values(row, "failover_s")), med(trial_values(row, "next_write_s"))
        if agreed is None and write is None:
            return MISSING
        return f"{fmt(agreed, 's', 2)} agreed / {fmt(write, 's', 2)} next write"

    def replication(m: str) -> str:
        rows = mode_rows(modes, m)
        lost = sum(t["lost"] for r in rows for t in r.get("trials", []))
        acked = sum(t["acked"] for r in rows for t in r.get("trials", []))
        return f"{lost} of {acked} acknowledged writes lost" if acked else MISSING

    def split(m: str) -> str:
        sb = (mode_row(modes, m, small) or {}).get("split_brain") if small else None
        if not sb:
            return MISSING
        return (f"at most {sb['most_leaders_at_once']} claiming to lead at once, "
                f"{sb['lost']} of {sb['acked']} writes lost")

    def bandwidth(m: str) -> str:
        row = mode_row(quiet, m, quiet_n) if quiet_n else None
        return fmt(mean((row or {}).get("idle", {}).get("msgs_per_min")), "msg/min/node")

    rows = [
        ["Failure detection", "60-90 s", "5-10 s", *per_mode(detection(small))],
        ["Leader failover", "60-90 s", "< 2 s", *per_mode(failover)],
        ["State replication", "None", "Automatic", *per_mode(replication)],
        ["Split-brain prevention", "Manual", "Automatic", *per_mode(split)],
        ["Bandwidth (30 nodes)", "~900 req/min", "~60 msg/min", *per_mode(bandwidth)],
    ]
    if large and large != small:
        rows.insert(1, [f"Failure detection, {large} nodes", "60-90 s", "5-10 s", *per_mode(detection(large))])
    if small:
        rows[0][0] = f"Failure detection, {small} nodes"
        rows[-4][0] = f"Leader failover, {small} nodes"
    rows[-1][0] = f"Bandwidth ({quiet_n} nodes, idle, `{preset_of(quiet)}` preset)" if quiet_n else rows[-1][0]
    failed = [f"{r['mode']} at {r['nodes']} nodes failed: {r['error']}"
              for runs in ([modes, idle_runs] if idle_runs else [modes]) for r in (runs or {}).get("rows", [])
              if "error" in r]
    return "\n".join(f"> {line}\n" for line in failed) + table(["aspect", "ADR: HTTP+Bully", "ADR: SWIM+Raft", "measured http+bully", "measured swim+raft",
                  "measured hybrid"], rows)


def raft_failover_ms(results: dict[str, Any], kind: str) -> list[float] | None:
    figures = ((results.get("raft_failover") or {}).get("failover_s") or {})
    for name, values in figures.items():
        if name.startswith(kind):
            return scaled(values, 1000)
    return None


def raft_latency_of(results: dict[str, Any], kind: str) -> dict[str, Any]:
    return ((results.get("raft_latency") or {}).get("results") or {}).get(kind) or {}


def _term_changes(before: Any, after: Any) -> int | None:
    return None if before is None or after is None else int(after) - int(before)


def targets_table(results: dict[str, Any]) -> str:
    """Each target of issue 16 / targets.md: ours, what sits beside it in the same run, verdict."""
    api, etcd, modes = results.get("api_bench") or {}, results.get("etcd_bench") or {}, results.get("cluster_modes")
    rows: list[list[str]] = []
    adapter, raw, etcd_fo = raft_failover_ms(results, "adapter"), raft_failover_ms(results, "raw"), etcd.get("failover_ms")
    nodes = (results.get("raft_failover") or {}).get("nodes", "?")
    rows.append([f"Raft failover, leader SIGKILL to the next committed write, {nodes} voters: p50",
                 "≤ 350 ms", fmt(med(adapter), "ms"), f"raw pysyncobj {fmt(med(raw), 'ms')}; etcd {fmt(med(etcd_fo), 'ms')}",
                 verdict(med(adapter), 350, "ms")])
    rows.append(["the same: max", "≤ 600 ms", fmt(top(adapter), "ms"),
                 f"raw pysyncobj {fmt(top(raw), 'ms')}; etcd {fmt(top(etcd_fo), 'ms')}", verdict(top(adapter), 600, "ms")])
    silent = (results.get("failover_blackhole") or {}).get("results") or {}
    hole, killed = (silent.get("blackhole") or {}).get("samples_ms"), (silent.get("kill") or {}).get("samples_ms")
    if hole:
        rows.append(["Raft failover, leader blackholed (every packet dropped, netns), 5 voters: p50", "≤ 350 ms",
                     fmt(med(hole), "ms"), f"SIGKILL in the same harness {fmt(med(killed), 'ms')}; terms to elect "
                     f"per trial {(silent.get('blackhole') or {}).get('election_rounds', MISSING)}",
                     verdict(med(hole), 350, "ms")])
        rows.append([f"the same: max of {len(hole)}", "≤ 600 ms", fmt(top(hole), "ms"),
                     f"SIGKILL {fmt(top(killed), 'ms')}; elections when the old leader returned: "
                     f"{(silent.get('blackhole') or {}).get('elections_on_return')}", verdict(top(hole), 600, "ms")])
    lat_a, lat_r = raft_latency_of(results, "adapter"), raft_latency_of(results, "raw")
    for q, target in ((50, 2.0), (99, 10.0)):
        ours = p(scaled(lat_a.get("latency_leader"), 1000), q)
        rows.append([f"commit latency of one command through the adapter, on the leader: p{q}", f"≤ {target:g} ms",
                     fmt(ours, "ms", 2), f"raw {fmt(p(scaled(lat_r.get('latency_leader'), 1000), q), 'ms', 2)}; "
                     f"etcd put at {fmt(etcd.get('rate'))}/s {fmt((etcd.get('latency') or {}).get(f'p{q}_ms'), 'ms', 2)}",
                     verdict(ours, target, "ms")])
    for role in ("leader", "follower"):
        ours = (lat_a.get(f"pipeline_{role}") or {}).get("ops_per_s")
        anchor = (lat_r.get(f"pipeline_{role}") or {}).get("ops_per_s")
        ratio = 100 * ours / anchor if ours and anchor else None
        rows.append([f"pipelined commands/s through the adapter, on the {role}", "≥ 90 % of raw",
                     f"{fmt(ours, '/s')} ({fmt(ratio, '%')})", f"raw {fmt(anchor, '/s')}", verdict(ratio, 90, "points", True)])
    changes = [("adapter, pipelined load", _term_changes(*(lat_a.get("terms") or (None, None)))),
               ("raw pysyncobj, pipelined load", _term_changes(*(lat_r.get("terms") or (None, None)))),
               ("HTTP API, writes flat out", _term_changes((api.get("throughput") or {}).get("term_before"),
                                                           (api.get("throughput") or {}).get("term_after"))),
               ("etcd, puts flat out", _term_changes((etcd.get("throughput") or {}).get("term_before"),
                                                     (etcd.get("throughput") or {}).get("term_after")))]
    for label, value in changes:
        rows.append([f"leader changes, nobody dead: {label}", "0", fmt(value), "", verdict(value, 0)])
    etcd_put_p99 = (etcd.get("latency") or {}).get("p99_ms")
    for route, result in (api.get("latency") or {}).items():
        target = 10.0 if "follower" in route or "leader" in route else 5.0
        rows.append([f"API p99 at {fmt(api.get('rate'))} req/s: {route}", f"≤ {target:g} ms",
                     f"{fmt(result['p99_ms'], 'ms', 2)} (p50 {fmt(result['p50_ms'], 'ms', 2)}, {fmt(result['rate'])} req/s, "
                     f"{result['errors']} errors)", f"etcd put p99 {fmt(etcd_put_p99, 'ms', 2)}", verdict(result["p99_ms"], target, "ms")])
    etcd_idle = etcd.get("idle") or {}
    etcd_cpu = mean([v["cpu_pct"] for v in etcd_idle.values()]) if etcd_idle else None
    etcd_rss = mean([v["rss_mb"] for v in etcd_idle.values()]) if etcd_idle else None
    idle_runs = idle_suite(results)
    for row in measured_rows(idle_runs):
        cpu, rss = row["idle"]["cpu_pct"], row["idle"]["rss_mb"]
        rows.append([f"idle node, {row['mode']}, {row['nodes']} nodes, {preset_of(idle_runs)} preset: CPU (mean / max)", "≤ 1 %",
                     f"{fmt(mean(cpu), '%', 2)} / {fmt(top(cpu), '%', 2)}", f"etcd member {fmt(etcd_cpu, '%', 2)}",
                     verdict(top(cpu), 1.0, "points")])
        rows.append([f"idle node, {row['mode']}, {row['nodes']} nodes, {preset_of(idle_runs)} preset: RSS (mean / max)", "≤ 60 MB",
                     f"{fmt(mean(rss), 'MB')} / {fmt(top(rss), 'MB')}", f"etcd member {fmt(etcd_rss, 'MB')}",
                     verdict(top(rss), 60, "MB")])
    large = largest_n(modes)
    swim = mode_row(modes, "swim+raft", large) if large else None
    detect = trial_values(swim, "detection_s")
    rows.append([f"SWIM failure detection, {large} nodes (leader kills, {preset_of(modes)} preset): p50", "≤ 3 s",
                 f"{fmt(med(detect), 's', 2)} ({len(detect)} kills)", "", verdict(med(detect), 3.0, "s")])
    rows.append([f"the same: max of {len(detect)}", "≤ 5 s (p99)", fmt(top(detect), "s", 2), "", verdict(top(detect), 5.0, "s")])
    large_idle = largest_n(idle_runs)
    msgs = mean((mode_row(idle_runs, "swim+raft", large_idle) or {}).get("idle", {}).get("msgs_per_min")) if large_idle else None
    legacy = mean((mode_row(idle_runs, "http+bully", large_idle) or {}).get("idle", {}).get("msgs_per_min")) if large_idle else None
    rows.append([f"SWIM messages sent per node per minute, {large_idle} nodes, {preset_of(idle_runs)} preset", "< 100 (ADR-013)",
                 fmt(msgs), f"http+bully {fmt(legacy)}", verdict(msgs, 100)])
    return table(["what", "target", "ours", "beside it, same run", "verdict"], rows)


def pair(first: float | None, second: float | None, unit: str, digits: int = 0) -> str:
    """``a / b`` with one unit, e.g. p50 / max."""
    return f"{fmt(first, unit, digits)} / {fmt(second, unit, digits)}"


def beside_table(results: dict[str, Any]) -> str:
    """Us, raw pysyncobj and etcd on the jobs all three do."""
    api, etcd, modes = results.get("api_bench") or {}, results.get("etcd_bench") or {}, results.get("cluster_modes")
    small = smallest_n(modes)
    swim = mode_row(modes, "swim+raft", small) if small else None
    idle_runs = idle_suite(results)
    idle_small = smallest_n(idle_runs)
    swim_idle = ((mode_row(idle_runs, "swim+raft", idle_small) if idle_small else None) or {}).get("idle", {})
    adapter_fo, raw_fo = raft_failover_ms(results, "adapter"), raft_failover_ms(results, "raw")
    api_fo = scaled(trial_values(swim, "next_write_s"), 1000)
    lat_a = scaled(raft_latency_of(results, "adapter").get("latency_leader"), 1000)
    lat_r = scaled(raft_latency_of(results, "raw").get("latency_leader"), 1000)
    pipe_a = (raft_latency_of(results, "adapter").get("pipeline_leader") or {}).get("ops_per_s")
    pipe_r = (raft_latency_of(results, "raw").get("pipeline_leader") or {}).get("ops_per_s")
    api_write = (api.get("latency") or {}).get("POST /raft/work on the leader") or {}
    etcd_put = etcd.get("latency") or {}
    thr, ethr = api.get("throughput") or {}, etcd.get("throughput") or {}
    etcd_idle = list((etcd.get("idle") or {}).values())
    rows = [
        ["leader SIGKILL -> next committed write (p50 / max)",
         f"adapter {pair(med(adapter_fo), top(adapter_fo), 'ms')}; HTTP API ({small} nodes) {pair(med(api_fo), top(api_fo), 'ms')}",
         pair(med(raw_fo), top(raw_fo), "ms"), pair(med(etcd.get("failover_ms")), top(etcd.get("failover_ms")), "ms")],
        ["commit latency, one write at a time (p50 / p99)",
         f"in-process {pair(p(lat_a, 50), p(lat_a, 99), 'ms', 2)}; HTTP at {fmt(api.get('rate'))}/s "
         f"{pair(api_write.get('p50_ms'), api_write.get('p99_ms'), 'ms', 2)}",
         f"in-process {pair(p(lat_r, 50), p(lat_r, 99), 'ms', 2)}",
         f"HTTP at {fmt(etcd.get('rate'))}/s {pair(etcd_put.get('p50_ms'), etcd_put.get('p99_ms'), 'ms', 2)}"],
        ["small writes, pipelined / flat out",
         f"in-process {fmt(pipe_a, '/s')}; HTTP {fmt(thr.get('rate'), '/s')} ({thr.get('errors', MISSING)} errors)",
         f"in-process {fmt(pipe_r, '/s')}", f"HTTP {fmt(ethr.get('rate'), '/s')} ({ethr.get('errors', MISSING)} errors)"],
        ["lock acquire (p50 / p99)",
         pair(p(api.get("lock_acquire_ms"), 50), p(api.get("lock_acquire_ms"), 99), "ms", 2), MISSING,
         pair(p(etcd.get("lock_acquire_ms"), 50), p(etcd.get("lock_acquire_ms"), 99), "ms", 2)],
        ["lock hand-over after the holder's SIGKILL (p50 / max)",
         f"{pair(med(api.get('lock_handover_ms')), top(api.get('lock_handover_ms')), 'ms')} (lock ttl "
         f"{fmt(api.get('lock_ttl_s'), 's')}; freed when membership marks the holder failed)", MISSING,
         f"{pair(med(etcd.get('lock_handover_ms')), top(etcd.get('lock_handover_ms')), 'ms')} "
         f"(session TTL {fmt(etcd.get('lock_ttl_s'), 's')})"],
        ["idle footprint per node / member (CPU, RSS)",
         f"{fmt(mean(swim_idle.get('cpu_pct')), '%', 2)}, {fmt(mean(swim_idle.get('rss_mb')), 'MB')} "
         f"(swim+raft, {idle_small} nodes, {preset_of(idle_runs)} preset)", MISSING,
         f"{fmt(mean([v['cpu_pct'] for v in etcd_idle]), '%', 2)}, {fmt(mean([v['rss_mb'] for v in etcd_idle]), 'MB')}"],
    ]
    return table(["job", "ringrift (SWIM + Raft)", "raw pysyncobj", f"etcd ({etcd.get('members', '?')} members)"], rows)


# Why a target is missed, for the rows that miss: what the run's own figures and the protocols'
# arithmetic say. Keyed by the start of the target's row.
WHY = {
    "SWIM messages sent per node per minute": (
        "Each member sends, every protocol period (1 s with `lan`), one PING and heartbeats to "
        "`gossip_fanout` (3) members, and answers about one PING with a PONG: 5 datagrams a second, "
        "300 a minute, flat in N (the piggyback is bounded). SWIM's probe alone is a PING and its PONG "
        "a period, 120 a minute at 1 s, so the ADR's 100 needs a period above 1.2 s and no heartbeat "
        "gossip, which is what spreads deaths in swim-p2p; the ADR's own example config (gossip every "
        "500 ms) sends more. The legacy heartbeats' count grows with N."),
    "idle node": (
        "An idle member still runs three timers' worth of threads: pysyncobj's tick thread (woken "
        "twice per heartbeat period, and by every AppendEntries heartbeat), the SWIM engine's loop "
        "(its protocol cycle and a 100 ms self-watch that refutes suspicion) and the API's loop (a "
        "100 ms Raft leadership backstop poll). The event-loop stall watcher's 20 wake-ups a second were "
        "removed (measured about 0.4 points per node). An etcd member idles at the figure beside it in "
        "the same run. Resident memory counts about 23 MB of file-backed pages (the interpreter, "
        "OpenSSL and the other shared libraries) that every Python process on the machine shares: a "
        "swim+raft node's own memory under the soak's load was 44 MB (`Private_Dirty` in "
        "`/proc/<pid>/smaps_rollup`; PSS 48 MB), against an etcd member's statically linked 27 MB."),
    "SWIM failure detection": (
        "With `local` (0.5 s period), a death waits for some member to probe the dead one (a random "
        "pick each cycle: e/(e-1) periods on average, a geometric tail), then its ping and retries "
        "(2 x 0.3 s), the suspicion timeout (1.5 s) and the failed confirmation (0.25 s): about 3 s "
        "expected, over 3 s for an unlucky probe order; one kill per mode in a quick run."),
    "Raft failover, leader blackholed": (
        "A leader that goes silent closes no connection, so the leader-loss hints that make the SIGKILL "
        "figure never fire: a follower notices only when its election timeout (0.2-0.6 s with `local`, "
        "restarted by every heartbeat) runs out, and the write commits about 60 ms after the first one "
        "does (traced). A trial well above that needed another term (the terms column: 1 is a clean "
        "election): two followers whose timers ran out together split the vote, or the first "
        "candidate's log lacked the last entry some voters held and they refused it. (A vote request "
        "lost on a link that had sat idle no longer costs a term: followers keep those links alive.) "
        "pysyncobj has no pre-vote or check-quorum; a shorter timeout would elect falsely under load, "
        "which the targets forbid (0 leader changes)."),
    "API p99 at": (
        "A write through a follower waits on two members' Raft threads (the leader's commit, then the "
        "follower's own apply of the entry), and with `raft.durability: batch` each of them fdatasyncs "
        "the journal before the entry counts. Traced with `engine_stalls` in `GET /raft/status`: a sync "
        "that waits behind the filesystem's own journal commit takes up to about 40 ms "
        "(`longest_journal_sync_ms`) while every request in flight waits with it; with "
        "`durability: none` the same load's p99 is 4-6 ms. The 200-250 ms tail of earlier reports was "
        "CPython's full garbage collections walking the node's whole heap (45-60 ms a pass, the Raft "
        "thread stopped mid-apply), gone since a node freezes its start-up heap (`heap.py`)."),
}


def why_missed(table_text: str) -> str:
    """The WHY entries of the rows of ``targets_table`` that missed, as bullets."""
    seen: list[str] = []
    for line in table_text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) < 5 or not cells[-1].startswith("missed"):
            continue
        key = next((k for k in WHY if cells[0].startswith(k)), None)
        if key is not None and key not in seen:
            seen.append(key)
    return "\n".join(f"- **{key}**: {WHY[key]}" for key in seen)
