"""What the simulator is told: the protocol settings (the config's presets, read from the config
module so they cannot drift) and the model's constants (costs, latency, host contention)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Optional

from ..config import PRESETS, SwimSettings


@dataclass(frozen=True)
class Protocol:
    """The SWIM settings the simulated nodes run (``SwimSettings`` names)."""

    protocol_period_s: float = 1.0
    ping_timeout_s: float = 0.5
    ping_retries: int = 2
    indirect_probes: int = 3
    gossip_fanout: int = 3
    suspicion_timeout_s: float = 4.0
    sync_interval_s: float = 30.0
    suspect_report_after_s: float = 1.5
    failed_confirm_s: float = 0.5
    packet_budget_bytes: int = 1400
    retransmit_mult: int = 4
    tombstone_s: float = 60.0


# A preset proposed for 1,000-10,000 members (see docs/scale.md): a shorter period halves the wait
# for the first probe of a dead member (random probing: its tail sets detection p99) and doubles
# the heartbeats that spread a change; the same ping timeouts and suspicion window as `lan`.
LARGE_OVERRIDES: dict[str, Any] = {"protocol_period_s": 0.5}


def protocol_for(preset: str) -> Protocol:
    """The preset's settings as the config loader resolves them; ``large`` is ``lan`` plus
    ``LARGE_OVERRIDES``."""
    base = {f.name: getattr(SwimSettings(), f.name) for f in fields(Protocol)}
    name = "lan" if preset == "large" else preset
    base.update({k: v for k, v in PRESETS[name].get("swim", {}).items() if k in base})
    if preset == "large":
        base.update(LARGE_OVERRIDES)
    return Protocol(**base)


@dataclass(frozen=True)
class Model:
    """The model's own constants. Costs and contention are fitted on real runs
    (``calibrate``); latency and loss describe the network being projected."""

    latency_s: float = 0.0002  # one way, median
    latency_sigma: float = 0.5  # lognormal shape of the one-way latency
    loss: float = 0.0  # per datagram
    cycle_overhead_s: float = 0.004  # a protocol cycle's own work, beside the ping and the sleep
    cycle_overhead_per_member_s: Optional[float] = None  # the library's per-cycle scans (None: measured, costs.py)
    service_s: float = 0.0003  # handling one received datagram
    merge_per_entry_s: float = 10e-6  # merging one entry of a full list (anti-entropy)
    tick_s: float = 0.1  # the engine's supervision tick (suspicion expiry, refutation, view)
    # From a raw state to the event a subscriber sees (ticks, the view, the crossing to the
    # node's loop): fitted on the real runs' detection times.
    report_delay_s: float = 0.0
    # Host contention (the calibration box: N Python nodes on 2 cores): loop stalls per node as
    # a Poisson process, rate per second and mean length (exponential). 0 on dedicated hosts.
    contention_rate: float = 0.0
    contention_mean_s: float = 0.0
    # Injected faults: a fraction of nodes stall for stall_s, each once per stall_every_s.
    stall_fraction: float = 0.0
    stall_s: float = 1.0
    stall_every_s: float = 30.0
    # ``membership.swim.hooks.tell_the_dead``: a member held DEAD but heard from is sent its own entry.
    tell_the_dead: bool = True

    def with_(self, **changes: Any) -> "Model":
        return replace(self, **changes)
