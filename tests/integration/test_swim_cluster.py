"""SWIM backend, 10 real node processes on loopback (preset ``local``), one scenario per test.

The cluster is shared by the module and converged before the first test; every test leaves all
ten nodes alive and converged. Each fault is recorded as a time window (``FAULTS``: from the fault
until the victim is alive everywhere again), and after every test, whatever ran before it, a check
covers that test's events: no member reported failed outside its own fault window (a collateral
false death, or a false death after the victim came back, fails), and every published suspicion
or death was damped as configured (held ``suspect_report_after_s`` / ``failed_confirm_s``). The
last test applies the same check to the whole run, cluster start included.
"""

from __future__ import annotations

import contextlib
import signal
import time
from typing import Any, Iterator

import pytest


from ringrift_cluster.testing.swim_clusters import SwimCluster, wait_for

from ringrift_cluster.config import load_config
from ringrift_cluster.membership.swim import failure_bound_s
from ringrift_cluster.testing import stays_true
from ringrift_cluster.testing.history import Exemption

pytestmark = pytest.mark.integration

N = 10
# Fault windows (monotonic clock, as the events' ``mono``): a death verdict about the victim, or by
# it, inside its window is legitimate; outside it, it is a false death.
FAULTS: list[Exemption] = []


@contextlib.contextmanager
def fault(victim: str) -> Iterator[None]:
    """The block injects a fault into ``victim`` and ends once it is alive everywhere again."""
    start = time.monotonic()
    try:
        yield
    finally:
        FAULTS.append(Exemption(victim, start, time.monotonic(), as_observer=True))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwimCluster]:
    c = SwimCluster(tmp_path_factory.mktemp("swim10"), N)
    c.start()
    try:
        converged(c, 30.0)  # every test starts from a converged cluster, whichever runs first
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def damping(cluster: SwimCluster) -> tuple[float, float]:
    """(suspect_report_after_s, failed_confirm_s) of the preset the cluster runs."""
    swim = load_config(cluster.config_path, env={}, overrides={"node_id": cluster.ids[0]}).swim
    return swim.suspect_report_after_s, swim.failed_confirm_s


def wrong_events(events: dict[str, list[dict[str, Any]]], damping: tuple[float, float]) -> list[str]:
    """Published events that no fault explains: a ``failed`` outside the member's fault window,
    or a suspicion / death published before it was held as long as the view's damping says."""
    suspect_after, failed_after = damping
    out = []
    for observer, seen in events.items():
        for e in seen:
            if e["kind"] == "failed" and not any(x.covers(observer, e["node_id"], e["mono"]) for x in FAULTS):
                out.append(f"{observer} reported {e['node_id']} failed outside any fault window")
            held = e.get("after_s")
            limit = {"suspect": suspect_after, "failed": failed_after}.get(e["kind"])
            if limit is not None and (held is None or held < limit - 1e-3):
                out.append(f"{observer} published {e['kind']} of {e['node_id']} after {held}s, undamped (< {limit}s)")
    return out


@pytest.fixture(autouse=True)
def no_false_failures_in_this_test(cluster: SwimCluster, damping: tuple[float, float]) -> Iterator[None]:
    marks = {n: len(cluster.all_events(n)) for n in cluster.ids}
    yield
    wrong = wrong_events({n: cluster.all_events(n)[marks[n]:] for n in cluster.ids}, damping)
    assert wrong == [], wrong


@pytest.fixture(scope="module")
def bound(cluster: SwimCluster) -> float:
    """The preset's failure bound (what describe() reports as config.failure_timeout)."""
    config = load_config(cluster.config_path, env={}, overrides={"node_id": cluster.ids[0]})
    return failure_bound_s(config.swim)


def converged(c: SwimCluster, timeout: float = 20.0) -> float:
    return wait_for(lambda: c.sees_all_alive(c.alive_ids(), c.ids), timeout,
                    "every node sees every other alive", c.summary)


