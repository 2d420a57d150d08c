"""Shared fixtures: real local clusters that are always torn down, with logs on failure."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from ringrift_cluster.testing import LocalCluster

TOKEN = "test-cluster-token"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def make_cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., LocalCluster]]:
    """Build LocalClusters under tmp_path; shut them down after the test, dumping node logs when
    the test failed."""
    clusters: list[LocalCluster] = []

    def make(n: int, **kwargs: object) -> LocalCluster:
        kwargs.setdefault("auth_token", TOKEN)
        cluster = LocalCluster(n, tmp_path / f"cluster{len(clusters)}", **kwargs)  # type: ignore[arg-type]
        clusters.append(cluster)
        return cluster

    yield make
    for cluster in clusters:
        cluster.shutdown()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for cluster in clusters:
            print(f"\n===== node logs of {cluster.root} =====\n{cluster.logs(60)}")
