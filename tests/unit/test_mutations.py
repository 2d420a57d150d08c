"""The mutation switch: read in one place, off by default, and each hook takes its broken path
when (and only when) its mutation is on. Whether the suite catches each broken build is proven by
``tests/integration/test_mutations_caught.py`` and ``tests/faults/test_fault_mutations.py``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ringrift_cluster import mutations
from ringrift_cluster.consensus.bully.rules import VoterLedger
from ringrift_cluster.membership.swim.view import RAW_ALIVE, RAW_SUSPECT, RawObservation, SwimView
from ringrift_cluster.state import StateMachine, commands

PACKAGE = Path(mutations.__file__).resolve().parent


def test_the_variable_is_read_in_one_place_only() -> None:
    readers = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if mutations.ENV in p.read_text())
    assert readers == ["mutations.py"]


def test_every_mutation_has_exactly_one_hook() -> None:
    hooks: dict[str, list[str]] = {name: [] for name in mutations.MUTATIONS}
    for path in PACKAGE.rglob("*.py"):
        for name in re.findall(r'mutations\.active\("([a-z-]+)"\)', path.read_text()):
            hooks.setdefault(name, []).append(str(path.relative_to(PACKAGE)))
    assert all(len(places) == 1 for places in hooks.values()), hooks


def test_off_by_default_and_unknown_names_are_loud(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(mutations.ENV, raising=False)
    assert not any(mutations.active(name) for name in mutations.MUTATIONS)
    with pytest.raises(ValueError):
        mutations.active("no-such-mutation")
    monkeypatch.setenv(mutations.ENV, "typo")
    with pytest.raises(RuntimeError, match="names no mutation"):
        mutations.active("swim-undamped")


def test_bully_double_grant_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    def second_grant() -> bool:
        ledger = VoterLedger()
        assert ledger.request("a", "la", 1, 4.0, now=0.0).granted
        return ledger.request("b", "lb", 2, 4.0, now=1.0).granted

    monkeypatch.delenv(mutations.ENV, raising=False)
    assert not second_grant()
    monkeypatch.setenv(mutations.ENV, "bully-double-grant")
    assert second_grant()


def test_swim_undamped_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    def published_at_once() -> list[str]:
        view = SwimView(suspect_report_after_s=0.75, failed_confirm_s=0.25)
        view.observe(0.0, {"n2": RawObservation(RAW_ALIVE)})
        return [t.kind.value for t in view.observe(0.1, {"n2": RawObservation(RAW_SUSPECT)})]

    monkeypatch.delenv(mutations.ENV, raising=False)
    assert published_at_once() == []
    monkeypatch.setenv(mutations.ENV, "swim-undamped")
    assert published_at_once() == ["suspect"]


def test_lock_release_dropped_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    def held_after_release() -> bool:
        machine = StateMachine()
        got = machine.apply(commands.stamp(commands.acquire_lock("L", "n1", 60), 100.0))
        released = machine.apply(commands.stamp(commands.release_lock("L", "n1", got["fence_token"]), 101.0))
        assert released["ok"] and released["released"]
        return bool(machine.apply(commands.stamp(commands.acquire_lock("L", "n2", 60), 102.0)).get("error"))

    monkeypatch.delenv(mutations.ENV, raising=False)
    assert not held_after_release()
    monkeypatch.setenv(mutations.ENV, "lock-release-dropped")
    assert held_after_release()