def test_ten_nodes_converge_with_node_ids_and_metadata(cluster: SwimCluster) -> None:
    converged(cluster, 30.0)
    config = load_config(cluster.config_path, env={}, overrides={"node_id": "n01"})
    for observer in cluster.ids:
        members = cluster.members(observer)
        assert set(members) == set(cluster.ids) - {observer}
        for node_id, m in members.items():
            host = config.hosts[node_id]
            assert (m["host"], m["api_port"], m["role"]) == (host.address, host.api_port, host.role)
            assert m["raft_address"] == f"{host.address}:{host.raft_port}"
            assert m["capabilities"] == list(host.capabilities)
            assert (m["has_gpu"], m["gpu_name"]) == (bool(host.gpu), host.gpu)
            assert m["source"] == "swim" and m["meta"]["swim_address"] == f"127.0.0.1:{host.swim_port}"
        st = cluster.status(observer)
        assert {m["id"] for m in st["members"]} == set(cluster.ids) - {observer}
        assert all(":" not in m["id"] and m["address"].startswith("127.0.0.1:") for m in st["members"])
        assert st["alive_count"] == N - 1 and st["unknown_addresses"] == 0 and st["restarts"] == 0
        assert st["swim_started"] and st["swim_available"] and st["config"]["transport"] == "udp"
        assert {"bind_port", "failure_timeout", "suspicion_timeout", "ping_interval"} <= set(st["config"])


def test_sigkill_is_failed_everywhere_within_bound_and_restart_rejoins(cluster: SwimCluster, bound: float) -> None:
    victim = "n07"
    survivors = [n for n in cluster.ids if n != victim]
    with fault(victim):
        t_kill = time.monotonic()
        cluster.signal(victim, signal.SIGKILL)
        wait_for(lambda: all(cluster.view(n).get(victim) == "failed" for n in survivors), bound + 5,
                 f"{victim} failed on every survivor", lambda: cluster.summary(survivors))
        latest = max(e["mono"] for n in survivors for e in cluster.events(n)
                     if e["node_id"] == victim and e["kind"] == "failed")
        assert latest - t_kill <= bound, f"last survivor reported the death after {latest - t_kill:.1f}s > {bound}s"
        for n in survivors:
            failed = [e for e in cluster.events(n) if e["node_id"] == victim and e["kind"] == "failed"]
            assert len(failed) == 1 and failed[0]["after_s"] is not None  # once per transition
        # A restarted process with the same id comes back at once (a fresh, higher incarnation).
        cluster.spawn(victim)
        took = converged(cluster)
    assert took < 5.0, f"restarted member took {took:.1f}s to be seen alive everywhere"
    for n in survivors:
        assert [e["kind"] for e in cluster.events(n) if e["node_id"] == victim][-1] == "alive"


def test_short_pause_is_at_most_suspect_never_failed(cluster: SwimCluster) -> None:
    victim = "n04"
    survivors = [n for n in cluster.ids if n != victim]
    config = load_config(cluster.config_path, env={}, overrides={"node_id": victim})
    pause = config.swim.suspicion_timeout_s * 0.6
    marks = {n: len(cluster.events(n)) for n in survivors}
    cluster.signal(victim, signal.SIGSTOP)
    time.sleep(pause)  # the scenario itself: the pause is the stimulus, not a wait for a condition
    cluster.signal(victim, signal.SIGCONT)
    converged(cluster, 10.0)
    for n in survivors:
        kinds = [e["kind"] for e in cluster.events(n)[marks[n]:] if e["node_id"] == victim]
        assert "failed" not in kinds, f"{n} declared {victim} failed after a {pause:.1f}s pause: {kinds}"
        assert set(kinds) <= {"suspect", "alive"}
        assert kinds.count("suspect") == kinds.count("alive")


def test_long_pause_fails_then_member_is_back_fast(cluster: SwimCluster, bound: float) -> None:
    victim = "n05"
    survivors = [n for n in cluster.ids if n != victim]
    with fault(victim):
        cluster.signal(victim, signal.SIGSTOP)
        try:
            wait_for(lambda: all(cluster.view(n).get(victim) == "failed" for n in survivors), bound + 5,
                     f"paused {victim} failed everywhere", lambda: cluster.summary(survivors))
        finally:
            cluster.signal(victim, signal.SIGCONT)
        took = converged(cluster, 10.0)
    # swim-p2p alone took 142 s after a 25 s pause; our refutation announces a higher incarnation.
    assert took < 3.0, f"paused member took {took:.1f}s to be alive everywhere again"
    wait_for(lambda: cluster.status(victim).get("pauses_detected", 0) >= 1, 5.0,
             f"{victim} noticed its own pause", lambda: cluster.summary([victim]))


