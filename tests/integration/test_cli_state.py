"""The state CLI against a real 3-node SWIM + Raft cluster: the README's walk-through, then every
kind of failure with its one-line error and exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from ringrift_cluster.cli_state import (EXIT_FAILURE, EXIT_OK, EXIT_REFUSED, EXIT_UNAUTHORIZED, EXIT_UNAVAILABLE,
                                        EXIT_USAGE)
from ringrift_cluster.testing import LocalCluster, free_base_port, wait_until

pytestmark = pytest.mark.integration
TOKEN = "cli-test-token"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    c = LocalCluster(3, tmp_path / "cluster", auth_token=TOKEN)
    c.start_all()
    try:
        c.wait_for_leader(60)
        yield c
    finally:
        c.shutdown()


def run(cluster: LocalCluster, *args: str, token: str | None = TOKEN, node: str = "node-1",
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RINGRIFT_CLUSTER_AUTH_TOKEN", "RINGRIFT_URL"))}
    base["RINGRIFT_URL"] = cluster.nodes[node].url
    if token is not None:
        base["RINGRIFT_CLUSTER_AUTH_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "ringrift_cluster", *args], capture_output=True, text=True,
                          env={**base, **(env or {})}, timeout=60)


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == EXIT_OK and not done.stderr, done
    return done.stdout


def fails(done: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    assert done.returncode == code, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and all(w in lines[0] for w in words), done
    return lines[0]


def test_walkthrough_work_locks_models_jobs_members_leader(cluster: LocalCluster, tmp_path: Path) -> None:
    assert "added W1 (pending)" in ok(run(cluster, "work", "add", "W1", "--type", "selfplay", "--priority", "50"))
    ok(run(cluster, "work", "add", "W2", "--type", "selfplay", "--priority", "10", "--config", '{"games": 100}'))
    claimed = ok(run(cluster, "work", "claim", "--node", "gpu-1", "-q"))
    work_id, claim_token = claimed.split()
    assert work_id == "W1"  # the higher priority first
    ok(run(cluster, "work", "start", "W1", "--claim-token", claim_token))
    listing = ok(run(cluster, "work", "list", "--node", "gpu-1"))
    assert "running 1" in listing and "W1" in listing and "W2" not in listing.split("\n\n", 1)[1]
    ok(run(cluster, "work", "complete", "W1", "--claim-token", claim_token, "--result", '{"games": 10}'))
    shown = json.loads(ok(run(cluster, "work", "show", "W1", "--json", "--consistent")))
    assert shown["item"]["status"] == "completed" and shown["item"]["result"] == {"games": 10}
    # A stale claim token is refused with the node's reason.
    fails(run(cluster, "work", "complete", "W1", "--claim-token", claim_token), EXIT_REFUSED, "409", "claim token")

    fence = ok(run(cluster, "lock", "acquire", "train-lock", "--holder", "gpu-1", "--ttl", "300", "-q")).strip()
    assert fence.isdigit()
    fails(run(cluster, "lock", "acquire", "train-lock", "--holder", "gpu-2"), EXIT_REFUSED, "held by 'gpu-1'")
    locks = ok(run(cluster, "lock", "list", node="node-2"))  # any node answers
    assert "train-lock" in locks and "gpu-1" in locks
    ok(run(cluster, "lock", "renew", "train-lock", "--holder", "gpu-1", "--fence-token", fence, "--ttl", "600"))

    # Fenced model registration: the lock's fence token is checked by the state machine.
    ok(run(cluster, "models", "register", "policy", "7", "--uri", "s3://m/7", "--checksum", "abc", "--metric", "elo=1510",
           "--fence-lock", "train-lock", "--fence-token", fence))
    fails(run(cluster, "models", "register", "policy", "8", "--uri", "s3://m/8", "--checksum", "d",
              "--fence-lock", "train-lock", "--fence-token", str(int(fence) + 1)), EXIT_REFUSED, "409")
    assert "policy 7: production" in ok(run(cluster, "models", "promote", "policy", "7"))
    models = json.loads(ok(run(cluster, "models", "list", "--stage", "production", "--json")))["models"]
    assert [(m["name"], m["version"], m["metrics"]) for m in models] == [("policy", "7", {"elo": 1510})]
    ok(run(cluster, "lock", "release", "train-lock", "--holder", "gpu-1", "--fence-token", fence))
    assert "(no locks held)" in ok(run(cluster, "lock", "list", "--consistent"))

    ok(run(cluster, "jobs", "assign", "J1", "--node", "gpu-1", "--type", "train"))
    ok(run(cluster, "jobs", "start", "J1", "--node", "gpu-1"))
    assert "running" in ok(run(cluster, "jobs", "show", "J1", "--consistent"))

    # A retried write with the same request id is applied once.
    first = json.loads(ok(run(cluster, "work", "add", "W3", "--type", "x", "--request-id", "r-1", "--json")))
    again = run(cluster, "work", "add", "W3", "--type", "x", "--request-id", "r-1", "--json")
    assert again.returncode == EXIT_OK and json.loads(again.stdout)["work_id"] == first["work_id"] == "W3", again

    members = ok(run(cluster, "members"))
    assert all(n in members for n in cluster.nodes) and "alive" in members
    leader = ok(run(cluster, "leader")).split()[0]
    assert leader == cluster.agreed_leader()
    assert json.loads(ok(run(cluster, "leader", "--json")))["leader_id"] == leader
    # The token from a file works too.
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    ok(run(cluster, "work", "add", "W4", "--type", "x", "--token-file", str(token_file), token=None))


def test_errors_are_one_line_with_their_exit_codes(cluster: LocalCluster) -> None:
    fails(run(cluster, "work", "add", "W1", "--type", "x", token=None), EXIT_UNAUTHORIZED, "401", "--token")
    fails(run(cluster, "work", "add", "W1", "--type", "x", token="wrong"), EXIT_UNAUTHORIZED, "401")
    fails(run(cluster, "work", "add", "W1"), EXIT_USAGE, "--type")
    fails(run(cluster, "work", "add", "W1", "--type", "x", "--priority", "high"), EXIT_USAGE, "--priority")
    fails(run(cluster, "lock", "acquire", "L", "--holder", "h", "--ttl", "-5"), EXIT_USAGE, "--ttl")
    fails(run(cluster, "work", "add", "W1", "--type", "x", "--max-attempts", "0"), EXIT_USAGE, "400")
    fails(run(cluster, "work", "show", "nope"), EXIT_REFUSED, "404")
    fails(run(cluster, "work", "list", "--url", "ftp://x"), EXIT_USAGE, "--url")
    fails(run(cluster, "work", "add", "W1", "--type", "x", "--token-file", "/nonexistent/token", token=None),
          EXIT_USAGE, "/nonexistent/token")
    unreachable = f"http://127.0.0.1:{free_base_port(1)}"
    fails(run(cluster, "members", "--url", unreachable), EXIT_FAILURE, "cannot reach", unreachable)

    # No leader: two of three nodes gone. Reads of the leader and writes say so, with exit 5.
    leader = cluster.agreed_leader()
    survivor = next(n for n in cluster.nodes if n != leader)
    for node_id in cluster.nodes:
        if node_id != survivor:
            cluster.kill(node_id)
    wait_until(lambda: run(cluster, "leader", node=survivor).returncode == EXIT_UNAVAILABLE, 30,
               what="the survivor knows no leader")
    fails(run(cluster, "leader", node=survivor), EXIT_UNAVAILABLE, "no leader")
    fails(run(cluster, "work", "add", "W9", "--type", "x", "--timeout", "30", node=survivor), EXIT_UNAVAILABLE, "503")
