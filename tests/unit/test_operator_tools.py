"""The status page's routes in-process, and the state CLI's parsing, token and error mapping."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ringrift_cluster import cli, cli_state
from ringrift_cluster.api.app import create_app
from ringrift_cluster.config import load_config
from ringrift_cluster.model import EventKind, MembershipEvent
from ringrift_cluster.node import ClusterNode
from ringrift_cluster.testing.engines import poll_until


@pytest.fixture
async def client(tmp_path: Path):
    config = load_config(None, env={"RINGRIFT_CLUSTER_AUTH_TOKEN": "t", "RINGRIFT_DATA_DIR": str(tmp_path)})
    node = ClusterNode(config)
    async with TestClient(TestServer(create_app(node.parts))) as client:
        client.node = node  # type: ignore[attr-defined]
        yield client


async def test_root_redirects_to_the_page_with_its_query(client) -> None:
    response = await client.get("/?refresh_ms=500", allow_redirects=False)
    assert response.status == 302 and response.headers["Location"] == "/ui?refresh_ms=500"


async def test_the_page_and_its_assets_come_from_the_node(client) -> None:
    page = await client.get("/ui")
    html = await page.text()
    assert page.status == 200 and page.content_type == "text/html"
    assert '<script src="/ui/status.js">' in html and 'href="/ui/status.css"' in html
    assert "http://" not in html and "https://" not in html  # no CDN
    for asset, kind in (("status.js", "text/javascript"), ("status.css", "text/css")):
        response = await client.get(f"/ui/{asset}")
        assert response.status == 200 and response.content_type == kind
        assert "http://" not in await response.text() and "https://" not in await response.text()
    missing = await client.get("/ui/../cluster.yaml")
    assert missing.status == 404
    assert (await client.get("/ui/status.html.bak")).status == 404


async def test_membership_events_are_kept_newest_first(client) -> None:
    hub = client.node.membership._hub  # the heartbeat backend's event hub
    hub.publish(MembershipEvent(kind=EventKind.JOINED, node_id="peer-1", source="heartbeat"))
    hub.publish(MembershipEvent(kind=EventKind.FAILED, node_id="peer-1", source="heartbeat", after_s=4.0071))

    async def events() -> list[dict]:
        return (await (await client.get("/membership/events")).json())["events"]

    async def both() -> tuple[bool, list[dict]]:  # the follower task takes them off its subscription
        got = await events()
        return len(got) == 2, got

    got = await poll_until(both, 5.0, "both events in /membership/events", interval=0.01)
    assert [(e["kind"], e["node_id"], e["after_s"]) for e in got] == [("failed", "peer-1", 4.007), ("joined", "peer-1", None)]
    assert len((await (await client.get("/membership/events?limit=1")).json())["events"]) == 1
    for bad in ("0", "x", "100000"):
        response = await client.get(f"/membership/events?limit={bad}")
        assert response.status == 400 and "limit" in (await response.json())["error"]


async def test_queue_validates_its_filters(client) -> None:
    response = await client.get("/raft/queue?status=done")
    assert response.status == 400 and "status: expected one of" in (await response.json())["error"]
    response = await client.get("/raft/queue?limit=-1")
    assert response.status == 400 and "limit" in (await response.json())["error"]


def parse(*argv: str) -> argparse.Namespace:
    return cli._parser().parse_args(list(argv))


def test_usage_errors_are_one_line_with_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse("work", "add", "W1")
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["ringrift-cluster work add: error: the following arguments are required: --type "
                   "(see ringrift-cluster work add --help)"]
    for argv in (["work", "add", "W1", "--type", "x", "--config", "[1]"], ["lock", "acquire", "L", "--holder", "h", "--ttl", "0"],
                 ["work", "complete", "W1", "--claim-token", "abc"], ["models", "register", "m", "1", "--uri", "u",
                                                                       "--checksum", "c", "--metric", "novalue"],
                 ["work", "add", "W1", "--type", "x", "--request-id", "r" * 129], ["work", "list", "--status", "done"]):
        with pytest.raises(SystemExit) as exit_:
            parse(*argv)
        assert exit_.value.code == 2, argv
        assert len(capsys.readouterr().err.strip().splitlines()) == 1, argv


def test_flags_become_the_api_bodies() -> None:
    args = parse("work", "add", "W1", "--type", "selfplay", "--priority", "50", "--capability", "gpu",
                 "--capability", "cuda", "--config", '{"games": 3}')
    assert (args.work_type, args.priority, args.capabilities, args.config) == ("selfplay", 50, ["gpu", "cuda"], {"games": 3})
    args = parse("models", "register", "m", "1", "--uri", "u", "--checksum", "c", "--metric", "elo=1500", "--metric", "tag=best")
    assert dict(args.metrics) == {"elo": 1500, "tag": "best"}
    assert parse("work", "complete", "W1", "--claim-token", "3", "--result", "plain text").result == "plain text"


def test_url_and_token_defaults(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RINGRIFT_URL", "http://10.0.0.5:8770")
    assert parse("lock", "list").url == "http://10.0.0.5:8770"
    env = {"RINGRIFT_CLUSTER_AUTH_TOKEN": "from-env"}
    assert cli_state.resolve_token(argparse.Namespace(token=None, token_file=None), env) == "from-env"
    assert cli_state.resolve_token(argparse.Namespace(token="flag", token_file=None), env) == "flag"
    path = tmp_path / "token"
    path.write_text("from-file\n")
    assert cli_state.resolve_token(argparse.Namespace(token=None, token_file=str(path)), env) == "from-file"
    assert cli_state.resolve_token(argparse.Namespace(token=None, token_file=None),
                                   {"RINGRIFT_CLUSTER_AUTH_TOKEN_FILE": str(path)}) == "from-file"
    assert cli_state.resolve_token(argparse.Namespace(token=None, token_file=None), {}) is None
    path.write_text("")
    with pytest.raises(cli_state.CliError, match="is empty") as error:
        cli_state.resolve_token(argparse.Namespace(token=None, token_file=str(path)), {})
    assert error.value.code == cli_state.EXIT_USAGE


@pytest.mark.parametrize("status, body, code, words", [
    (401, {"error": "unauthorized"}, cli_state.EXIT_UNAUTHORIZED, ["401", "--token"]),
    (409, {"error": "lock_held", "message": "lock 'L' is held by 'a'"}, cli_state.EXIT_REFUSED, ["409, lock_held", "held by 'a'"]),
    (404, {"error": "not_found", "message": "work 'W' not found"}, cli_state.EXIT_REFUSED, ["404", "not found"]),
    (400, {"error": "ttl_s: expected a number"}, cli_state.EXIT_USAGE, ["400", "ttl_s"]),
    (503, {"error": "no_leader", "message": "no node can apply", "leader": None}, cli_state.EXIT_UNAVAILABLE, ["no leader", "503"]),
    (503, {"error": "timeout", "message": "outcome unknown", "outcome": "unknown", "leader": "n2"}, cli_state.EXIT_UNAVAILABLE,
     ["timeout", "--request-id", "leader: n2"]),
    (500, {"error": "internal error"}, cli_state.EXIT_FAILURE, ["500"]),
])
def test_http_errors_map_to_one_line_and_an_exit_code(status: int, body: dict, code: int, words: list[str]) -> None:
    error = cli_state.client._http_error("POST", "/raft/work", status, body)
    assert error.code == code and "\n" not in str(error)
    assert all(w in str(error) for w in words), str(error)


def test_table_formats_cells() -> None:
    text = cli_state.table(["A", "B"], [["x", None], [1.25, ["p", "q"]], [{}, {"k": 1}]])
    assert text.splitlines() == ["A    B", "x    -", "1.2  p,q", "-    {\"k\":1}"]
