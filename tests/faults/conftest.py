"""Fault tests: real multi-host clusters, one network namespace per node (NetnsCluster).

They need root, iproute2 and nftables, which CI has; without them every test here fails with the
reason (never a silent skip). On a machine without namespaces run ``pytest --ignore=tests/faults``:
tests/integration covers the process faults (SIGKILL, SIGTERM, restart) on loopback with
LocalCluster, but no network fault.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable, Iterator

import pytest

from ringrift_cluster.testing.netns import NetnsCluster, netns_unavailable_reason

TOKEN = "fault-test-token"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "faults: multi-host fault injection in network namespaces (root)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.faults)


@functools.lru_cache(maxsize=1)
def _unavailable() -> str | None:
    return netns_unavailable_reason()


@pytest.fixture
def make_netns_cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., NetnsCluster]]:
    """Build NetnsClusters under tmp_path; always torn down (processes, namespaces, links), with
    the node logs printed when the test failed."""
    reason = _unavailable()
    if reason:
        pytest.fail(f"fault tests need network namespaces: {reason} "
                    "(run `pytest --ignore=tests/faults` where they are not available)", pytrace=False)
    clusters: list[NetnsCluster] = []

    def make(n: int = 5, cluster_class: type[NetnsCluster] = NetnsCluster, **kwargs: object) -> NetnsCluster:
        kwargs.setdefault("auth_token", TOKEN)
        cluster = cluster_class(n, tmp_path / f"cluster{len(clusters)}", **kwargs)  # type: ignore[arg-type]
        clusters.append(cluster)
        return cluster

    try:
        yield make
    finally:
        report = getattr(request.node, "rep_call", None)
        for cluster in clusters:
            if report is not None and report.failed:
                print(f"\n===== node logs of {cluster.root} =====\n{cluster.logs(60)}")
            cluster.shutdown()
