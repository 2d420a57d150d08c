"""ClusterState.execute's retries: quick at first (a failover's new leader serves milliseconds
after the old one's loss is seen), then no faster than the longest pause; an outcome that may
have been applied stays unknown whatever later attempts say."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ringrift_cluster.config import load_config
from ringrift_cluster.errors import ClusterTimeout, NoLeader
from ringrift_cluster.model import Leadership
from ringrift_cluster.store import facade
from ringrift_cluster.store.facade import ClusterState


class FlakyStore:
    """Raises the given errors in turn, then applies."""

    def __init__(self, errors: list[Exception]) -> None:
        self.errors = list(errors)
        self.attempts = 0

    def leadership(self) -> Leadership:
        return Leadership(leader="n1", term=1, is_self=True)

    async def submit(self, command: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        self.attempts += 1
        if self.errors:
            raise self.errors.pop(0)
        return {"ok": True, "op": command["op"]}


def _state(tmp_path: Path, store: FlakyStore) -> ClusterState:
    config = load_config(None, env={"RINGRIFT_DATA_DIR": str(tmp_path)})
    return ClusterState(config, store, client=None, members=dict)  # type: ignore[arg-type]


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    seen: list[float] = []

    async def sleep(seconds: float) -> None:
        seen.append(seconds)

    monkeypatch.setattr(facade.asyncio, "sleep", sleep)
    return seen


async def test_retries_start_quick_and_slow_down_to_the_longest_pause(tmp_path: Path, pauses: list[float]) -> None:
    store = FlakyStore([NoLeader("electing")] * 6)
    result = await _state(tmp_path, store).execute({"op": "work.add", "args": {"work_id": "w", "work_type": "t"}})
    assert result["ok"] and store.attempts == 7
    assert pauses == [0.005, 0.01, 0.02, 0.05, 0.05, 0.05]


async def test_an_outcome_that_may_have_been_applied_stays_unknown(tmp_path: Path, pauses: list[float]) -> None:
    store = FlakyStore([ClusterTimeout("the leader changed")] + [NoLeader("electing")] * 100_000)
    with pytest.raises(ClusterTimeout, match="outcome unknown"):
        await _state(tmp_path, store).execute({"op": "work.add", "args": {"work_id": "w", "work_type": "t"}},
                                              timeout=0.05)
    assert store.attempts > 1 and pauses[:3] == [0.005, 0.01, 0.02]
