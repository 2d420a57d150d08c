"""The one verdict on a state workload's history, for a live run (``StateWorkload.check``) and for
a history file checked again later (``scripts/faults.py --recheck``): our history rules, then the
independent linearizability search, so both ways of checking can never disagree."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from .checks.calls import Call, FinalState
from .checks.state import check_history
from .linearizability import Verdict, check_calls


def judge_history(calls: Iterable[Call], final: FinalState | None, *,
                  out_dir: Path | None = None) -> tuple[list[str], Verdict]:
    """(violations, the linearizability verdict). Without a final state only the search runs,
    over the calls alone: the history rules need the state the run ended with."""
    calls = list(calls)
    found = check_history(calls, final) if final is not None else []
    verdict = check_calls(calls, final, out_dir=out_dir)
    return found + verdict.violations(), verdict
