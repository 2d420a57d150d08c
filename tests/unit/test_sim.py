"""The SWIM simulator against closed forms it must reproduce, and its determinism."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("numpy")

from ringrift_cluster.sim import formulas  # noqa: E402
from ringrift_cluster.sim.engine import DEAD, SUSPECT, Sim  # noqa: E402
from ringrift_cluster.sim.params import Model, protocol_for  # noqa: E402
from ringrift_cluster.sim.scenario import Scenario, run  # noqa: E402
from ringrift_cluster.sim.sizes import measure  # noqa: E402

QUIET = Model(latency_s=0.0002, cycle_overhead_s=0.0, cycle_overhead_per_member_s=0.0)


def make(n: int, seed: int = 1, model: Model = QUIET, preset: str = "lan") -> Sim:
    p = protocol_for(preset)
    return Sim(n, p, model, measure(n, True, p.gossip_fanout, p.packet_budget_bytes), seed=seed)


def test_first_probe_periods_match_swim_closed_form() -> None:
    """SWIM: a member is probed by someone in a protocol period with probability
    1 - (1 - 1/(N-1))^(N-1), so the periods to its first probe are geometric with mean
    1/(that) -> e/(e-1). Measured over every member's periods in a quiet run."""
    n = 100
    sim = make(n, seed=5)
    probed: dict[int, set[int]] = {}
    period = sim.p.protocol_period_s

    def on_probe(i: int, j: int) -> None:
        probed.setdefault(j, set()).add(int(sim.now // period))

    sim.on_probe = on_probe
    sim.start()
    windows = 200
    sim.run_until(windows * period + 1)
    hit = sum(len([w for w in probed.get(j, ()) if 1 <= w <= windows]) for j in range(n)) / (n * windows)
    expected = 1.0 - (1.0 - 1.0 / (n - 1)) ** (n - 1)
    assert abs(hit - expected) < 0.02, (hit, expected)
    assert abs(1.0 / hit - formulas.first_probe_periods(n)) < 0.06
    assert abs(formulas.first_probe_periods(10**6) - math.e / (math.e - 1)) < 1e-3


def _spread_time(n: int, seed: int) -> float:
    """Seconds for one change (a death the first node holds) to reach 99 % of the others."""
    sim = make(n, seed=seed)
    victim = n - 1
    reached: list[float] = []
    sim.on_merge = lambda o, s, st: reached.append(sim.now) if s == victim and st == DEAD and o != 0 else None
    sim.start()
    sim.run_until(0.5)
    sim.running[victim] = False
    sim.killed_at[victim] = sim.now
    sim._set(0, victim, DEAD, 5)  # node 0 learns the death (as from its own timeout)
    sim.run_until(60)
    need = math.ceil(0.99 * (n - 2))
    assert len(reached) >= need
    return sorted(reached)[need - 1] - 0.5


def test_dissemination_grows_as_log_n() -> None:
    """Gossip reaches 99 % in O(log N) rounds: 10x the members costs a bounded number of extra
    rounds (Serf's model: rounds ~ ln N / fan-out), not 10x the time; and the simulated spread is
    no slower than the Serf model's rounds without the 48-member head start."""
    small = sum(_spread_time(100, s) for s in (1, 2, 3)) / 3
    large = sum(_spread_time(1000, s) for s in (1, 2, 3)) / 3
    assert large < 10 * small / 3, (small, large)
    extra_rounds = formulas.serf_rounds(1000, 0.99, 3) - formulas.serf_rounds(100, 0.99, 3)
    assert large - small < extra_rounds + 1.5, (small, large, extra_rounds)
    assert large <= formulas.serf_rounds(1000, 0.99, 3) + 1.0


def test_suspicion_turns_dead_after_the_timeout_and_not_before() -> None:
    """The library's rule on the engine's tick: SUSPECT -> DEAD once it lasted
    ``suspicion_timeout_s`` (within one tick), never earlier; a refutation in time prevents it."""
    sim = make(20, seed=3)
    timeline: list[tuple[float, int, int, int]] = []
    sim.on_merge = lambda o, s, st: timeline.append((sim.now, o, s, st))
    sim.start()
    sim.kill(7, 1.0)
    sim.run_until(30)
    t = sim.p.suspicion_timeout_s
    suspected = {o: when for when, o, s, st in timeline if s == 7 and st == SUSPECT}
    dead = {o: when for when, o, s, st in timeline if s == 7 and st == DEAD}
    originators = [o for o in suspected if o in dead and dead[o] - suspected[o] >= t]
    assert originators, "someone declared the dead member itself"
    for o in originators:
        assert t <= dead[o] - suspected[o] <= t + sim.m.tick_s + 1e-9
    for o, when in dead.items():  # nobody declares it before a full timeout from the first suspicion
        assert when - min(suspected.values()) >= t - 1e-9 or o not in suspected

    # A member that answers again within the timeout refutes: never DEAD anywhere.
    sim = make(20, seed=4)
    sim.start()
    sim.stall(5, 2.0, 1.5)  # long enough to be suspected, far shorter than the timeout
    sim.run_until(30)
    assert 5 not in sim.c.failed_events_about


def test_same_seed_same_result() -> None:
    sc = Scenario(n=60, loss=0.02, stall_fraction=0.05, kills=2, seed=11, loopback=True, model=QUIET)
    a, b = run(sc), run(sc)
    for r in (a, b):
        r.pop("wall_s")
    assert a == b
    c = run(Scenario(n=60, loss=0.02, stall_fraction=0.05, kills=2, seed=12, loopback=True, model=QUIET))
    c.pop("wall_s")
    assert c != a


def test_idle_traffic_follows_the_protocol() -> None:
    """Per node per second, sent + received: fan-out heartbeats each way, one PING and one PONG
    each way, and nothing over the packet budget."""
    r = run(Scenario(n=40, kills=1, seed=2, loopback=True, model=QUIET))
    period = protocol_for("lan").protocol_period_s
    assert r["by_type"]["HEARTBEAT"]["msgs_per_node_s"] == pytest.approx(2 * 3 / period, rel=0.03)
    assert r["by_type"]["PING"]["msgs_per_node_s"] == pytest.approx(2 / period, rel=0.03)
    assert r["max_datagram_b"] <= 1400
    assert r["undetected"] == 0 and r["false_deaths"] == 0


def test_loss_raises_suspicions_at_the_closed_form_rate() -> None:
    """swim-p2p suspects when every ping attempt of a probe failed: at loss p, a fraction
    (1 - (1 - p)^2)^retries of the probes, one probe per member per cycle (a cycle is a period
    plus its pings and work: counted, not assumed). Three seeds, so the count is not one draw."""
    n, loss, seconds = 200, 0.05, 60.0
    raised, probes = 0, 0
    for seed in (9, 10, 11):
        sim = make(n, seed=seed, model=QUIET.with_(loss=loss))
        sim.start()
        sim.run_until(seconds)
        raised += sim.c.suspicions_raised
        probes += int(sim.cycles.sum())
    per_probe = formulas.suspicion_rate(1, loss, 1.0, sim.p.ping_retries)
    assert raised == pytest.approx(per_probe * probes, rel=0.15), (raised, per_probe * probes)
    assert formulas.suspicion_rate(n, loss, sim.p.protocol_period_s, sim.p.ping_retries) == pytest.approx(
        n * per_probe / sim.p.protocol_period_s)
    assert sim.c.refutations > 0.8 * sim.c.suspicions_raised  # nearly every suspect hears it and refutes


def _declared_dead_everywhere(tell: bool) -> Sim:
    """Member 5 is alive but every other member holds it DEAD (a healed partition), then 4 s."""
    sim = make(20, seed=6, model=QUIET.with_(tell_the_dead=tell))
    sim.start()
    sim.run_until(2.5)
    for o in range(20):
        if o != 5:
            sim._set(o, 5, DEAD, 3)
    sim.run_until(6.5)
    return sim


def test_a_member_held_dead_but_heard_from_is_told_and_refutes() -> None:
    """``swim_hooks.tell_the_dead``: whoever holds a member DEAD yet receives its datagrams sends
    it its own entry; it refutes above the death and announces, so every view is ALIVE again
    within seconds. Without the hook it stays DEAD: heartbeats skip DEAD members, and the library
    probes them only now and then."""
    told = _declared_dead_everywhere(tell=True)
    assert told.c.dead_told > 0 and told.c.refutations >= 1
    views = [told.views.get(o, 5) for o in range(20) if o != 5]
    assert all(k & 3 == 0 and k >> 2 > 3 for k in views), views

    untold = _declared_dead_everywhere(tell=False)
    assert untold.c.dead_told == 0
    still_dead = sum(untold._view(o, 5) == DEAD for o in range(20) if o != 5)
    assert still_dead >= 15, still_dead


def test_cold_start_announces_cover_every_pair_from_the_later_starter() -> None:
    """A node announces its own entry to 48 random members on start, and a datagram to a member
    not started yet is lost. With at most 49 members starting one after another at the same
    instant, each pair is covered by the later starter's announce only: right after the starts,
    before any heartbeat or sync, the views hold exactly N + N(N-1)/2 of the N^2 entries."""
    from ringrift_cluster.sim.coldstart import cold_start
    n = 40
    r = cold_start(n, start_window_s=0.0)
    assert r["curve"][0] == (0.0, round((n + n * (n - 1) / 2) / n**2, 4))
    assert r["converged"] and r["converge_s"] > 0


def test_cold_start_converges_through_gossip_and_anti_entropy_and_is_deterministic() -> None:
    """Beyond the announce's reach a view fills from heartbeats (own entry + piggyback) and the
    joiner's full pulls; the last few entries wait on the slowest path, so 99 % of views come well
    before every view is complete. Same seed, same run."""
    from ringrift_cluster.sim.coldstart import cold_start
    a = cold_start(300, start_window_s=2.0, seed=3)
    assert a["converged"]
    assert 0 < a["views_99_s"] < a["converge_s"]
    assert a["max_datagram_b"] <= 1400
    b = cold_start(300, start_window_s=2.0, seed=3)
    for r in (a, b):
        r.pop("wall_s")
    assert a == b



def test_a_run_from_the_fitted_model_measures_nothing_at_run_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The report's figures repeat in any process: the one input measured on the machine (the
    per-member cycle cost, costs.py) is pinned in the fitted model, so a run never measures it;
    a run that did would vary with the machine's load, and chaotically so."""
    from ringrift_cluster.sim import calibrate, engine

    def measured(*_: object) -> float:
        raise AssertionError("a run from the fitted model measured the cycle cost")

    monkeypatch.setattr(engine, "cycle_scan_per_member_s", measured)
    model = calibrate.fitted_model()
    assert model.cycle_overhead_per_member_s is not None
    assert run(Scenario(n=30, loopback=True, kills=2, seed=4, model=model))["detection_p50_s"] is not None
