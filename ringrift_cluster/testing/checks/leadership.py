"""Pure checks of who led, over recorded :class:`~.rounds.Round` s.

- :func:`leader_violations`: at most one leader per term (counting both leaders' own claims and
  followers' views of who leads a term), never two nodes claiming leadership with unexpired
  leases in the same round and, in a mode with leases, never a leader that reports none.
- :func:`role_mismatches`: ``role=leader`` answers naming another or no leader (a note, not unsafe).
- :func:`unavailability`: the windows with no leader acknowledged by a majority of the nodes.
"""

from __future__ import annotations

from typing import Iterable

from .rounds import Round, clock


def leader_violations(rounds: Iterable[Round], *, leases: bool = False) -> list[str]:
    """At most one leader per term; never two unexpired leader leases in one round. With
    ``leases`` (the mode grants leader leases: Bully), a leader claim without ``lease_expires`` is
    a violation too: the overlap check could not see that leader."""
    claims: dict[int, set[str]] = {}
    named: dict[int, set[str]] = {}
    overlaps: list[str] = []
    unleased: list[str] = []
    for r in rounds:
        live: dict[str, tuple[int | None, float]] = {}
        for node, view in r.views.items():
            if view is None:
                continue
            if view.claims_leadership and view.leader_term is not None:
                claims.setdefault(view.leader_term, set()).add(node)
            if view.leader_id is not None and view.leader_term is not None:
                named.setdefault(view.leader_term, set()).add(view.leader_id)
            if view.claims_leadership and view.lease_expires is not None and view.lease_expires > r.ended:
                live[node] = (view.leader_term, view.lease_expires)
            if leases and view.claims_leadership and view.lease_expires is None:
                unleased.append(f"{clock(r.ended)}: {node} claims leadership of term {view.leader_term} "
                                "but reports no lease_expires")
        if len(live) > 1:
            overlaps.append(f"{clock(r.ended)}: {len(live)} leaders with unexpired leases: "
                            + ", ".join(f"{n}(term {t}, lease to {clock(e)})" for n, (t, e) in sorted(live.items())))
    out = [f"term {t}: claimed by {sorted(nodes)}" for t, nodes in sorted(claims.items()) if len(nodes) > 1]
    out += [f"term {t}: followers name different leaders {sorted(nodes)}" for t, nodes in sorted(named.items())
            if len(nodes) > 1 and len(claims.get(t, ())) <= 1]
    return out + overlaps[:10] + unleased[:5]


def role_mismatches(rounds: Iterable[Round]) -> list[str]:
    """Answers whose ``role`` is ``leader`` while ``leader_id`` is another node or none."""
    out = []
    for r in rounds:
        for node, view in r.views.items():
            if view is not None and view.role == "leader" and view.leader_id != node:
                out.append(f"{clock(r.ended)} {node}: role=leader, leader_id={view.leader_id}, term={view.leader_term}")
    return out


def unavailability(rounds: Iterable[Round], n: int, *, start: float | None = None,
                   end: float | None = None) -> list[tuple[float, float]]:
    """Windows (start, end) with no leader acknowledged by a majority of the ``n`` nodes: a node
    claiming leadership (lease unexpired, when the mode has leases) that at least ``n//2 + 1``
    nodes, itself included, name as leader."""
    need = n // 2 + 1
    windows: list[tuple[float, float]] = []
    down_since: float | None = None
    last = None
    for r in rounds:
        if start is not None and r.ended < start:
            continue
        if end is not None and r.started > end:
            break
        last = r.ended
        ok = has_majority_leader(r, need)
        if not ok and down_since is None:
            down_since = r.started
        elif ok and down_since is not None:
            windows.append((down_since, r.ended))
            down_since = None
    if down_since is not None and last is not None:
        windows.append((down_since, last))
    return windows


def has_majority_leader(r: Round, need: int) -> str | None:
    for node, view in r.views.items():
        if view is None or not view.claims_leadership:
            continue
        if view.lease_expires is not None and view.lease_expires <= r.ended:
            continue
        if sum(1 for v in r.views.values() if v is not None and v.leader_id == node) >= need:
            return node
    return None


def max_window(windows: Iterable[tuple[float, float]]) -> float:
    return max((b - a for a, b in windows), default=0.0)


__all__ = ["has_majority_leader", "leader_violations", "max_window", "role_mismatches", "unavailability"]
