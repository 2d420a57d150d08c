"""Closed forms the simulator is held against: the SWIM paper, memberlist (Lifeguard), Serf's
convergence model and the figures seed 004 promises."""

from __future__ import annotations

import math

from ..membership.swim.gossip import push_pull_interval, retransmit_limit

# Seed 004 (the 10,000-node SWIM architecture), "Performance Characteristics at 10k Scale".
SEED_004 = {"detection_s": (5.0, 10.0), "msgs_per_node_s": 50.0, "cluster_bytes_s": 25e6,
            "memory_per_node_mb": 1.0, "bytes_per_node_s": 25e6 / 10_000}
# memberlist's LAN defaults (config.go DefaultLANConfig).
MEMBERLIST_LAN = {"probe_interval_s": 1.0, "probe_timeout_s": 0.5, "suspicion_mult": 4,
                  "suspicion_max_timeout_mult": 6, "gossip_interval_s": 0.2, "gossip_nodes": 3,
                  "retransmit_mult": 4, "udp_buffer_b": 1400, "push_pull_interval_s": 30.0}


def first_probe_periods(n: int) -> float:
    """SWIM: expected protocol periods until some member probes a failed one, when each of the
    other ``n - 1`` picks one target uniformly: 1 / (1 - (1 - 1/(n-1))^(n-1)) -> e / (e - 1)."""
    q = (1.0 - 1.0 / (n - 1)) ** (n - 1)
    return 1.0 / (1.0 - q)


def swim_limit_first_probe_periods() -> float:
    return math.e / (math.e - 1.0)


def memberlist_suspicion_s(n: int, cfg: dict = MEMBERLIST_LAN) -> tuple[float, float]:
    """memberlist's suspicion timeout (min, max): SuspicionMult * max(1, log10 N) * ProbeInterval,
    and SuspicionMaxTimeoutMult times that; it falls from max to min with confirmations."""
    low = cfg["suspicion_mult"] * max(1.0, math.log10(n)) * cfg["probe_interval_s"]
    return low, low * cfg["suspicion_max_timeout_mult"]


def memberlist_detection_s(n: int, cfg: dict = MEMBERLIST_LAN) -> tuple[float, float]:
    """memberlist LAN: first probe (e/(e-1) intervals, taken from the middle of a period) + probe
    timeout + the suspicion timeout, from ``min`` (enough confirmations) to ``max`` (none)."""
    probe = (first_probe_periods(n) - 0.5) * cfg["probe_interval_s"] + cfg["probe_timeout_s"]
    low, high = memberlist_suspicion_s(n, cfg)
    return probe + low, probe + high


def memberlist_retransmits(n: int, cfg: dict = MEMBERLIST_LAN) -> int:
    return retransmit_limit(cfg["retransmit_mult"], n)


def memberlist_push_pull_s(n: int, cfg: dict = MEMBERLIST_LAN) -> float:
    return push_pull_interval(cfg["push_pull_interval_s"], n)


def memberlist_gossip_bytes_s(cfg: dict = MEMBERLIST_LAN) -> float:
    """Serf's bandwidth bound for memberlist gossip, per node: full packets to ``gossip_nodes``
    every gossip interval, sent and received."""
    return cfg["udp_buffer_b"] * cfg["gossip_nodes"] / cfg["gossip_interval_s"] * 2


def serf_fraction(n: int, rounds: float, fanout: int, loss: float = 0.0, failed: float = 0.0) -> float:
    """Serf's convergence model: the fraction informed after ``rounds`` gossip rounds,
    1 / (1 + (N + 1) e^(-contact N x)) with contact = fanout/N (1 - loss)(1 - failed)."""
    c = fanout * (1.0 - loss) * (1.0 - failed)
    return 1.0 / (1.0 + (n + 1) * math.exp(-c * rounds))


def serf_rounds(n: int, fraction: float, fanout: int, loss: float = 0.0, failed: float = 0.0) -> float:
    """Gossip rounds until ``fraction`` of the members are informed (Serf's model inverted)."""
    c = fanout * (1.0 - loss) * (1.0 - failed)
    return math.log((n + 1) / (1.0 / fraction - 1.0)) / c


def expected_detection_s(n: int, period_s: float, ping_timeout_s: float, retries: int,
                         suspicion_s: float) -> float:
    """Our backend, the originator's view: wait for the first probe (from a random phase), the
    failed pings (timeout, then 0.8 x timeout each), then the suspicion timeout."""
    pings = ping_timeout_s * (1.0 + 0.8 * (retries - 1))
    return (first_probe_periods(n) - 0.5) * period_s + pings + suspicion_s


def suspicion_rate(n: int, loss: float, period_s: float, retries: int) -> float:
    """Suspicions per second across the cluster from loss alone: swim-p2p suspects once every
    ping attempt of a probe failed (a PING or its PONG lost), one probe per member per period."""
    attempt_fails = 1.0 - (1.0 - loss) ** 2
    return n * attempt_fails ** retries / period_s


def piggyback_changes_s(fanout: int, capacity: int, retransmits: int, period_s: float) -> float:
    """Changes per second the bounded piggyback sustains cluster-wide: every member must send each
    change ``retransmits`` times, ``fanout`` copies per heartbeat of ``capacity`` entries."""
    return fanout * capacity / retransmits / period_s
