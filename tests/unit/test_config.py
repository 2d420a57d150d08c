"""Config: layering, presets, mode resolution, and a clear ConfigError for every bad input."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from ringrift_cluster.config import ConsensusMode, MembershipMode, load_config
from ringrift_cluster.errors import ConfigError


def write(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def hosts(*ids: str, **extra: object) -> dict:
    return {n: {"p2p_host": "127.0.0.1", "p2p_port": 9000 + i, "swim_port": 9100 + i, "raft_port": 9200 + i, **extra}
            for i, n in enumerate(ids)}


@pytest.fixture
def cluster_file(tmp_path: Path) -> Path:
    return write(tmp_path, {"hosts": hosts("a", "b", "c"), "p2p_voters": ["a", "b", "c"]})


def error_for(path: Path | None, env: dict | None = None, **overrides: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env or {}, overrides=overrides)
    return info.value


def test_no_file_is_a_single_loopback_node() -> None:
    config = load_config(None, env={})
    assert config.node_id == "local-node"
    assert config.api.bind_host == "127.0.0.1" and config.api.port == 8770
    assert config.voters == ("local-node",)
    assert config.membership_backends == ("heartbeat",)
    assert (config.leader_backend, config.state_backend) == ("bully", "journal")


def test_host_defaults_in_lan_preset(cluster_file: Path) -> None:
    config = load_config(cluster_file, env={"RINGRIFT_NODE_ID": "a"})
    assert (config.heartbeat.interval_s, config.heartbeat.suspect_timeout_s, config.heartbeat.peer_timeout_s) == (15, 90, 180)
    assert config.election.lease_duration_s == 300
    assert config.api.port == 9000  # from the host entry's p2p_port
    assert [p.node_id for p in config.peers] == ["b", "c"]


def test_layering_yaml_then_env_then_cli(tmp_path: Path) -> None:
    path = write(tmp_path, {"hosts": hosts("a", "b"), "ringrift_cluster": {"preset": "local", "heartbeat": {"interval_s": 0.7}}})
    config = load_config(path, env={"RINGRIFT_NODE_ID": "a"})
    assert config.heartbeat.interval_s == 0.7  # YAML over the preset
    assert config.heartbeat.suspect_timeout_s == 2.0  # the local preset
    config = load_config(path, env={"RINGRIFT_NODE_ID": "a", "RINGRIFT_P2P_HEARTBEAT_INTERVAL": "0.3"})
    assert config.heartbeat.interval_s == 0.3  # env over YAML
    config = load_config(path, env={"RINGRIFT_NODE_ID": "a", "RINGRIFT_P2P_PORT": "9500"}, overrides={"api.port": 9600, "node_id": "b"})
    assert config.api.port == 9600 and config.node_id == "b"  # CLI over env


def test_modes_resolve_once_to_backends(cluster_file: Path) -> None:
    env = {"RINGRIFT_NODE_ID": "a", "RINGRIFT_MEMBERSHIP_MODE": "hybrid", "RINGRIFT_CONSENSUS_MODE": "hybrid"}
    config = load_config(cluster_file, env=env)
    assert config.membership_mode is MembershipMode.HYBRID and config.consensus_mode is ConsensusMode.HYBRID
    assert config.membership_backends == ("swim", "heartbeat")
    assert (config.leader_backend, config.state_backend) == ("bully", "raft")
    assert config.swim_enabled and config.raft_enabled  # the flags follow the modes when unset
    config = load_config(cluster_file, env={"RINGRIFT_NODE_ID": "a", "RINGRIFT_CONSENSUS_MODE": "raft"})
    assert (config.leader_backend, config.state_backend) == ("raft", "raft")


@pytest.mark.parametrize("consensus, node, election, store", [
    ("bully", "a", "bully", "journal"),
    ("raft", "a", "raft", "raft"),
    ("raft", "c", "raft_observer", "none"),  # outside raft_members: observes and forwards
    ("hybrid", "a", "bully", "raft"),
    ("hybrid", "c", "bully", "none"),
])
def test_the_plan_names_each_role_backend(tmp_path: Path, consensus: str, node: str, election: str, store: str) -> None:
    path = write(tmp_path, {"hosts": hosts("a", "b", "c"), "raft_members": ["a", "b"]})
    plan = load_config(path, env={"RINGRIFT_NODE_ID": node, "RINGRIFT_CONSENSUS_MODE": consensus}).plan
    assert (plan.election.value, plan.store.value) == (election, store)


def test_host_file_keys_that_are_not_ours_are_kept(tmp_path: Path) -> None:
    path = write(tmp_path, {"hosts": hosts("a", "b", ssh_user="ubuntu", work_dir="/srv"), "elo_sync": {"x": 1}})
    config = load_config(path, env={"RINGRIFT_NODE_ID": "a"})
    assert config.hosts["a"].extra == {"ssh_user": "ubuntu", "work_dir": "/srv"}


def test_offline_and_disabled_hosts_are_left_out(tmp_path: Path) -> None:
    entries = hosts("a", "b", "c")
    entries["b"]["status"] = "offline"
    entries["c"]["p2p_enabled"] = False
    config = load_config(write(tmp_path, {"hosts": entries}), env={"RINGRIFT_NODE_ID": "a"})
    assert sorted(config.hosts) == ["a"]


@pytest.mark.parametrize(
    "document, env, key, words",
    [
        ({"ringrift_cluster": {"heartbeat": {"intervl_s": 1}}}, {}, "ringrift_cluster.heartbeat.intervl_s", "did you mean 'interval_s'"),
        ({"ringrift_cluster": {"membership_mod": "http"}}, {}, "ringrift_cluster.membership_mod", "did you mean 'membership_mode'"),
        ({"p2p_voter": ["a"]}, {}, "p2p_voter", "did you mean 'p2p_voters'"),
        ({"ringrift_cluster": {"heartbeat": {"interval_s": "fast"}}}, {}, "ringrift_cluster.heartbeat.interval_s", "a number"),
        ({"ringrift_cluster": {"heartbeat": {"interval_s": -1}}}, {}, "ringrift_cluster.heartbeat.interval_s", "positive"),
        ({"ringrift_cluster": {"heartbeat": {"suspect_timeout_s": 500}}}, {}, "ringrift_cluster.heartbeat.suspect_timeout_s", "less than heartbeat.peer_timeout_s"),
        ({"ringrift_cluster": {"election": {"lease_renew_interval_s": 400}}}, {}, "ringrift_cluster.election.lease_renew_interval_s", "less than"),
        ({"ringrift_cluster": {"api": {"port": 70000}}}, {}, "ringrift_cluster.api.port", "port number"),
        ({"ringrift_cluster": {"swim": {"transport": "carrier-pigeon"}}}, {}, "ringrift_cluster.swim.transport", "udp"),
        ({"ringrift_cluster": {"preset": "wan"}}, {}, "ringrift_cluster.preset", "local"),
        ({"ringrift_cluster": {"swim_enabled": "maybe"}}, {}, "ringrift_cluster.swim_enabled", "boolean"),
        ({"p2p_voters": ["a", "zz"]}, {}, "p2p_voters[1]", "listed"),
        ({"preferred_leader": "zz"}, {}, "preferred_leader", "voter"),
        ({"coordinator_nodes": ["b"], "p2p_voters": ["a"]}, {}, "coordinator_nodes", "also in p2p_voters"),
        ({}, {"RINGRIFT_P2P_PORT": "eighty"}, "RINGRIFT_P2P_PORT", "an integer"),
        ({}, {"RINGRIFT_MEMBERSHIP_MODE": "gossip"}, "RINGRIFT_MEMBERSHIP_MODE", "'http', 'swim', 'hybrid'"),
        ({}, {"RINGRIFT_MEMBERSHIP_MODE": "swim", "RINGRIFT_SWIM_ENABLED": "false"}, "RINGRIFT_SWIM_ENABLED", "needs SWIM"),
        ({}, {"RINGRIFT_CONSENSUS_MODE": "raft", "RINGRIFT_RAFT_ENABLED": "0"}, "RINGRIFT_RAFT_ENABLED", "needs Raft"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, document: dict, env: dict, key: str, words: str) -> None:
    document = {"hosts": hosts("a", "b"), **document}
    error = error_for(write(tmp_path, document), {"RINGRIFT_NODE_ID": "a", **env})
    assert error.key == key, str(error)
    assert words in str(error), str(error)


def test_node_id_shaped_like_an_address_is_refused(cluster_file: Path) -> None:
    error = error_for(cluster_file, {"RINGRIFT_NODE_ID": "10.0.0.1:8770"})
    assert error.key == "RINGRIFT_NODE_ID" and "host:port" in str(error)
    error = error_for(cluster_file, node_id="a:1")
    assert error.key == "--node-id"


def test_node_id_missing_from_hosts(cluster_file: Path) -> None:
    error = error_for(cluster_file, {"RINGRIFT_NODE_ID": "d"})
    assert error.key == "RINGRIFT_NODE_ID" and "listed" in str(error)


def test_host_key_shaped_like_an_address(tmp_path: Path) -> None:
    error = error_for(write(tmp_path, {"hosts": {"10.0.0.1:22": {}}}), {})
    assert error.key == "hosts.10.0.0.1:22"


def test_near_miss_host_key_is_a_typo(tmp_path: Path) -> None:
    error = error_for(write(tmp_path, {"hosts": hosts("a", "b", tailscale_p="100.1.1.1")}), {"RINGRIFT_NODE_ID": "a"})
    assert error.key.endswith(".tailscale_p") and "tailscale_ip" in str(error)


def test_port_collision_on_one_address(tmp_path: Path) -> None:
    entries = hosts("a", "b")
    entries["b"]["p2p_port"] = entries["a"]["swim_port"]
    error = error_for(write(tmp_path, {"hosts": entries}), {"RINGRIFT_NODE_ID": "a"})
    assert error.key == "hosts.b.p2p_port" and "hosts.a.swim_port" in str(error)


def test_raft_on_a_public_address_needs_a_password(tmp_path: Path) -> None:
    entries = {"a": {"p2p_host": "10.1.2.3"}, "b": {"p2p_host": "10.1.2.4"}}
    path = write(tmp_path, {"hosts": entries})
    error = error_for(path, {"RINGRIFT_NODE_ID": "a", "RINGRIFT_CONSENSUS_MODE": "raft"})
    assert error.key == "raft.password"
    config = load_config(path, env={"RINGRIFT_NODE_ID": "a", "RINGRIFT_CONSENSUS_MODE": "raft", "RINGRIFT_RAFT_PASSWORD": "s3cret"})
    assert config.raft.password == "s3cret" and config.raft.bind_host == "10.1.2.3"


def test_secrets_from_files(tmp_path: Path, cluster_file: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("t0ken\n")
    config = load_config(cluster_file, env={"RINGRIFT_NODE_ID": "a", "RINGRIFT_CLUSTER_AUTH_TOKEN_FILE": str(token_file)})
    assert config.auth_token == "t0ken"
    error = error_for(cluster_file, {"RINGRIFT_NODE_ID": "a", "RINGRIFT_CLUSTER_AUTH_TOKEN_FILE": str(tmp_path / "nope")})
    assert error.key == "RINGRIFT_CLUSTER_AUTH_TOKEN_FILE"


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    assert error_for(tmp_path / "missing.yaml").key == "--config"
    bad = tmp_path / "bad.yaml"
    bad.write_text("hosts: [unclosed\n")
    error = error_for(bad)
    assert "line" in str(error)
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    assert "mapping" in str(error_for(listy))


def test_voters_default_to_all_hosts_and_raft_members_to_voters(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, {"hosts": hosts("c", "a", "b")}), env={"RINGRIFT_NODE_ID": "a"})
    assert config.voters == ("a", "b", "c") and config.raft_members == config.voters
    assert config.coordinator_nodes == config.voters


def test_jitter_is_deterministic_and_bounded(cluster_file: Path) -> None:
    factors = []
    for node in ("a", "b", "c"):
        one = load_config(cluster_file, env={"RINGRIFT_NODE_ID": node}).jitter_factor
        assert one == load_config(cluster_file, env={"RINGRIFT_NODE_ID": node}).jitter_factor
        assert 0.95 <= one <= 1.05
        factors.append(one)
    assert len(set(factors)) == 3


def test_config_is_frozen(cluster_file: Path) -> None:
    config = load_config(cluster_file, env={"RINGRIFT_NODE_ID": "a"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.node_id = "b"  # type: ignore[misc]
