"""The status API in-process (aiohttp test server): auth, headers, and 4xx with reasons."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ringrift_cluster.api.app import create_app
from ringrift_cluster.config import load_config
from ringrift_cluster.node import ClusterNode

TOKEN = "s3cret-token"


@pytest.fixture
async def client(tmp_path: Path):
    config = load_config(None, env={"RINGRIFT_CLUSTER_AUTH_TOKEN": TOKEN, "RINGRIFT_DATA_DIR": str(tmp_path)})
    node = ClusterNode(config)
    async with TestClient(TestServer(create_app(node.parts))) as client:
        client.node = node  # type: ignore[attr-defined]
        yield client


AUTH = {"Authorization": f"Bearer {TOKEN}"}
HEARTBEAT = {"node_id": "peer-1", "host": "127.0.0.1", "port": 9999}


async def test_health_and_node_header(client) -> None:
    response = await client.get("/health")
    assert response.status == 200 and response.headers["X-Node-ID"] == "local-node"
    body = await response.json()
    assert body["alive"] is True and body["node_id"] == "local-node" and body["pid"] > 0
    assert set(body) == {"alive", "node_id", "pid", "role", "uptime_seconds"}


async def test_ready_is_503_until_started(client) -> None:
    response = await client.get("/ready")
    assert response.status == 503 and (await response.json())["ready"] is False


async def test_status_has_the_swim_raft_block(client) -> None:
    body = await (await client.get("/status")).json()
    block = body["swim_raft"]
    assert block["membership_mode"] == "http" and block["consensus_mode"] == "bully"
    assert set(block["swim"]) == {"enabled", "available", "started", "alive_count", "suspected_count", "failed_count"}
    assert set(block["raft"]) >= {"enabled", "available", "initialized", "is_leader", "leader_address", "work_queue"}
    assert body["quorum"] == {"required": 1, "alive_voters": 1, "total_voters": 1, "health": "minimum"}


async def test_metrics_exposition(client) -> None:
    response = await client.get("/metrics")
    text = await response.text()
    assert response.status == 200 and response.headers["X-Node-ID"] == "local-node"
    for name in ("ringrift_cluster_peers_alive", "ringrift_is_leader", "ringrift_quorum_health_level",
                 "ringrift_quorum_alive_voters", "ringrift_quorum_total_voters", "ringrift_p2p_leader_changes_total",
                 "ringrift_leader_election_latency_seconds", "ringrift_p2p_quorum_status", "ringrift_p2p_peer_count"):
        assert name in text, name


@pytest.mark.parametrize("path", ["/heartbeat", "/election", "/election/lease", "/election/lease_revoke", "/coordinator"])
async def test_mutating_routes_need_the_token(client, path: str) -> None:
    response = await client.post(path, json={})
    assert response.status == 401 and await response.json() == {"error": "unauthorized"}
    assert response.headers["X-Node-ID"] == "local-node"
    wrong = await client.post(path, json={}, headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401


async def test_both_token_headers_work(client) -> None:
    for headers in (AUTH, {"X-RingRift-Auth": TOKEN}):
        response = await client.post("/heartbeat", json=HEARTBEAT, headers=headers)
        assert response.status == 200
        assert (await response.json())["node_id"] == "local-node"
    assert "peer-1" in client.node.membership.members()


@pytest.mark.parametrize(
    "raw, status, words",
    [
        (b"{not json", 400, "malformed JSON"),
        (b"", 400, "empty body"),
        (b"[1,2]", 400, "JSON object"),
        (b'{"host": "h", "port": 1}', 400, "node_id"),
        (b'{"node_id": "a:1", "host": "h", "port": 1}', 400, "host:port"),
        (b'{"node_id": "a", "host": "h", "port": "x"}', 400, "port"),
    ],
)
async def test_bad_heartbeats_get_a_reason(client, raw: bytes, status: int, words: str) -> None:
    response = await client.post("/heartbeat", data=raw, headers={**AUTH, "Content-Type": "application/json"})
    assert response.status == status
    body = await response.json()
    assert words in body["error"], body
    assert dict(client.node.membership.members()) == {}  # nothing recorded from a rejected call


async def test_oversized_body_is_413(client) -> None:
    big = b'{"x": "' + b"a" * (client.node.config.api.max_body_bytes + 10) + b'"}'
    response = await client.post("/heartbeat", data=big, headers={**AUTH, "Content-Type": "application/json"})
    assert response.status == 413
    assert "too large" in (await response.json())["error"]


@pytest.mark.parametrize(
    "path, body, words",
    [
        ("/election", {}, "candidate_id: required"),
        ("/election", {"candidate_id": 5}, "candidate_id: expected a string"),
        ("/election/lease", {"leader_id": "a", "lease_id": "x", "lease_duration": -1, "lease_epoch": 1}, "lease_duration"),
        ("/election/lease", {"leader_id": "a", "lease_id": "x", "lease_duration": 5, "lease_epoch": 0}, "lease_epoch"),
        ("/election/lease", {"leader_id": "a", "lease_id": "x", "lease_duration": 5, "lease_epoch": True}, "lease_epoch"),
        ("/coordinator", {"leader_id": "a", "lease_id": "x", "lease_epoch": 1}, "fence_token"),
        ("/coordinator", {"leader_id": "a", "lease_id": "x", "lease_epoch": 1, "fence_token": "t"}, "lease_expires"),
    ],
)
async def test_bad_election_calls_get_a_reason(client, path: str, body: dict, words: str) -> None:
    response = await client.post(path, json=body, headers=AUTH)
    assert response.status == 400
    assert words in (await response.json())["error"]


async def test_lease_from_a_non_coordinator_is_refused(client) -> None:
    body = {"leader_id": "stranger", "lease_id": "s_1_x", "lease_duration": 5, "lease_epoch": 1}
    response = await client.post("/election/lease", json=body, headers=AUTH)
    assert response.status == 409 and (await response.json())["error"] == "not_allowed_to_lead"


async def test_unknown_route_is_json_404(client) -> None:
    response = await client.get("/nope")
    assert response.status == 404 and "error" in await response.json()
