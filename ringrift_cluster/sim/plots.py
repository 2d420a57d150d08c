"""The report's plots (matplotlib, written as PNG): detection vs N, bytes/s per node vs N, real vs
simulated at the calibration points, dissemination curves, cold start; seed 004 and memberlist on the
same axes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from . import formulas
from .params import protocol_for


def _rows(projections: list[dict[str, Any]], preset: str, loss: float = 0.0, stall: float = 0.0) -> list[dict]:
    return sorted((r for r in projections if r["preset"] == preset and r["loss"] == loss and r["stall"] == stall),
                  key=lambda r: r["n"])


def draw(out: Path, cal: dict[str, Any], hold: Optional[dict[str, Any]], projections: list[dict[str, Any]],
         cold: Optional[list[dict[str, Any]]] = None) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    real = [p["real"] for p in cal["points"]] + ([hold["real"]] if hold else [])
    sim = [p["sim"] for p in cal["points"]] + ([hold["sim"]] if hold else [])
    ns = sorted({r["n"] for r in projections} | {r["n"] for r in real})

    # Detection vs N.
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for preset, style in (("lan", "-"), ("large", "--")):
        rows = _rows(projections, preset)
        if rows:
            ax.plot([r["n"] for r in rows], [r["detection_p99_s"] for r in rows], "o" + style, label=f"simulated p99 ({preset})")
            ax.plot([r["n"] for r in rows], [r["detection_p50_s"] for r in rows], "." + style, label=f"simulated p50 ({preset})")
    ax.plot([r["n"] for r in real], [r["detection_p99_s"] for r in real], "k^", label="real p99 (loopback)")
    ax.plot([r["n"] for r in sim], [r["detection_p99_s"] for r in sim], "kx", label="simulated p99 at the real N")
    ml = [formulas.memberlist_detection_s(n) for n in ns]
    ax.fill_between(ns, [a for a, _ in ml], [b for _, b in ml], color="tab:gray", alpha=0.2,
                    label="memberlist LAN (suspicion min..max)")
    ax.axhspan(*formulas.SEED_004["detection_s"], color="tab:green", alpha=0.12, label="seed 004: 5-10 s")
    ax.axhline(10, color="tab:red", lw=0.8, label="target p99 10 s")
    ax.set_xscale("log"), ax.set_xlabel("members"), ax.set_ylabel("detection: kill to last survivor (s)")
    ax.set_ylim(0, 45), ax.legend(fontsize=7, loc="upper right", ncol=2), ax.set_title("Failure detection vs N")
    fig.tight_layout(), fig.savefig(out / "detection_vs_n.png", dpi=110), plt.close(fig)

    # Bytes/s per node vs N.
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for preset, style in (("lan", "-"), ("large", "--")):
        rows = _rows(projections, preset)
        if rows:
            ax.plot([r["n"] for r in rows], [r["bytes_per_node_s"] for r in rows], "o" + style, label=f"simulated ({preset}, 0 % loss)")
        rows = _rows(projections, preset, loss=0.01)
        if rows:
            ax.plot([r["n"] for r in rows], [r["bytes_per_node_s"] for r in rows], "s" + style, label=f"simulated ({preset}, 1 % loss)")
    ax.plot([r["n"] for r in real], [r["bytes_per_node_s"] for r in real], "k^", label="real (loopback)")
    ax.axhline(formulas.SEED_004["bytes_per_node_s"], color="tab:green", label="seed 004: 25 MB/s / 10k = 2.5 KB/s")
    ax.axhline(formulas.memberlist_gossip_bytes_s(), color="tab:gray", ls=":", label="memberlist gossip bound (Serf)")
    ax.set_xscale("log"), ax.set_yscale("log"), ax.set_xlabel("members"), ax.set_ylabel("bytes/s per node (sent + received)")
    ax.legend(fontsize=7), ax.set_title("Per-node traffic vs N")
    fig.tight_layout(), fig.savefig(out / "bytes_vs_n.png", dpi=110), plt.close(fig)

    # Real vs simulated at the calibration points (and the held-out one).
    metrics = ("msgs_per_node_s", "bytes_per_node_s", "detection_p50_s", "detection_p99_s")
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.4))
    for ax, m in zip(axes, metrics):
        xs = list(range(len(real)))
        ax.bar([x - 0.2 for x in xs], [r[m] for r in real], 0.4, label="real")
        ax.bar([x + 0.2 for x in xs], [s[m] for s in sim], 0.4, label="simulated")
        ax.set_xticks(xs, [f"{r['n']}" + (" (held out)" if hold and r is real[-1] else "") for r in real], fontsize=7)
        ax.set_title(m, fontsize=9)
    axes[0].legend(fontsize=7)
    fig.tight_layout(), fig.savefig(out / "real_vs_sim.png", dpi=110), plt.close(fig)

    # Dissemination: fraction of survivors holding a death vs time since the first one held it.
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in _rows(projections, "lan") + _rows(projections, "large"):
        curve = (r.get("dissemination_curves") or [[]])[0]
        if curve:
            frac = [(k + 1) / len(curve) for k in range(len(curve))]
            ax.plot(curve, frac, label=f"N={r['n']} {r['preset']}")
    for n in ns[-1:]:
        for preset in ("lan", "large"):
            p = protocol_for(preset)
            ts = [x * 0.1 for x in range(0, 121)]
            ax.plot(ts, [formulas.serf_fraction(n, t / p.protocol_period_s, p.gossip_fanout) for t in ts], ":",
                    label=f"Serf model N={n}, fan-out {p.gossip_fanout}, a round every {p.protocol_period_s:g} s")
    ax.set_xlabel("seconds since the first member held the death"), ax.set_ylabel("fraction of survivors")
    ax.set_xlim(0, 6), ax.legend(fontsize=7), ax.set_title("Dissemination of one death")
    fig.tight_layout(), fig.savefig(out / "dissemination.png", dpi=110), plt.close(fig)

    # Cold start: share of (observer, member) pairs confirmed vs time since the last start.
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in sorted(cold or [], key=lambda r: (r["preset"], r["n"])):
        if r["start_window_s"] < 5 or not r.get("curve"):
            continue
        ts, fs = zip(*r["curve"])
        ax.plot(ts, fs, "-" if r["preset"] == "lan" else "--", label=f"N={r['n']:,} {r['preset']}")
    ax.axvline(0, color="k", lw=0.6)
    ax.set_xscale("symlog", linthresh=10), ax.set_xlabel("seconds since the last member started")
    ax.set_ylabel("share of views holding each member"), ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7), ax.set_title("Cold start: every member joining from the seed list")
    fig.tight_layout(), fig.savefig(out / "cold_start.png", dpi=110), plt.close(fig)
