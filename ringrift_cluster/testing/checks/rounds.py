"""What a fault run recorded of the cluster's ``/status`` answers: the model the pure checks read.

A :class:`Round` is one poll of every running node (``View`` per node, None for no answer); an
:class:`Exemption` says which death verdicts a fault made legitimate, and for how long.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class View:
    """One node's answer in one round, reduced to what the checks need."""

    node: str
    role: str | None
    leader_id: str | None
    leader_term: int | None
    lease_expires: float | None
    peers: Mapping[str, str]  # peer id -> membership state

    @classmethod
    def of(cls, node: str, status: Mapping[str, Any]) -> "View":
        peers = {p: str(v.get("state")) for p, v in (status.get("peers") or {}).items() if isinstance(v, dict)}
        term = status.get("leader_term")
        lease = status.get("lease_expires")
        return cls(node, status.get("role"), status.get("leader_id"), term if isinstance(term, int) else None,
                   float(lease) if isinstance(lease, (int, float)) else None, peers)

    @property
    def claims_leadership(self) -> bool:
        """The node says it leads: role ``leader`` and itself as ``leader_id``. (A ``leader`` role
        next to another or no leader id is a node whose lease ran out or was superseded and whose
        election loop has not stepped down yet: see ``role_mismatches``.)"""
        return self.role == "leader" and self.leader_id == self.node


@dataclass(frozen=True)
class Round:
    started: float  # wall clock, when the requests went out
    ended: float  # wall clock, when the last answer (or timeout) came back
    views: Mapping[str, View | None]  # running nodes only; None = no answer (paused, starting, cut)


@dataclass(frozen=True)
class Exemption:
    """During [start, end], verdicts about ``node`` (``as_peer``: it was killed, paused, cut) and/or
    verdicts by ``node`` (``as_observer``) are not violations. With ``known`` they are still
    reported, as that known issue, instead of being ignored."""

    node: str
    start: float
    end: float = float("inf")
    as_peer: bool = True
    as_observer: bool = False
    known: str | None = None

    def covers(self, observer: str, peer: str, t: float) -> bool:
        if not self.start <= t <= self.end:
            return False
        return (self.as_peer and peer == self.node) or (self.as_observer and observer == self.node)


def clock(t: float) -> str:
    """``HH:MM:SS.mmm`` local time, for messages."""
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int((t % 1) * 1000):03d}"


__all__ = ["Exemption", "Round", "View", "clock"]
