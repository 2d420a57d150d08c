"""Run one test against a deliberately broken build (:mod:`ringrift_cluster.mutations`) and say
whether it caught the bug: the test must fail, and fail for the reason it exists (its output
shows one of the expected signatures), not because the run could not even start."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .. import mutations

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class MutantRun:
    mutation: str
    test: str
    returncode: int
    output: str
    signatures: tuple[str, ...]

    @property
    def caught(self) -> bool:
        """pytest exit code 1 (tests failed: not 2-5, an interrupted or unusable run) with an
        expected signature in the output."""
        return self.returncode == 1 and any(s in self.output for s in self.signatures)

    def report(self) -> str:
        verdict = "caught" if self.caught else "SURVIVED"
        tail = "\n".join(self.output.splitlines()[-40:])
        return (f"mutation {self.mutation} ({mutations.MUTATIONS[self.mutation]}) -> {self.test}: {verdict} "
                f"(exit {self.returncode}; expected one of {list(self.signatures)})\n{tail}")


def run_mutant(mutation: str, test: str, signatures: Sequence[str], *, timeout: float = 600.0) -> MutantRun:
    """Run the pytest node id ``test`` (relative to the project root) with ``mutation`` on."""
    if mutation not in mutations.MUTATIONS:
        raise ValueError(f"unknown mutation {mutation!r}")
    env = {**os.environ, mutations.ENV: mutation}
    argv = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header", "-rN", test]
    try:
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        code, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as e:
        code, output = -1, f"timed out after {timeout:.0f}s\n{e.stdout or ''}"
    return MutantRun(mutation, test, code, output if isinstance(output, str) else output.decode(errors="replace"),
                     tuple(signatures))


__all__ = ["MutantRun", "run_mutant"]
