"""Pure check of false deaths: a healthy node declared ``failed``, from the sampled peer states
of recorded rounds and, because a verdict can flip back within milliseconds, from the nodes' own
JSON logs. Verdicts a fault made legitimate are covered by time-bounded
:class:`~.rounds.Exemption` s."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Iterable, Mapping

from .rounds import Exemption, Round, clock


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
                        (r.started, f"{observer} saw {peer} failed at {clock(r.ended)} (status)"))
    for observer, path in (logs or {}).items():
        for t, event, peer in log_events(path, death_events, since):
            if peer:
                verdicts.setdefault((observer, peer), []).append(
                    (t, f"{observer} declared {peer} failed at {clock(t)} (log: {event})"))
    for key in verdicts:
        verdicts[key].sort()
    return verdicts


def log_events(path: Path, names: tuple[str, ...], since: float) -> Iterable[tuple[float, str, str]]:
    """(time, event, node_id) of the JSON log lines of ``path`` whose event is one of ``names``."""
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


__all__ = ["false_deaths", "log_events"]
