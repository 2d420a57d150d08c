"""One simulated run, shaped like ``scripts/bench/swim_scale.py``: nodes start, an idle window
gives the traffic per node, then silent kills one after another give detection (until the *last*
survivor publishes ``failed``), and false ``suspect``/``failed`` events about members never killed
are counted throughout. Optional faults: packet loss, stalls of a fraction of the nodes."""

from __future__ import annotations

import math
import sys
import time
import tracemalloc
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

import numpy as np

from ..membership.swim.bridge import library_member_list
from .engine import TYPES, Sim
from .params import Model, Protocol, protocol_for
from .sizes import measure


@dataclass(frozen=True)
class Scenario:
    n: int
    preset: str = "lan"
    loss: float = 0.0
    stall_fraction: float = 0.0  # nodes that stall for stall_s once every stall_every_s
    kills: int = 5
    seed: int = 1
    loopback: bool = False  # the calibration box: loopback addresses and latency
    warmup_s: float = 7.0  # the bench: convergence + settle before its idle window
    idle_s: float = 20.0
    kill_every_s: float = 12.0
    tail_s: float = 25.0  # after the last kill
    model: Model = field(default_factory=Model)
    protocol: Optional[Protocol] = None

    def proto(self) -> Protocol:
        return self.protocol or protocol_for(self.preset)


def pct(values: list[float], p: float) -> Optional[float]:
    """The bench's percentile (nearest rank)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def _progress(label: str, t_end: float, started: float) -> Any:
    def report(t: float) -> None:
        print(f"# {label}: simulated {t:6.1f} / {t_end:.0f} s, {time.monotonic() - started:5.0f} s wall",
              file=sys.stderr, flush=True)
    return report


def run(sc: Scenario, progress: bool = False) -> dict[str, Any]:
    proto = sc.proto()
    model = sc.model.with_(loss=sc.loss, stall_fraction=sc.stall_fraction)
    sizes = measure(sc.n, sc.loopback, proto.gossip_fanout, proto.packet_budget_bytes)
    sim = Sim(sc.n, proto, model, sizes, seed=sc.seed)
    rng = np.random.default_rng(sc.seed)
    started = time.monotonic()
    t_kills0 = sc.warmup_s + sc.idle_s
    t_end = t_kills0 + sc.kills * sc.kill_every_s + sc.tail_s
    label = f"N={sc.n} {sc.preset} loss={sc.loss:g} stall={sc.stall_fraction:g}"
    report = _progress(label, t_end, started) if progress else None
    sim.start()
    if model.stall_fraction > 0:
        stalling = rng.choice(sc.n, size=max(1, round(sc.n * model.stall_fraction)), replace=False)
        for i in stalling:
            t = rng.uniform(0, model.stall_every_s)
            while t < t_end:
                sim.stall(int(i), t, model.stall_s)
                t += model.stall_every_s
    victims = [int(v) for v in rng.choice(np.arange(1, sc.n), size=min(sc.kills, sc.n - 2), replace=False)]
    kill_times = {v: t_kills0 + k * sc.kill_every_s for k, v in enumerate(victims)}
    for v, t in kill_times.items():
        sim.kill(v, t)
    # Idle window: counters before and after.
    sim.run_until(sc.warmup_s, report)
    before = (dict(sim.c.msgs), dict(sim.c.bytes))
    sim.run_until(t_kills0, report)
    after = (dict(sim.c.msgs), dict(sim.c.bytes))
    sim.run_until(t_end, report)
    per = sc.n * sc.idle_s
    by_type = {k: {"msgs_per_node_s": (after[0][k] - before[0][k]) / per,
                   "bytes_per_node_s": (after[1][k] - before[1][k]) / per} for k in TYPES}
    detections, undetected, t99s, curves = [], 0, [], []
    killed = set(victims)
    for v, t_kill in kill_times.items():
        live = np.array([i for i in range(sc.n) if i not in killed])
        if v not in sim.views.changed:
            undetected += 1
            continue
        failed = sim.views.times(sim.views.failed_at, v, live)
        if np.isnan(failed).any():
            undetected += 1
        else:
            detections.append(float(failed.max() - t_kill))
        dead_from = sim.views.times(sim.views.dead_from, v, live)
        dead_from = np.sort(dead_from[~np.isnan(dead_from)])
        if len(dead_from):
            first = dead_from[0]
            k99 = math.ceil(0.99 * len(live)) - 1
            if len(dead_from) > k99:
                t99s.append(float(dead_from[k99] - first))
            curves.append([round(float(x - first), 3) for x in dead_from[:: max(1, len(dead_from) // 200)]])
    false_suspect = sum(c for s, c in sim.c.suspect_events_about.items() if s not in killed)
    false_failed = sum(c for s, c in sim.c.failed_events_about.items() if s not in killed)
    false_deaths = sum(1 for s, c in sim.c.failed_events_about.items() if s not in killed and c)
    msgs = sum(v["msgs_per_node_s"] for v in by_type.values())
    byts = sum(v["bytes_per_node_s"] for v in by_type.values())
    return {
        "n": sc.n, "preset": sc.preset, "loss": sc.loss, "stall": sc.stall_fraction, "seed": sc.seed,
        "protocol": asdict(proto),
        "detection_p50_s": _r(pct(detections, 50)), "detection_p99_s": _r(pct(detections, 99)),
        "detections_s": [round(d, 2) for d in detections], "undetected": undetected,
        "dissemination_t99_s": _r(float(np.median(t99s))) if t99s else None, "dissemination_curves": curves[:3],
        "msgs_per_node_s": round(msgs, 2), "bytes_per_node_s": round(byts),
        "by_type": {k: {kk: round(vv, 3) for kk, vv in v.items()} for k, v in by_type.items() if v["msgs_per_node_s"]},
        "max_datagram_b": sim.c.largest_datagram, "full_list_b": sizes.full_list, "piggyback_capacity": sizes.capacity,
        "false_suspect_events": false_suspect, "false_failed_events": false_failed, "false_deaths": false_deaths,
        "suspicions_raised": sim.c.suspicions_raised, "refutations": sim.c.refutations, "announces": sim.c.announces,
        "dead_told": sim.c.dead_told,
        "memory_per_node_mb": round(member_list_mb(sc.n), 2),
        "wall_s": round(time.monotonic() - started, 1), "simulated_s": t_end,
    }


def _r(x: Optional[float]) -> Optional[float]:
    return None if x is None else round(x, 2)


_MEMORY: dict[int, float] = {}


def member_list_mb(n: int) -> float:
    """Memory of swim-p2p's member list holding ``n`` members, measured (tracemalloc) on the
    library's own ``MemberList`` with our metadata; above 10,000 scaled per member."""
    k = min(n, 10_000)
    if k not in _MEMORY:
        MemberList, _ = library_member_list()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        ml = MemberList(("10.0.0.1", 7947))
        for i in range(k):
            addr = (f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", 7947)
            ml.add_member(addr)
            m = ml.get_member(addr)
            m.metadata = {"id": f"node-{i:05d}"}
            m.incarnation = 1764000000000 + i
        used = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        del ml
        _MEMORY[k] = used / 2**20
    return _MEMORY[k] * n / k
