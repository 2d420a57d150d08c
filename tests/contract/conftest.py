"""Real nodes in this process for the contract suite: a cluster YAML on free loopback ports, the
``local`` preset, every node stopped after the test."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable

import pytest
import yaml

from ringrift_cluster.config import load_config
from ringrift_cluster.node import ClusterNode
from ringrift_cluster.testing.engines import free_ports

NodeFactory = Callable[..., Awaitable[dict[str, ClusterNode]]]


@pytest.fixture
async def make_nodes(tmp_path: Path) -> AsyncIterator[NodeFactory]:
    """``await make_nodes(ids, membership=, consensus=, raft_members=, start=)`` -> nodes by id."""
    built: list[ClusterNode] = []

    async def make(ids: list[str], *, membership: str = "http", consensus: str = "bully",
                   raft_members: list[str] | None = None, start: bool = True) -> dict[str, ClusterNode]:
        ports = free_ports(3 * len(ids))
        hosts = {node_id: {"p2p_host": "127.0.0.1", "p2p_port": ports[3 * i], "swim_port": ports[3 * i + 1],
                           "raft_port": ports[3 * i + 2]} for i, node_id in enumerate(ids)}
        document = {"hosts": hosts, "ringrift_cluster": {"preset": "local", "membership_mode": membership,
                                                         "consensus_mode": consensus}}
        if raft_members is not None:
            document["raft_members"] = raft_members
            document["p2p_voters"] = raft_members
        path = tmp_path / f"cluster-{len(built)}.yaml"
        path.write_text(yaml.safe_dump(document))
        nodes = {}
        for node_id in ids:
            config = load_config(path, env={}, overrides={"node_id": node_id, "data_dir": str(tmp_path / node_id)})
            nodes[node_id] = ClusterNode(config)
            built.append(nodes[node_id])
        if start:
            for node in nodes.values():
                await node.start()
        return nodes

    yield make
    for node in reversed(built):
        await node.stop(graceful=False)
