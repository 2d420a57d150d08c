"""NodeInfo parsing: unknown keys ignored, required keys and types checked with a reason."""

from __future__ import annotations

import pytest

from ringrift_cluster.nodeinfo import NodeInfo, NodeInfoError, host_load

BASE = {"node_id": "gpu-1", "host": "10.0.0.5", "port": 8770}


def test_minimal_and_unknown_keys() -> None:
    info = NodeInfo.parse({**BASE, "some_future_field": {"x": 1}, "role": "leader", "leader_term": 4})
    assert info.node_id == "gpu-1" and info.role == "leader" and info.leader_term == 4
    assert "some_future_field" not in info.to_dict()
    assert NodeInfo.parse(info.to_dict()) == info


@pytest.mark.parametrize(
    "body, words",
    [
        ({"host": "h", "port": 1}, "node_id"),
        ({"node_id": "a"}, "host, port"),
        ({**BASE, "node_id": "10.0.0.1:8770"}, "host:port"),
        ({**BASE, "port": "8770"}, "port"),
        ({**BASE, "port": True}, "port"),
        ({**BASE, "port": 0}, "port"),
        ({**BASE, "has_gpu": "yes"}, "has_gpu"),
        ({**BASE, "leader_term": 1.5}, "leader_term"),
        ({**BASE, "leader_term": True}, "leader_term"),
        ({**BASE, "capabilities": ["a", 1]}, "capabilities"),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_bodies_say_why(body: object, words: str) -> None:
    with pytest.raises(NodeInfoError) as info:
        NodeInfo.parse(body)
    assert words in str(info.value)


def test_host_load_is_plausible() -> None:
    load = host_load()
    assert 0 <= load["memory_percent"] <= 100 and load["memory_gb"] > 0
