"""The report's PNG figures (matplotlib, the ``bench`` extra). Each figure carries, under its
axes, the machine it was measured on and the commands that made it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from report_render import (idle_suite, measured_rows, mode_rows, preset_of, raft_failover_ms, raft_latency_of,  # noqa: E402
                           scaled, trial_values)

MODES = ("http+bully", "swim+raft", "hybrid")


def stamp(machine: dict[str, Any], commands: list[str], via: str) -> str:
    load = "/".join(f"{x:.1f}" for x in machine.get("load", []))
    lines = [f"{machine.get('nproc')} cores, {machine.get('cpu')}, load average {load} at start, {machine.get('at')}, "
             f"run by `{via}`"]
    return "\n".join(lines + [f"$ {c}" for c in commands])


def _save(fig: Any, path: Path, footer: str) -> None:
    fig.text(0.01, 0.005, footer, fontsize=6, family="monospace", va="bottom", ha="left", wrap=True)
    fig.subplots_adjust(bottom=0.14 + 0.025 * footer.count("\n"))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def failover(results: dict[str, Any], path: Path, footer: str) -> bool:
    series = [("adapter\n(in-process)", raft_failover_ms(results, "adapter")),
              ("raw pysyncobj\n(in-process)", raft_failover_ms(results, "raw")),
              ("etcd\n(next put)", (results.get("etcd_bench") or {}).get("failover_ms"))]
    for mode in MODES:
        rows = mode_rows(results.get("cluster_modes"), mode)
        if rows:
            series.append((f"{mode}\nHTTP, {rows[0]['nodes']} nodes", scaled(trial_values(rows[0], "next_write_s"), 1000)))
    silent = (results.get("failover_blackhole") or {}).get("results") or {}
    series.append(("leader\nblackholed\n(netns, HTTP)", (silent.get("blackhole") or {}).get("samples_ms")))
    series = [(label, values) for label, values in series if values]
    if not series:
        return False
    fig, ax = plt.subplots(figsize=(9, 5))
    ax.boxplot([v for _, v in series], showfliers=False)
    ax.set_xticks(range(1, len(series) + 1), [label for label, _ in series])
    for i, (_, values) in enumerate(series, start=1):
        ax.scatter([i] * len(values), values, s=12, alpha=0.7)
    ax.axhline(350, ls="--", lw=0.8, color="green", label="target p50 350 ms")
    ax.axhline(600, ls=":", lw=0.8, color="red", label="target max 600 ms")
    ax.set_ylabel("leader SIGKILL (or blackholed) -> next committed write (ms)")
    ax.set_title("Leader failover")
    ax.legend(fontsize=7)
    ax.tick_params(axis="x", labelsize=7)
    _save(fig, path, footer)
    return True


def latency_cdf(results: dict[str, Any], path: Path, footer: str) -> bool:
    api, etcd = results.get("api_bench") or {}, results.get("etcd_bench") or {}
    curves = [(route, r["percentiles_ms"]) for route, r in (api.get("latency") or {}).items()]
    if etcd.get("latency"):
        curves.append(("etcd PUT /v3/kv/put (leader)", etcd["latency"]["percentiles_ms"]))
    inproc = [(f"{kind} commit on the {role}", scaled(raft_latency_of(results, kind).get(f"latency_{role}"), 1000))
              for kind in ("adapter", "raw") for role in ("leader", "follower")]
    inproc = [(label, values) for label, values in inproc if values]
    if not curves and not inproc:
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    for label, points in curves:
        left.plot([ms for _, ms in points], [q / 100 for q, _ in points], marker=".", label=label)
    left.set_xscale("log")
    left.set_xlabel("latency (ms, wrk)")
    left.set_ylabel("fraction of requests")
    left.set_title(f"HTTP API at {api.get('rate', etcd.get('rate', 0)):g} requests/s")
    left.legend(fontsize=7)
    for label, values in inproc:
        ordered = sorted(values)
        right.plot(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))], label=label)
    right.set_xscale("log")
    right.set_xlabel("commit latency (ms, in the node process)")
    right.set_title("One command at a time: adapter beside raw pysyncobj")
    right.legend(fontsize=7)
    _save(fig, path, footer)
    return True


def throughput(results: dict[str, Any], path: Path, footer: str) -> bool:
    bars = []
    for kind in ("adapter", "raw"):
        for role in ("leader", "follower"):
            ops = (raft_latency_of(results, kind).get(f"pipeline_{role}") or {}).get("ops_per_s")
            if ops:
                bars.append((f"{kind}\npipelined, {role}", ops))
    api, etcd = results.get("api_bench") or {}, results.get("etcd_bench") or {}
    if api.get("throughput"):
        bars.append(("ringrift HTTP\nflat out", api["throughput"]["rate"]))
    if etcd.get("throughput"):
        bars.append(("etcd HTTP\nflat out", etcd["throughput"]["rate"]))
    if not bars:
        return False
    fig, ax = plt.subplots(figsize=(9, 5))
    colors = {"adapter": "C0", "raw": "C1", "ringrift": "C2", "etcd": "C3"}  # one colour per system
    ax.bar([b[0] for b in bars], [b[1] for b in bars], color=[colors[b[0].split()[0]] for b in bars])
    for i, (_, value) in enumerate(bars):
        ax.annotate(f"{value:,.0f}", (i, value), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("acknowledged writes/s")
    ax.set_title("Small writes: pipelined (in-process) and flat out through HTTP (wrk)")
    ax.tick_params(axis="x", labelsize=7)
    _save(fig, path, footer)
    return True


def per_n(results: dict[str, Any], path: Path, footer: str, title: str, ylabel: str,
          values: Callable[[dict[str, Any]], list[float]]) -> bool:
    modes = results.get("cluster_modes")
    drawn = False
    fig, ax = plt.subplots(figsize=(8, 5))
    for mode in MODES:
        points = [(row["nodes"], v) for row in mode_rows(modes, mode) for v in values(row)]
        if not points:
            continue
        drawn = True
        ax.scatter([n for n, _ in points], [v for _, v in points], s=14, alpha=0.6)
        sizes = sorted({n for n, _ in points})
        medians = [sorted(v for m, v in points if m == n)[len([v for m, v in points if m == n]) // 2] for n in sizes]
        ax.plot(sizes, medians, marker="o", label=mode)
    if not drawn:
        plt.close(fig)
        return False
    ax.set_xticks(sorted({row["nodes"] for row in measured_rows(modes)}))
    ax.set_ylim(bottom=0)
    ax.set_xlabel("nodes")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    _save(fig, path, footer)
    return True


def footprint(results: dict[str, Any], path: Path, footer: str) -> bool:
    labels, cpu, rss = [], [], []
    runs = idle_suite(results)
    for row in measured_rows(runs):
        labels.append(f"{row['mode']}\n{row['nodes']} nodes")
        cpu.append(sum(row["idle"]["cpu_pct"]) / len(row["idle"]["cpu_pct"]))
        rss.append(sum(row["idle"]["rss_mb"]) / len(row["idle"]["rss_mb"]))
    idle = (results.get("etcd_bench") or {}).get("idle") or {}
    if idle:
        labels.append(f"etcd\n{len(idle)} members")
        cpu.append(sum(v["cpu_pct"] for v in idle.values()) / len(idle))
        rss.append(sum(v["rss_mb"] for v in idle.values()) / len(idle))
    if not labels:
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    left.bar(labels, cpu, color="C0")
    left.axhline(1.0, ls="--", color="red", lw=0.8, label="target 1 %")
    left.set_ylabel("idle CPU per node (% of one core, mean)")
    right.bar(labels, rss, color="C1")
    right.axhline(60, ls="--", color="red", lw=0.8, label="target 60 MB")
    right.set_ylabel("RSS per node (MB, mean)")
    for ax in (left, right):
        ax.tick_params(axis="x", labelsize=6)
        ax.legend(fontsize=7)
    fig.suptitle(f"Idle footprint per node ({preset_of(runs)} preset)")
    _save(fig, path, footer)
    return True


def draw_all(results: dict[str, Any], out_dir: Path, footers: dict[str, str]) -> dict[str, dict[str, str]]:
    """Every figure the results allow: {file name: {title, stamp}} (the stamp is drawn on it too)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    made = {}
    plan = [
        ("failover.png", "Leader failover distributions", "failover", lambda p, f: failover(results, p, f)),
        ("latency_cdf.png", "Latency CDFs", "latency", lambda p, f: latency_cdf(results, p, f)),
        ("throughput.png", "Throughput", "throughput", lambda p, f: throughput(results, p, f)),
        ("detection_vs_n.png", "Failure detection vs N", "modes", lambda p, f: per_n(
            results, p, f, "Leader SIGKILL -> failed on every survivor", "detection (s)",
            lambda row: trial_values(row, "detection_s"))),
        ("traffic_vs_n.png", "Membership traffic per node vs N", "modes", lambda p, f: per_n(
            results, p, f, "Idle membership messages sent per node", "messages/minute per node",
            lambda row: row["idle"]["msgs_per_min"])),
        ("footprint.png", "Idle footprint", "footprint", lambda p, f: footprint(results, p, f)),
    ]
    for name, title, key, draw in plan:
        if draw(out_dir / name, footers[key]):
            made[name] = {"title": title, "stamp": footers[key]}
    return made
