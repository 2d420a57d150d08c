"""Check a workload's history for linearizability, key by key; write the evidence on failure."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..checks.calls import Call, FinalState
from .history import from_calls, to_porcupine_json
from .models import model_for
from .report import render
from .search import linearize


@dataclass
class Verdict:
    keys: int = 0
    operations: int = 0
    failed: list[str] = field(default_factory=list)  # keys whose history has no linearization
    undecided: list[str] = field(default_factory=list)  # keys the search gave up on (step bound)
    files: list[str] = field(default_factory=list)  # the HTML timeline and the history, when written

    @property
    def ok(self) -> bool:
        return not self.failed and not self.undecided

    @property
    def word(self) -> str:
        """For a table cell: ``ok``, ``FAIL`` or ``undecided``."""
        return "FAIL" if self.failed else "undecided" if self.undecided else "ok"

    def violations(self) -> list[str]:
        out = [f"not linearizable: {key}" for key in self.failed]
        out += [f"linearizability undecided (search bound): {key}" for key in self.undecided]
        if out and self.files:
            out.append(f"linearizability evidence: {', '.join(self.files)}")
        return out


def check_calls(calls: Iterable[Call], final: FinalState | None = None, *, out_dir: Path | None = None,
                max_steps: int = 2_000_000) -> Verdict:
    """Every key's history linearizable under its model; on failure, when ``out_dir`` is given,
    write ``linearizability.html`` (the timeline) and ``history.json`` (every key's operations)
    there."""
    keys = from_calls(calls, final)
    verdict = Verdict(keys=len(keys), operations=sum(len(ops) for ops in keys.values()))
    failures = []
    for key, ops in sorted(keys.items()):
        outcome = linearize(model_for(key), ops, max_steps=max_steps)
        if not outcome.ok:
            (verdict.undecided if outcome.steps > max_steps else verdict.failed).append(key)
            failures.append((key, ops, outcome))
    if failures and out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        page, history = out_dir / "linearizability.html", out_dir / "history.json"
        page.write_text(render(failures, f"not linearizable: {', '.join(k for k, _, _ in failures)}"))
        history.write_text(to_porcupine_json(keys))
        verdict.files = [str(page), str(history)]
    return verdict


__all__ = ["Verdict", "check_calls"]
