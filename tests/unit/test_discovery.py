"""Discovery: targets and their documents, the bridge on a fake membership and a fake clock (flap
damping), the validator (thresholds, reconciliation, a corrupted file), writes that fail, the
config section and /sd/targets."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from ringrift_cluster.api.app import create_app
from ringrift_cluster.config import load_config
from ringrift_cluster.discovery import (ConsistencyValidator, Discovery, DiscoveryBridge, DiscoveryError,
                                       DiscoveryMetrics, FileSd, HttpSd, Target, parse_groups, read_targets,
                                       render_groups)
from ringrift_cluster.errors import ConfigError
from ringrift_cluster.events import EventHub
from ringrift_cluster.model import EventKind, Member, MembershipEvent, MemberState
from ringrift_cluster.node import ClusterNode
from ringrift_cluster.testing.stubs import ManualClock
from ringrift_cluster.testing.wait import until

IDS = ("a", "b", "c")


class FakeMembership:
    """Members and events set by the test."""

    name = "swim"

    def __init__(self) -> None:
        self.hub: EventHub[MembershipEvent] = EventHub()
        self.state: dict[str, MemberState] = {}

    def members(self) -> Mapping[str, Member]:
        return {n: Member(node_id=n, state=s, host="127.0.0.1", api_port=1, source="swim") for n, s in self.state.items()}

    def subscribe(self):  # type: ignore[no-untyped-def]
        return self.hub.subscribe()

    def set(self, node_id: str, state: MemberState, kind: EventKind | None = None) -> MembershipEvent:
        self.state[node_id] = state
        event = MembershipEvent(kind=kind or _KIND[state], node_id=node_id, source="swim")
        self.hub.publish(event)
        return event


_KIND = {MemberState.ALIVE: EventKind.JOINED, MemberState.SUSPECT: EventKind.SUSPECT,
         MemberState.FAILED: EventKind.FAILED, MemberState.LEFT: EventKind.LEFT}


def _config(tmp_path: Path, **discovery: Any):
    hosts = {n: {"p2p_host": "127.0.0.1", "p2p_port": 9000 + i, "swim_port": 9100 + i, "raft_port": 9200 + i,
                 "role": "worker", "gpu": "H100" if n == "b" else ""} for i, n in enumerate(IDS)}
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump({"hosts": hosts, "ringrift_cluster": {"preset": "local", "discovery": discovery}}))
    return load_config(path, env={}, overrides={"node_id": "a", "data_dir": str(tmp_path / "data")})


@pytest.fixture
def parts(tmp_path: Path):
    config = _config(tmp_path, file_path="sd/targets.json", damping_s=2.0, inconsistency_threshold=1)
    membership, clock, registry = FakeMembership(), ManualClock(100.0), CollectorRegistry()
    file_sd, http_sd = FileSd(tmp_path / "sd" / "targets.json"), HttpSd()
    metrics = DiscoveryMetrics(registry)
    bridge = DiscoveryBridge(config, membership, [file_sd, http_sd], metrics=metrics, clock=clock)
    bridge.reconcile()
    return membership, clock, bridge, file_sd, http_sd, ConsistencyValidator(bridge, metrics), registry


def _health(backend: Any) -> dict[str, str]:
    return {n: t.health for n, t in backend.targets.items()}


# -- Targets and documents -------------------------------------------------------------------


def test_groups_round_trip_with_the_five_labels() -> None:
    targets = {"b": Target(node_id="b", address="10.0.0.2", port=9100, role="worker", gpu="H100", source="swim"),
               "a": Target(node_id="a", address="::1", port=8770, healthy=False, source="self")}
    groups = render_groups(targets)
    assert groups[0] == {"targets": ["[::1]:8770"],
                         "labels": {"node_id": "a", "role": "", "gpu": "", "health": "unhealthy", "source": "self"}}
    assert groups[1]["labels"]["gpu"] == "H100" and groups[1]["targets"] == ["10.0.0.2:9100"]
    assert parse_groups(json.loads(json.dumps(groups))) == targets


@pytest.mark.parametrize("document, reason", [
    ({"targets": []}, "expected a list of target groups"),
    ([{"targets": ["h:1"]}], "exactly 'targets' and 'labels'"),
    ([{"targets": ["h:1", "h:2"], "labels": {}}], "expected one 'host:port'"),
    ([{"targets": ["h"], "labels": {"node_id": "a", "role": "", "gpu": "", "health": "healthy", "source": ""}}], "is not 'host:port'"),
    ([{"targets": ["h:1"], "labels": {"node_id": "a"}}], "expected string labels"),
    ([{"targets": ["h:1"], "labels": {"node_id": "a", "role": "", "gpu": "", "health": "ok", "source": ""}}], "health"),
    ([{"targets": ["h:0"], "labels": {"node_id": "a", "role": "", "gpu": "", "health": "healthy", "source": ""}}], "port 0"),
    ([{"targets": ["h:1"], "labels": {"node_id": "A:1", "role": "", "gpu": "", "health": "healthy", "source": ""}}], "node_id"),
    ([{"targets": ["h:1"], "labels": {"node_id": "a", "role": "", "gpu": "", "health": "healthy", "source": ""}}] * 2, "listed twice"),
])
def test_bad_documents_are_refused_with_a_reason(document: Any, reason: str) -> None:
    with pytest.raises(DiscoveryError, match=reason):
        parse_groups(document)


@pytest.mark.parametrize("kwargs", [{"node_id": "Bad Id"}, {"port": 0}, {"port": 70000}, {"port": True},
                                    {"address": ""}, {"address": "a b"}, {"role": "x\n"}])
def test_bad_targets_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(DiscoveryError):
        Target(**{"node_id": "a", "address": "h", "port": 1, **kwargs})


def test_marking_an_unknown_target_is_refused() -> None:
    with pytest.raises(DiscoveryError, match="no target for node 'x'"):
        HttpSd().mark_unhealthy("x")


# -- The bridge --------------------------------------------------------------------------------


def test_joined_registered_failed_removed_left_removed(parts) -> None:
    membership, _, bridge, file_sd, http_sd, *_ = parts
    assert set(bridge.view) == {"a"} and bridge.view["a"].source == "swim" and bridge.view["a"].port == 9000
    bridge.handle(membership.set("b", MemberState.ALIVE))
    bridge.handle(membership.set("c", MemberState.ALIVE))
    assert _health(http_sd) == _health(file_sd) == {"a": "healthy", "b": "healthy", "c": "healthy"}
    b = http_sd.targets["b"]
    assert (b.endpoint, b.role, b.gpu, b.source) == ("127.0.0.1:9001", "worker", "H100", "swim")
    bridge.handle(membership.set("b", MemberState.FAILED))
    bridge.handle(membership.set("c", MemberState.LEFT))
    assert set(http_sd.targets) == set(file_sd.targets) == {"a"}


def test_a_flap_inside_the_damping_window_never_reaches_discovery(parts) -> None:
    membership, clock, bridge, file_sd, http_sd, *_ = parts
    bridge.handle(membership.set("b", MemberState.ALIVE))
    seen: list[dict[str, str]] = []
    for _ in range(5):
        bridge.handle(membership.set("b", MemberState.SUSPECT))
        clock.now += 1.9
        bridge.tick()
        seen.append(_health(http_sd))
        bridge.handle(membership.set("b", MemberState.ALIVE, EventKind.ALIVE))
        bridge.tick()
        seen.append(_health(http_sd))
    assert all(s == {"a": "healthy", "b": "healthy"} for s in seen)
    assert bridge.damped == 5 and not bridge.pending


def test_a_lasting_suspicion_is_marked_unhealthy_but_kept_then_healthy(parts) -> None:
    membership, clock, bridge, file_sd, http_sd, _, registry = parts
    bridge.handle(membership.set("b", MemberState.ALIVE))
    bridge.handle(membership.set("b", MemberState.SUSPECT))
    assert bridge.next_deadline() == clock.now + 2.0
    clock.now += 2.0
    bridge.tick()
    assert _health(http_sd) == _health(file_sd) == {"a": "healthy", "b": "unhealthy"}
    assert registry.get_sample_value("ringrift_discovery_targets", {"health": "unhealthy"}) == 1
    bridge.handle(membership.set("b", MemberState.ALIVE, EventKind.ALIVE))
    assert _health(http_sd) == {"a": "healthy", "b": "healthy"} and bridge.damped == 0
    assert registry.get_sample_value("ringrift_discovery_targets", {"health": "healthy"}) == 2


def test_a_failure_during_the_window_removes_and_forgets_the_suspicion(parts) -> None:
    membership, clock, bridge, _, http_sd, *_ = parts
    bridge.handle(membership.set("b", MemberState.ALIVE))
    bridge.handle(membership.set("b", MemberState.SUSPECT))
    bridge.handle(membership.set("b", MemberState.FAILED))
    clock.now += 10
    bridge.tick()
    assert set(http_sd.targets) == {"a"} and not bridge.pending
    bridge.handle(membership.set("b", MemberState.ALIVE, EventKind.ALIVE))  # back from failure
    assert _health(http_sd) == {"a": "healthy", "b": "healthy"}


def test_events_about_this_node_leave_it_listed(parts) -> None:
    membership, _, bridge, _, http_sd, *_ = parts
    bridge.handle(MembershipEvent(kind=EventKind.FAILED, node_id="a", source="swim"))
    assert set(http_sd.targets) == {"a"}


def test_the_scrape_port_applies_to_every_member(tmp_path: Path) -> None:
    config = _config(tmp_path, scrape_port=9400)  # a YAML number
    membership = FakeMembership()
    http_sd = HttpSd()
    bridge = DiscoveryBridge(config, membership, [http_sd])
    bridge.handle(membership.set("c", MemberState.ALIVE))
    assert {t.endpoint for t in http_sd.targets.values()} == {"127.0.0.1:9400"}
    bridge.reconcile()
    assert {t.endpoint for t in http_sd.targets.values()} == {"127.0.0.1:9400"} and len(http_sd.targets) == 2


def test_a_member_without_an_address_is_refused_not_listed(parts) -> None:
    membership, _, bridge, _, http_sd, *_ = parts
    membership.state["zz"] = MemberState.ALIVE
    member = Member(node_id="zz", state=MemberState.ALIVE)  # not in the cluster file, no host
    assert bridge.target_for("zz", member, "swim") is None and bridge.refused == 1
    assert "zz" not in http_sd.targets


# -- The validator ---------------------------------------------------------------------------


async def test_validator_counts_below_the_threshold_and_reconciles_past_it(parts) -> None:
    membership, _, bridge, file_sd, http_sd, validator, registry = parts
    await bridge.flush()
    report = await validator.validate()
    assert report.inconsistencies == 0 and not report.reconciled
    membership.state["b"] = MemberState.ALIVE  # events lost: discovery never heard of b
    report = await validator.validate()
    assert report.inconsistencies == 2 and report.reconciled  # b missing in both backends (> 1)
    assert {r.backend: r.missing for r in report.backends} == {"file_sd": ("b",), "http_sd": ("b",)}
    assert set(read_targets(file_sd.path)) == set(http_sd.targets) == {"a", "b"}
    assert registry.get_sample_value("ringrift_discovery_reconciliations_total") == 1
    assert registry.get_sample_value("ringrift_discovery_inconsistencies") == 2
    assert registry.get_sample_value("ringrift_discovery_last_validation_timestamp_seconds") == pytest.approx(report.at)

    bridge.backends = [http_sd]
    del membership.state["b"]  # one stale target: at the threshold, reported only
    report = await validator.validate()
    assert report.inconsistencies == 1 and not report.reconciled and report.backends[0].stale == ("b",)
    assert registry.get_sample_value("ringrift_discovery_inconsistencies") == 1
    assert "b" in http_sd.targets and validator.reconciliations == 1


@pytest.mark.parametrize("damage, threshold", [("truncate", 100), ("garbage", 100), ("delete", 100), ("hand_edit", 0)])
async def test_a_damaged_file_is_repaired(parts, damage: str, threshold: int) -> None:
    """An unreadable file is repaired whatever the threshold; a hand edit is an inconsistency."""
    membership, _, bridge, file_sd, _, validator, _ = parts
    bridge.settings = validator.settings = type(bridge.settings)(file_path="x", backends=("file_sd",),
                                                                  inconsistency_threshold=threshold)
    bridge.handle(membership.set("b", MemberState.ALIVE))
    await bridge.flush()
    good = file_sd.path.read_text()
    if damage == "truncate":
        file_sd.path.write_text(good[: len(good) // 2])
    elif damage == "garbage":
        file_sd.path.write_bytes(b"\xff\x00not json")
    elif damage == "delete":
        file_sd.path.unlink()
    else:
        file_sd.path.write_text(good.replace("127.0.0.1:9001", "127.0.0.1:9999"))
    report = await validator.validate()
    back = report.backends[0]
    assert report.reconciled and (back.error or back.altered == ("b",))
    assert file_sd.path.read_text() == good and (await validator.validate()).inconsistencies == 0


async def test_a_write_that_fails_is_counted_and_retried_until_it_succeeds(tmp_path: Path) -> None:
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the targets directory should be")
    config = _config(tmp_path, file_path=str(blocker / "targets.json"), batch_s=0.01, retry_s=0.05)
    registry = CollectorRegistry()
    membership = FakeMembership()
    discovery = Discovery(config, membership, registry)
    await discovery.start()  # does not raise: the node keeps running
    try:
        assert discovery.bridge.write_failures >= 1
        assert registry.get_sample_value("ringrift_discovery_write_failures_total", {"backend": "file_sd"}) >= 1
        blocker.unlink()
        await _until(lambda: (blocker / "targets.json").exists())
        assert set(read_targets(blocker / "targets.json")) == {"a"}
    finally:
        await discovery.stop()


async def test_the_running_bridge_follows_events_and_batches_writes(tmp_path: Path) -> None:
    config = _config(tmp_path, file_path="t.json", batch_s=0.05, damping_s=0.2)
    membership = FakeMembership()
    discovery = Discovery(config, membership, CollectorRegistry())
    await discovery.start()
    file_sd = discovery.file_sd
    assert file_sd is not None and file_sd.path == tmp_path / "data" / "t.json" and file_sd.writes == 1
    try:
        for node_id in ("b", "c"):
            membership.set(node_id, MemberState.ALIVE)
        await _until(lambda: file_sd.writes >= 2 and set(read_targets(file_sd.path)) == {"a", "b", "c"})
        assert file_sd.writes == 2  # two joins, one write
        membership.set("c", MemberState.SUSPECT)
        await _until(lambda: not read_targets(file_sd.path)["c"].healthy)  # the window ends on its own
        membership.set("c", MemberState.FAILED)
        await _until(lambda: set(read_targets(file_sd.path)) == {"a", "b"})
        assert os.stat(file_sd.path).st_mode & 0o777 == 0o644
        assert [p.name for p in file_sd.path.parent.iterdir()] == ["t.json"]  # no temporary left
    finally:
        await discovery.stop()


async def _until(probe: Any, timeout: float = 5.0) -> None:
    await until(probe, timeout, interval=0.01)  # a DiscoveryError now may clear later


# -- Config and API --------------------------------------------------------------------------


def test_config_defaults_env_and_relative_path(tmp_path: Path) -> None:
    config = load_config(None, env={})
    assert config.discovery.backends == ("http_sd",) and config.discovery.scrape_port == "api"
    config = load_config(None, env={"RINGRIFT_DISCOVERY_FILE": "sd.json", "RINGRIFT_DISCOVERY_SCRAPE_PORT": "9100",
                                    "RINGRIFT_DISCOVERY_INCONSISTENCY_THRESHOLD": "3",
                                    "RINGRIFT_DISCOVERY_VALIDATE_INTERVAL": "7", "RINGRIFT_DATA_DIR": str(tmp_path)})
    d = config.discovery
    assert (d.backends, d.file_path, d.scrape_port, d.inconsistency_threshold, d.validate_interval_s) == \
        (("file_sd", "http_sd"), "sd.json", "9100", 3, 7.0)


@pytest.mark.parametrize("env, key, expected", [
    ({"RINGRIFT_DISCOVERY_BACKENDS": "consul"}, "RINGRIFT_DISCOVERY_BACKENDS[0]", "one of ['file_sd', 'http_sd']"),
    ({"RINGRIFT_DISCOVERY_BACKENDS": "http_sd,http_sd"}, "RINGRIFT_DISCOVERY_BACKENDS", "without duplicates"),
    ({"RINGRIFT_DISCOVERY_BACKENDS": "file_sd"}, "ringrift_cluster.discovery.file_path", "a targets file path"),
    ({"RINGRIFT_DISCOVERY_FILE": "sd/"}, "RINGRIFT_DISCOVERY_FILE", "not a directory"),
    ({"RINGRIFT_DISCOVERY_SCRAPE_PORT": "65536"}, "RINGRIFT_DISCOVERY_SCRAPE_PORT", "a port number"),
    ({"RINGRIFT_DISCOVERY_SCRAPE_PORT": "0"}, "RINGRIFT_DISCOVERY_SCRAPE_PORT", "'api'"),
    ({"RINGRIFT_DISCOVERY_SCRAPE_PORT": "node"}, "RINGRIFT_DISCOVERY_SCRAPE_PORT", "a port number"),
    ({"RINGRIFT_DISCOVERY_VALIDATE_INTERVAL": "0"}, "RINGRIFT_DISCOVERY_VALIDATE_INTERVAL", "positive number"),
    ({"RINGRIFT_DISCOVERY_INCONSISTENCY_THRESHOLD": "x"}, "RINGRIFT_DISCOVERY_INCONSISTENCY_THRESHOLD", "an integer"),
    ({"RINGRIFT_DISCOVERY_VALIDATE_INTERVAL": "0.1"}, "ringrift_cluster.discovery.batch_s", "less than"),
])
def test_config_errors_name_the_key(env: dict[str, str], key: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, env=env)
    assert info.value.key == key and expected in info.value.expected


def test_config_typo_in_the_yaml_section(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"ringrift_cluster": {"discovery": {"file_pat": "x.json"}}}))
    with pytest.raises(ConfigError, match="did you mean 'file_path'"):
        load_config(path, env={})


async def test_sd_targets_route(tmp_path: Path) -> None:
    node = ClusterNode(load_config(None, env={"RINGRIFT_DATA_DIR": str(tmp_path)}))
    node.discovery.bridge.reconcile()
    async with TestClient(TestServer(create_app(node.parts))) as client:
        response = await client.get("/sd/targets")
        assert response.status == 200
        assert await response.json() == [{"targets": [f"127.0.0.1:{node.config.api.port}"], "labels": {
            "node_id": "local-node", "role": "", "gpu": "", "health": "healthy", "source": "heartbeat"}}]
        status = await (await client.get("/sd/status")).json()
        assert status["backends"] == ["http_sd"] and status["targets"] == {"healthy": 1, "unhealthy": 0}
    node = ClusterNode(load_config(None, env={"RINGRIFT_DATA_DIR": str(tmp_path)}, overrides={"discovery.backends": []}))
    async with TestClient(TestServer(create_app(node.parts))) as client:
        response = await client.get("/sd/targets")
        assert response.status == 404 and "http_sd" in (await response.json())["error"]
