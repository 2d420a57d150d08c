"""What a cluster did during a fault run, and the checks over it.

:class:`Recorder` polls every running node's ``GET /status`` in the background (all nodes of a
round in parallel) and keeps a compact history. The checks are pure functions over it, so they
work for any membership / consensus mode that fills the common ``/status`` fields: ``role``,
``leader_id``, ``leader_term``, ``lease_expires`` (wall clock, or None when the mode has no
leases) and ``peers{id: {state, is_alive}}``.

- :func:`leader_violations`: at most one leader per term (counting both leaders' own claims and
  followers' views of who leads a term), and never two nodes claiming leadership with unexpired
  leases in the same round.
- :func:`false_deaths`: a healthy node declared ``failed`` by anyone, from the sampled peer
  states and, because a verdict can flip back within milliseconds, from the nodes' own JSON logs.
- :func:`unavailability`: the windows with no leader acknowledged by a majority of the nodes.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Mapping, Protocol


class Observable(Protocol):
    nodes: Mapping[str, Any]

    def status(self, node_id: str, timeout: float = 1.0) -> dict[str, Any] | None: ...


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
        election loop has not stepped down yet: see :func:`role_mismatches`.)"""
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


class Recorder:
    """Poll every running node's status in the background; keep the rounds.

    A round asks every running node at once and waits at most ``round_s``: a node that does not
    answer by then (paused, overloaded, starting) is ``None`` in that round and is not asked
    again until its pending request finishes; the round does not wait for nodes that were silent
in the previous one. So one stuck node never slows the sampling of the others.
    """

    def __init__(self, cluster: Observable, *, interval: float = 0.15, round_s: float = 0.5,
                 request_timeout: float = 1.0) -> None:
        self.cluster = cluster
        self.interval = interval
        self.round_s = round_s
        self.request_timeout = request_timeout
        self.rounds: list[Round] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="history-recorder", daemon=True)
        self._pool = ThreadPoolExecutor(max_workers=max(2, 2 * len(cluster.nodes)), thread_name_prefix="history-poll")
        self._pending: dict[str, Future[Any]] = {}
        self._silent: set[str] = set()
        self._lock = threading.Lock()

    def __enter__(self) -> "Recorder":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def snapshot(self) -> list[Round]:
        with self._lock:
            return list(self.rounds)

    def latest(self) -> Round | None:
        with self._lock:
            return self.rounds[-1] if self.rounds else None

    def _run(self) -> None:
        while not self._stop.is_set():
            ids = [n for n, node in self.cluster.nodes.items() if getattr(node, "running", True)]
            started = time.time()
            asked = {}
            for n in ids:
                if n in self._pending and not self._pending[n].done():
                    continue  # still stuck on an earlier round's request
                asked[n] = self._pending[n] = self._pool.submit(self.cluster.status, n, self.request_timeout)
            # Wait for the nodes that answered last time; the silent ones only if they are quick.
            wait([f for n, f in asked.items() if n not in self._silent], timeout=self.round_s)
            ended = time.time()
            views: dict[str, View | None] = {}
            for n in ids:
                future = asked.get(n)
                answer = future.result() if future is not None and future.done() and not future.exception() else None
                views[n] = View.of(n, answer) if isinstance(answer, dict) else None
            self._silent = {n for n, v in views.items() if v is None}
            with self._lock:
                self.rounds.append(Round(started, ended, views))
            self._stop.wait(self.interval)


# --------------------------------------------------------------------------------------------
# Checks