def test_graceful_stop_is_left_everywhere_and_restart_joins(cluster: SwimCluster) -> None:
    victim = "n03"
    survivors = [n for n in cluster.ids if n != victim]
    marks = {n: len(cluster.events(n)) for n in survivors}
    cluster.stop(victim, graceful=True)
    try:
        wait_for(lambda: all(cluster.view(n).get(victim) == "left" for n in survivors), 5.0,
                 f"{victim} left on every survivor", lambda: cluster.summary(survivors))
        for n in survivors:
            kinds = [e["kind"] for e in cluster.events(n)[marks[n]:] if e["node_id"] == victim]
            assert kinds == ["left"], f"{n} saw {kinds} for a graceful stop"
        # The library probes dead members now and then: that must not turn left into failed.
        stays_true(lambda: all(cluster.view(n).get(victim) == "left" for n in survivors), 1.0,
                   what=f"{victim} stays left", describe=lambda: cluster.summary(survivors))
    finally:
        cluster.spawn(victim)  # whatever failed above, the next tests start from ten live nodes
        converged(cluster, 10.0)
    for n in survivors:
        assert [e["kind"] for e in cluster.events(n)[marks[n]:] if e["node_id"] == victim] == ["left", "joined"]


def raw_flaps(cluster: SwimCluster) -> int:
    return sum(cluster.status(n)["raw_flaps"] for n in cluster.ids)


def test_blocked_main_loop_disturbs_nobody(cluster: SwimCluster) -> None:
    """The node's own loop blocked 1.5 s, three times: the engine runs on its own thread.

    Published transitions: none at all. Raw library flaps (refuted suspicions nobody was told of)
    also happen on a quiet, loaded host, so the blocked period is compared with a quiet period of
    the same length measured just before it: the block must add at most one."""
    busy = "n02"
    quiet_from = raw_flaps(cluster)
    stays_true(lambda: cluster.sees_all_alive(cluster.ids, cluster.ids), 4.5, what="a quiet cluster",
               describe=cluster.summary)  # the baseline's measuring period (3 x 1.5 s, as below)
    background = raw_flaps(cluster) - quiet_from
    marks = {n: len(cluster.events(n)) for n in cluster.ids}
    flaps = raw_flaps(cluster)
    for i in range(1, 4):
        cluster.send(busy, "block 1.5")
        wait_for(lambda: len(cluster.lines_of(busy, "unblocked")) >= i, 10.0,
                 f"{busy}'s loop blocked 1.5 s ({i} of 3)", lambda: cluster.summary([busy]))
    converged(cluster)
    for n in cluster.ids:
        news = [(e["kind"], e["node_id"]) for e in cluster.events(n)[marks[n]:]]
        assert news == [], f"{n} saw transitions while {busy}'s main loop was blocked: {news}"
    during = raw_flaps(cluster) - flaps
    assert during <= background + 1, f"{during} raw flaps while {busy}'s loop was blocked, {background} before"


def test_dead_library_task_is_restarted(cluster: SwimCluster) -> None:
    node = "n06"
    marks = {n: len(cluster.events(n)) for n in cluster.ids if n != node}
    cluster.send(node, "kill-task")
    wait_for(lambda: cluster.status(node).get("restarts", 0) >= 1, 10.0, f"{node} restarted its engine",
             lambda: cluster.summary([node]))
    st = cluster.status(node)
    assert "protocol_loop" in (st["last_error"] or "")
    converged(cluster)
    for n, mark in marks.items():
        kinds = [e["kind"] for e in cluster.events(n)[mark:] if e["node_id"] == node]
        assert "failed" not in kinds


def test_no_false_failures_during_the_whole_run(cluster: SwimCluster, damping: tuple[float, float]) -> None:
    """Every event of the run, cluster start included, against the recorded fault windows (run
    alone, there is no window: then no member may have been reported failed at all)."""
    events = {n: cluster.all_events(n) for n in cluster.ids}
    assert sum(len(e) for e in events.values()) >= N * (N - 1), "too few events: every node joins every other"
    assert wrong_events(events, damping) == []
