"""The demo's pieces that need no cluster: options, tokens, port holders, a node's last words,
the tables."""

from __future__ import annotations

import argparse
import json
import os
import socket

import pytest

from ringrift_cluster.cli import main as cli_main
from ringrift_cluster.demo.compare import Side, result_table, run_compare
from ringrift_cluster.demo.load import membership_messages
from ringrift_cluster.demo.owned import last_words
from ringrift_cluster.demo.ports import holder, port_taken
from ringrift_cluster.demo.setup import Stop, demo_settings, node_env, resolve_modes, resolve_token, token_lines
from ringrift_cluster.demo.view import work_line
from ringrift_cluster.errors import ConfigError


def _args(**kw: object) -> argparse.Namespace:
    base = {"membership_mode": None, "consensus_mode": None, "auth_token": None, "auth_token_file": None}
    return argparse.Namespace(**{**base, **kw})


def test_modes_default_to_swim_and_raft_then_env_then_flags() -> None:
    assert resolve_modes(_args(), env={}) == ("swim", "raft")
    env = {"RINGRIFT_MEMBERSHIP_MODE": "http", "RINGRIFT_CONSENSUS_MODE": "bully"}
    assert resolve_modes(_args(), env=env) == ("http", "bully")
    assert resolve_modes(_args(membership_mode="Hybrid"), env=env) == ("hybrid", "bully")
    with pytest.raises(ConfigError, match="--consensus-mode"):
        resolve_modes(_args(consensus_mode="paxos"), env={})


def test_token_sources_and_the_curl_that_uses_them(tmp_path) -> None:
    assert resolve_token(_args(auth_token="flag"), env={"RINGRIFT_CLUSTER_AUTH_TOKEN": "env"}).value == "flag"
    from_env = resolve_token(_args(), env={"RINGRIFT_CLUSTER_AUTH_TOKEN": "env"})
    assert from_env.value == "env" and "env" not in " ".join(token_lines(from_env, "http://x"))
    secret = tmp_path / "token"
    secret.write_text("from-file\n")
    from_file = resolve_token(_args(), env={"RINGRIFT_CLUSTER_AUTH_TOKEN_FILE": str(secret)})
    assert from_file.value == "from-file" and f"$(cat {secret})" in token_lines(from_file, "http://x")[1]
    generated = resolve_token(_args(), env={})
    lines = token_lines(generated, "http://127.0.0.1:8770")
    assert generated.source == "generated" and generated.value in lines[0] and generated.value in lines[1]
    assert "POST http://127.0.0.1:8770/raft/work" in lines[1]
    assert f"RINGRIFT_CLUSTER_AUTH_TOKEN={generated.value}" in lines[2] and "ringrift-cluster work add" in lines[2]
    assert lines[3] == "status page:  http://127.0.0.1:8770/ui"
    assert "RINGRIFT_CLUSTER_AUTH_TOKEN_FILE=" + str(secret) in token_lines(from_file, "http://x")[2]
    secret.write_text("")
    with pytest.raises(ConfigError, match="empty"):
        resolve_token(_args(auth_token_file=str(secret)), env={})
    env = node_env("http", "bully", generated)
    assert env["RINGRIFT_MEMBERSHIP_MODE"] == "http" and env["RINGRIFT_CLUSTER_AUTH_TOKEN"] == generated.value


def test_a_held_port_is_named_with_its_holder() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert port_taken(port, socket.SOCK_STREAM)
        assert holder(port, socket.SOCK_STREAM).startswith(f"pid {os.getpid()} (")
    assert not port_taken(port, socket.SOCK_STREAM)


def test_last_words_prefer_the_cli_error_then_a_traceback_then_an_error_event() -> None:
    assert last_words('{"level": "info", "event": "x"}\nringrift-cluster: API port 1 is in use\n') == "API port 1 is in use"
    assert last_words("Traceback ...\nFileExistsError: raft\n") == "FileExistsError: raft"
    assert last_words('{"level": "error", "event": "start failed", "error": "boom"}\n{"level": "info", "event": "y"}') \
        == "start failed boom"
    assert last_words("") == "(no output)"


def test_work_line_and_membership_messages() -> None:
    extras = {"work": {"stats": {"pending": 2, "claimed": 1}},
              "locks": {"locks": [{"name": "train", "holder": "gpu-1", "fence_token": 4}]}}
    assert work_line(extras) == ("work: pending 2 claimed 1 running 0 completed 0 failed 0   "
                                 "locks: train (gpu-1, fence 4)")
    assert work_line({}) == "work: unavailable   locks: unavailable"
    assert membership_messages({"membership": {"messages_sent": 7}}) == 7
    assert membership_messages({"membership": {"heartbeats_sent": 3, "heartbeats_received": 4}}) == 7
    assert membership_messages(None) is None


def test_result_table_has_one_column_per_cluster() -> None:
    sides = [Side("legacy (http+bully)", None, leader="legacy-1", detection_s=4.04, failover_s=3.5,  # type: ignore[arg-type]
                  msg_rate=15.94),
             Side("swim+raft", None, leader="new-2", failover_s=1.0)]  # type: ignore[arg-type]
    lines = result_table(sides)
    assert "legacy (http+bully)" in lines[1] and "swim+raft" in lines[1]
    assert any(line.startswith("detection (every survivor)") and "4.0 s" in line and line.rstrip().endswith("-")
               for line in lines), lines
    assert any(line.startswith("membership msgs/node/s") and "15.9" in line for line in lines), lines


def test_sd_file_is_kept_by_every_node_and_refused_with_compare(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert demo_settings(_args(sd_file=None), "swim", "raft") == {"membership_mode": "swim", "consensus_mode": "raft"}
    settings = demo_settings(_args(sd_file="sd/t.json"), "http", "bully")
    assert settings["discovery"] == {"file_path": str(tmp_path / "sd" / "t.json")}  # the shell's directory
    with pytest.raises(ConfigError, match="--sd-file"):
        run_compare(_args(sd_file="t.json", nodes=3, base_port=9000), str(tmp_path), Stop(), print, print)


def test_sd_file_flag_names_itself_in_config_errors(tmp_path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli_main(["check-config", "--sd-file", "sd/"]) == 2
    assert "--sd-file: got" in capsys.readouterr().err
    assert cli_main(["check-config", "--sd-file", "sd/t.json"]) == 0
    shown = json.loads(capsys.readouterr().out)["discovery"]
    assert shown == {"backends": ["file_sd", "http_sd"], "file_path": str(tmp_path / "sd" / "t.json")}