def leader_violations(rounds: Iterable[Round]) -> list[str]:
    """At most one leader per term; never two unexpired leader leases in one round."""
    claims: dict[int, set[str]] = {}
    named: dict[int, set[str]] = {}
    overlaps: list[str] = []
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
        if len(live) > 1:
            overlaps.append(f"{_clock(r.ended)}: {len(live)} leaders with unexpired leases: "
                            + ", ".join(f"{n}(term {t}, lease to {_clock(e)})" for n, (t, e) in sorted(live.items())))
    out = [f"term {t}: claimed by {sorted(nodes)}" for t, nodes in sorted(claims.items()) if len(nodes) > 1]
    out += [f"term {t}: followers name different leaders {sorted(nodes)}" for t, nodes in sorted(named.items())
            if len(nodes) > 1 and len(claims.get(t, ())) <= 1]
    return out + overlaps[:10]


def false_deaths(rounds: Iterable[Round], exemptions: Iterable[Exemption] = (), *,
                 logs: Mapping[str, Path] | None = None, since: float = 0.0,
                 death_events: tuple[str, ...] = ("member_failed",)) -> tuple[list[str], list[str]]:
    """Nodes declared failed while healthy: (violations, known issues). A verdict covered by an
    exemption is no violation; by one with ``known`` set it is listed under that issue."""
    exemptions = list(exemptions)
    # Every verdict counts: an exempt first verdict must not hide a later non-exempt one.
    violations: dict[tuple[str, str], str] = {}
    known: dict[tuple[str, str], str] = {}
    for (observer, peer), verdicts in _all_verdicts(rounds, logs, since, death_events).items():
        for t, text in verdicts:
            cover = [e for e in exemptions if e.covers(observer, peer, t)]
            if not cover:
                violations.setdefault((observer, peer), text)
            elif any(e.known for e in cover):
                issue = next(e.known for e in cover if e.known)
                known.setdefault((observer, peer), f"{issue}: {text}")
    return [violations[k] for k in sorted(violations)], [known[k] for k in sorted(known)]


def _all_verdicts(rounds: Iterable[Round], logs: Mapping[str, Path] | None, since: float,
                  death_events: tuple[str, ...]) -> dict[tuple[str, str], list[tuple[float, str]]]:
    verdicts: dict[tuple[str, str], list[tuple[float, str]]] = {}
    for r in rounds:
        for observer, view in r.views.items():
            for peer, state in (view.peers if view else {}).items():
                if state == "failed":
                    verdicts.setdefault((observer, peer), []).append(
                        (r.started, f"{observer} saw {peer} failed at {_clock(r.ended)} (status)"))
    for observer, path in (logs or {}).items():
        for t, event, peer in _log_events(path, death_events, since):
            if peer:
                verdicts.setdefault((observer, peer), []).append(
                    (t, f"{observer} declared {peer} failed at {_clock(t)} (log: {event})"))
    for key in verdicts:
        verdicts[key].sort()
    return verdicts


def role_mismatches(rounds: Iterable[Round]) -> list[str]:
    """Answers whose ``role`` is ``leader`` while ``leader_id`` is another node or none."""
    out = []
    for r in rounds:
        for node, view in r.views.items():
            if view is not None and view.role == "leader" and view.leader_id != node:
                out.append(f"{_clock(r.ended)} {node}: role=leader, leader_id={view.leader_id}, term={view.leader_term}")
    return out


def unavailability(rounds: Iterable[Round], n: int, *, start: float | None = None, end: float | None = None) -> list[tuple[float, float]]:
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


def _log_events(path: Path, names: tuple[str, ...], since: float) -> Iterable[tuple[float, str, str]]:
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return
    for line in lines:
        if not line.startswith("{") or not any(name in line for name in names):
            continue
        try:
            record = json.loads(line)
            t = datetime.fromisoformat(str(record["timestamp"]).replace("Z", "+00:00")).timestamp()
        except (ValueError, KeyError, TypeError):
            continue
        if record.get("event") in names and t >= since:
            yield t, record["event"], str(record.get("node_id") or "")


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int((t % 1) * 1000):03d}"


__all__ = ["Exemption", "Recorder", "Round", "View", "false_deaths", "has_majority_leader", "leader_violations",
           "max_window", "role_mismatches", "unavailability"]
