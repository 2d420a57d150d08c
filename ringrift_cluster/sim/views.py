"""Every observer's view of every member, and the counters a run reports.

A view entry is one integer, ``incarnation * 4 + state``: swim-p2p's merge rule (a higher
incarnation wins; at equal incarnation DEAD > SUSPECT > ALIVE) is then a plain ``>``, and a
batch of gossip entries is checked against a receiver's view in one numpy comparison.

The matrix is ``[observer, subject]`` (a receiver's checks read one row) and zero-filled lazily
by the OS (calloc): 10,000 members cost at most 400 MB, not the 4 GB of the per-subject float
arrays this replaced. Times (a suspicion's start, a death's arrival, the
published ``failed``) are kept only where they are set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ALIVE, SUSPECT, DEAD = 0, 1, 2
TYPES = ("PING", "PONG", "PING-REQ", "PING-REQ-ACK", "HEARTBEAT", "SYNC-REQ", "SYNC-RESP")


def key(state: int, inc: int) -> int:
    return inc * 4 + state


def state_of(k: int) -> int:
    return k & 3


def inc_of(k: int) -> int:
    return k >> 2


class Views:
    """``entry[observer, subject]`` plus the per-observer times the report needs."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.entry = np.zeros((n, n), dtype=np.int32)
        self.suspect_from: dict[tuple[int, int], float] = {}  # (observer, subject) -> start of the raw SUSPECT
        self.dead_from: dict[int, dict[int, float]] = {}  # subject -> observer -> start of the raw DEAD
        self.failed_at: dict[int, dict[int, float]] = {}  # subject -> observer -> published ``failed``
        self.changed: set[int] = set()  # subjects any observer ever changed (what anti-entropy carries)

    def get(self, obs: int, subj: int) -> int:
        return int(self.entry[obs, subj])

    def state(self, obs: int, subj: int) -> int:
        return int(self.entry[obs, subj]) & 3

    def times(self, table: dict[int, dict[int, float]], subj: int, observers: np.ndarray) -> np.ndarray:
        """One subject's times over ``observers`` (nan where unset)."""
        got = table.get(subj, {})
        return np.array([got.get(int(o), np.nan) for o in observers], dtype=float)


@dataclass
class Counters:
    msgs: dict[str, int] = field(default_factory=lambda: {t: 0 for t in TYPES})
    bytes: dict[str, int] = field(default_factory=lambda: {t: 0 for t in TYPES})
    largest_datagram: int = 0
    suspect_events: int = 0  # published suspect events (any observer, any member)
    failed_events: int = 0
    suspect_events_about: dict[int, int] = field(default_factory=dict)
    failed_events_about: dict[int, int] = field(default_factory=dict)
    announces: int = 0
    refutations: int = 0
    suspicions_raised: int = 0
    dead_told: int = 0  # members held DEAD but heard from, sent their own entry

    def count(self, kind: str, size: int, delivered: bool, datagram: bool = True) -> None:
        """One message sent (and received, when delivered): sent + received, like the bench.
        Full lists go over TCP: not datagrams."""
        k = 2 if delivered else 1
        self.msgs[kind] += k
        self.bytes[kind] += k * size
        if datagram and size > self.largest_datagram:
            self.largest_datagram = size
