"""The machine as a whole: envelope, dedup, clock, snapshots, determinism, totality."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ringrift_cluster.errors import ClusterError, ConfigError
from ringrift_cluster.state import ERROR_CODES as EXPORTED_CODES
from ringrift_cluster.state import OPS, Limits, SnapshotError, StateMachine
from ringrift_cluster.state import commands as c
from ringrift_cluster.state import machine as machine_module

ERROR_CODES = {
    "bad_command", "unknown_op", "unsupported_version", "rid_conflict", "not_found",
    "already_exists", "invalid_state", "stale_token", "wrong_node", "lock_held", "not_held",
    "not_holder", "stale_fence", "stale_import", "internal",
}


def test_error_codes_are_exported() -> None:
    assert set(EXPORTED_CODES) == ERROR_CODES


def cmd(op: str, args: dict | None = None, rid: str = "r1", now: float = 1.0, **extra) -> dict:
    return {"v": 1, "op": op, "rid": rid, "now": now, "args": args or {}, **extra}


def roundtrip(data: object) -> object:
    return json.loads(json.dumps(data, allow_nan=False))


def scenario() -> list[dict]:
    """A command sequence touching every op, with fixed rids (stamped, ready to apply)."""
    seq = [
        c.add_work("w1", "train", priority=90, capabilities=["gpu"], config={"a": [1, 2.5]}),
        c.add_work("w2", "selfplay", max_attempts=1),
        c.add_work("w3", "eval", timeout_s=5),
        c.claim_work("n1", capabilities=["gpu"], lease_s=20),
        c.start_work("w1", 1),
        c.renew_work("w1", 1, lease_s=30),
        c.claim_work("n2"),
        c.claim_work("n2"),
        c.fail_work("w2", 2, "boom"),
        c.complete_work("w1", 1, {"games": 3}),
        c.assign_job("j1", "n1", "train", {"x": None}),
        c.assign_job("j2", "n2", "eval"),
        c.start_job("j1"),
        c.complete_job("j1", {"ok": True}),
        c.acquire_lock("L", "n1:j1", 10),
        c.acquire_lock("M", "n2", 100),
        c.register_model("sq8", "1", "s3://1", "sha1", {"elo": 1500.5}),
        c.register_model("sq8", "2", "s3://2", "sha2", fence_lock="L", fence_token=1),
        c.promote_model("sq8", "1", "production"),
        c.promote_model("sq8", "2", "production"),
        c.tick(),
        c.expire_work(),
        c.release_node("n2"),
        c.acquire_lock("L", "n3", 10),
        c.release_lock("L", "n3", 3),
        c.set_limits({"max_finished_work": 5, "dedup_ttl_s": 600}),
        {"v": 1, "op": "work.add", "args": {"work_id": 5}},  # refused, still deterministic
    ]
    return [c.stamp({**command, "rid": f"r{i}"}, 100.0 + 3 * i) for i, command in enumerate(seq)]


# -- envelope ------------------------------------------------------------------------------

@pytest.mark.parametrize("command, code, message", [
    ("not a dict", "bad_command", "command: expected an object"),
    (["v", 1], "bad_command", "command: expected an object"),
    ({"op": "tick", "rid": "r", "now": 1}, "bad_command", "v: missing"),
    (cmd("tick", v=2), "unsupported_version", "v: version 2"),
    (cmd("tick", v=True), "unsupported_version", "v: version True"),
    (cmd("tick", v="1"), "unsupported_version", "v: version '1'"),
    (cmd("tick", v=1.0), "unsupported_version", "v: version 1.0"),
    ({"v": 1, "rid": "r", "now": 1}, "bad_command", "op: expected a string"),
    (cmd("work.explode"), "unknown_op", "op: unknown operation 'work.explode'"),
    (cmd("tick", rid=""), "bad_command", "rid: expected"),
    (cmd("tick", rid=7), "bad_command", "rid: expected"),
    (cmd("tick", rid="x" * 129), "bad_command", "rid: expected"),
    ({"v": 1, "op": "tick", "rid": "r"}, "bad_command", "now: missing"),
    (cmd("tick", now=float("nan")), "bad_command", "now: expected"),
    (cmd("tick", now=float("inf")), "bad_command", "now: expected"),
    (cmd("tick", now=-1), "bad_command", "now: expected"),
    (cmd("tick", now=10**400), "bad_command", "now: expected"),
    (cmd("tick", now=True), "bad_command", "now: expected"),
    (cmd("tick", now="5"), "bad_command", "now: expected"),
    (cmd("tick", args=[1]), "bad_command", "args: expected an object"),
    (cmd("tick", term=4), "bad_command", "'term': unknown field"),
    (cmd("tick", {"x": 1}), "bad_command", "args.x: unknown field"),
])
def test_envelope_refusals(command: object, code: str, message: str) -> None:
    m = StateMachine()
    before = m.snapshot()
    r = m.apply(command)
    assert r["ok"] is False and r["error"] == code, r
    assert r["message"].startswith(message), r["message"]
    if code != "bad_command" or not message.startswith("args."):
        assert m.snapshot() == before  # an unidentifiable command changes nothing


def test_args_may_be_absent_or_none() -> None:
    m = StateMachine()
    assert m.apply({"v": 1, "op": "tick", "rid": "a", "now": 1})["ok"]
    assert m.apply({"v": 1, "op": "tick", "rid": "b", "now": 1, "args": None})["ok"]


def test_internal_errors_become_results(monkeypatch: pytest.MonkeyPatch) -> None:
    m = StateMachine()

    def broken(machine, a):
        raise RuntimeError("bug")

    monkeypatch.setitem(machine_module._HANDLERS, "tick", broken)
    r = m.apply(cmd("tick"))
    assert r == {"ok": False, "error": "internal", "message": "RuntimeError: bug"}


# -- clock ---------------------------------------------------------------------------------

def test_clock_only_moves_forward() -> None:
    m = StateMachine()
    assert m.clock == 0.0
    assert m.apply(cmd("tick", rid="a", now=50))["clock"] == 50.0
    assert m.apply(cmd("tick", rid="b", now=20))["clock"] == 50.0
    assert m.apply(cmd("tick", rid="c", now=51))["clock"] == 51.0
    assert m.clock == 51.0


# -- dedup ---------------------------------------------------------------------------------

def test_retried_command_applies_once_and_returns_cached_result() -> None:
    m = StateMachine()
    m.apply(c.stamp(c.add_work("w1", "t"), 1))
    m.apply(c.stamp(c.add_work("w2", "t"), 1))
    claim = c.claim_work("n1", rid="claim-1")
    first = m.apply(c.stamp(claim, 10))
    retry = m.apply(c.stamp(claim, 12))  # the client timed out and retried later
    assert retry == first and first["claim_token"] == 1 and first["clock"] == 10.0
    assert m.work_stats()["claimed"] == 1 and m.work_stats()["pending"] == 1
    add = c.stamp(c.add_work("w3", "t", rid="add-3"), 13)
    assert m.apply(add) == m.apply(add) == {"ok": True, "work_id": "w3", "status": "pending",
                                            "clock": 13.0}
    assert m.work_stats()["total"] == 3


def test_refusals_are_cached_too() -> None:
    m = StateMachine()
    claim = c.stamp(c.claim_work("n1", rid="c1"), 1)
    assert m.apply(claim)["item"] is None
    m.apply(c.stamp(c.add_work("w", "t"), 2))
    assert m.apply(claim)["item"] is None  # same request, same answer
    assert m.apply(c.stamp(c.claim_work("n1"), 3))["item"]["work_id"] == "w"


def test_cached_result_is_not_aliased() -> None:
    m = StateMachine()
    m.apply(c.stamp(c.add_work("w", "t"), 1))
    claim = c.stamp(c.claim_work("n1", rid="c1"), 1)
    r = m.apply(claim)
    r["item"]["work_id"] = "tampered"
    assert m.apply(claim)["item"]["work_id"] == "w"
    assert m.work_get("w")["claimed_by"] == "n1"


def test_rid_reused_for_another_op_is_refused() -> None:
    m = StateMachine()
    m.apply(c.stamp(c.add_work("w", "t", rid="same"), 1))
    r = m.apply(c.stamp(c.claim_work("n1", rid="same"), 2))
    assert r["error"] == "rid_conflict"
    assert m.work_stats()["claimed"] == 0


def test_dedup_bounded_by_count() -> None:
    m = StateMachine(Limits(dedup_max_entries=3))
    add = c.stamp(c.add_work("w", "t", rid="first"), 1)
    assert m.apply(add)["ok"]
    for i in range(3):
        m.apply(cmd("tick", rid=f"t{i}", now=2))
    assert len(m.snapshot()["dedup"]) == 3
    r = m.apply(add)  # forgotten, so applied again
    assert r["ok"] is False and r["error"] == "already_exists"


def test_dedup_bounded_by_age() -> None:
    m = StateMachine(Limits(dedup_ttl_s=60))
    add = c.stamp(c.add_work("w", "t", rid="first"), 100)
    m.apply(add)
    assert m.apply(c.stamp(add, 159))["ok"]  # still remembered
    assert m.apply(c.stamp(add, 160))["error"] == "already_exists"
    assert list(m.snapshot()["dedup"]) == ["first"]  # the re-application is remembered anew


# -- release_node --------------------------------------------------------------------------

def test_release_node_covers_work_locks_and_jobs() -> None:
    m = StateMachine()
    for command in (c.add_work("w", "t"), c.claim_work("n1"), c.acquire_lock("L", "n1", 30),
                    c.assign_job("j", "n1", "t")):
        assert m.apply(c.stamp(command, 5))["ok"]
    r = m.apply(c.stamp(c.release_node("n1"), 6))
    assert r == {"ok": True, "node_id": "n1", "requeued": ["w"], "locks_released": ["L"],
                 "jobs_failed": ["j"], "clock": 6.0}
    assert m.apply(c.stamp(c.acquire_lock("L", "n2"), 7))["fence_token"] == 2


# -- snapshots and determinism -------------------------------------------------------------

def test_snapshot_roundtrips_through_json_exactly() -> None:
    m = StateMachine(Limits(dedup_max_entries=50))
    for command in scenario():
        m.apply(command)
    snap = m.snapshot()
    assert roundtrip(snap) == snap
    assert json.dumps(roundtrip(snap)) == json.dumps(snap)
    restored = StateMachine.from_snapshot(roundtrip(snap))
    assert restored.snapshot() == snap
    assert json.dumps(restored.snapshot()) == json.dumps(snap)
    assert restored.limits.dedup_max_entries == 50
    assert restored.describe() == m.describe()


def test_snapshot_is_a_copy() -> None:
    m = StateMachine()
    m.apply(c.stamp(c.add_work("w", "t"), 1))
    snap = m.snapshot()
    snap["work"]["items"]["w"]["status"] = "failed"
    assert m.work_get("w")["status"] == "pending"


def test_same_commands_same_snapshot() -> None:
    a, b = StateMachine(), StateMachine()
    ra = [a.apply(command) for command in scenario()]
    rb = [b.apply(json.loads(json.dumps(command))) for command in scenario()]
    assert ra == rb
    assert json.dumps(a.snapshot()) == json.dumps(b.snapshot())


def test_restored_machine_continues_identically() -> None:
    commands = scenario()
    live = StateMachine()
    for command in commands[:12]:
        live.apply(command)
    restored = StateMachine()
    restored.restore(roundtrip(live.snapshot()))
    for command in commands[12:] + commands:  # the tail, then every command retried
        assert live.apply(command) == restored.apply(command)
    assert json.dumps(live.snapshot()) == json.dumps(restored.snapshot())


def test_restore_rejects_garbage_and_leaves_state_alone() -> None:
    m = StateMachine()
    m.apply(c.stamp(c.add_work("w", "t"), 1))
    before = m.snapshot()
    good = m.snapshot()
    bad = [None, {}, {"format": 2}, {**good, "limits": {"dedup_max_entries": 0}},
           {**good, "clock": "x"}, {**good, "counters": {"work": 1}},
           {**good, "work": {"items": {}, "finished": ["w"]}}, {k: good[k] for k in list(good)[:3]}]
    for data in bad:
        with pytest.raises(SnapshotError):
            m.restore(data)
    assert issubclass(SnapshotError, ClusterError)
    assert m.snapshot() == before


def test_limits_validation() -> None:
    with pytest.raises(ConfigError, match="state.dedup_max_entries"):
        Limits(dedup_max_entries=0)
    with pytest.raises(ConfigError, match="state.dedup_ttl_s"):
        Limits(dedup_ttl_s=float("nan"))
    assert Limits(dedup_ttl_s=5).dedup_ttl_s == 5.0


def test_set_limits_changes_what_is_kept_at_once_and_travels_in_snapshots() -> None:
    m = StateMachine()
    for i in range(5):
        m.apply(c.stamp(c.add_work(f"w{i}", "t"), 10.0 + i))
        claim = m.apply(c.stamp(c.claim_work("n"), 10.0 + i))
        assert m.apply(c.stamp(c.complete_work(f"w{i}", claim["claim_token"]), 10.0 + i))["ok"]
    result = m.apply(c.stamp(c.set_limits({"max_finished_work": 2}), 20.0))
    assert result["ok"] and result["limits"]["max_finished_work"] == 2
    assert result["limits"]["dedup_max_entries"] == Limits().dedup_max_entries  # the rest kept
    assert [i["work_id"] for i in m.work_list()] == ["w3", "w4"]  # the oldest finished went
    replica = StateMachine.from_snapshot(roundtrip(m.snapshot()))
    assert replica.limits == m.limits == Limits(max_finished_work=2)


@pytest.mark.parametrize("args, message", [
    ({"max_finished_work": 0}, "args.max_finished_work: expected an integer in [1,"),
    ({"dedup_ttl_s": -1}, "args.dedup_ttl_s: expected a number in (0,"),
    ({"max_finished_work": True}, "args.max_finished_work"),
    ({"max_finished": 5}, "max_finished"),
])
def test_bad_limits_are_refused_and_change_nothing(args: dict, message: str) -> None:
    m = StateMachine(Limits(max_finished_work=7))
    result = m.apply(c.stamp(c.set_limits(args), 1.0))
    assert not result["ok"] and result["error"] == "bad_command" and message in result["message"], result
    assert m.limits == Limits(max_finished_work=7)


# -- commands module -----------------------------------------------------------------------

def test_builders_shape() -> None:
    command = c.add_work("w", "t", priority=3)
    assert command["v"] == 1 and command["op"] == "work.add" and "now" not in command
    assert len(command["rid"]) == 32 and command["rid"] != c.add_work("w", "t")["rid"]
    assert command["args"] == {"work_id": "w", "work_type": "t", "priority": 3}
    stamped = c.stamp(command, 7)
    assert stamped["now"] == 7.0 and "now" not in command and stamped["rid"] == command["rid"]
    assert c.tick(rid="x", now=1) == {"v": 1, "op": "tick", "rid": "x", "args": {}, "now": 1.0}
    assert c.register_model("m", 3, "u", "s")["args"]["version"] == "3"
    ops = {c.add_work("w", "t")["op"], c.claim_work("n")["op"], c.start_work("w", 1)["op"],
           c.renew_work("w", 1)["op"], c.complete_work("w", 1)["op"], c.fail_work("w", 1)["op"],
           c.expire_work()["op"], c.assign_job("j", "n", "t")["op"], c.start_job("j")["op"],
           c.complete_job("j")["op"], c.fail_job("j")["op"],
           c.register_model("m", "1", "u", "s")["op"], c.promote_model("m", "1", "archived")["op"],
           c.acquire_lock("L", "n")["op"], c.renew_lock("L", "n", 1)["op"],
           c.release_lock("L", "n", 1)["op"], c.release_node("n")["op"], c.tick()["op"],
               c.import_state({})["op"], c.seal("s")["op"], c.set_limits({})["op"]}
    assert ops == set(OPS)


# -- totality: nothing thrown at apply makes it raise --------------------------------------

ARG_NAMES = ["work_id", "work_type", "priority", "config", "capabilities", "max_attempts",
             "timeout_s", "node_id", "work_types", "lease_s", "claim_token", "result", "error",
             "retry", "job_id", "job_type", "name", "version", "uri", "checksum", "metrics",
             "stage", "fence", "holder", "ttl_s", "fence_token", "lock", "token",
             "max_finished_work", "dedup_max_entries", "dedup_ttl_s"]

scalars = (st.none() | st.booleans() | st.integers() | st.integers(-3, 3)
           | st.floats(allow_nan=True, allow_infinity=True) | st.floats(0, 1e4)
           | st.text(max_size=6) | st.sampled_from(["w", "n1", "L", "gpu", "production", "t"])
           | st.binary(max_size=4) | st.builds(object))
values = st.recursive(
    scalars,
    lambda children: (st.lists(children, max_size=4) | st.tuples(children, children)
                      | st.dictionaries(st.sampled_from(ARG_NAMES) | st.text(max_size=4)
                                        | st.integers(), children, max_size=4)),
    max_leaves=12,
)
well_formed_args = st.dictionaries(st.sampled_from(ARG_NAMES), values, max_size=6)


def _check(result: object) -> None:
    assert type(result) is dict and type(result["ok"]) is bool
    if not result["ok"]:
        assert result["error"] in ERROR_CODES and isinstance(result["message"], str)
    assert roundtrip(result) == result


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(values, st.dictionaries(st.sampled_from(["v", "op", "rid", "now", "args"])
                                         | st.text(max_size=3), values, max_size=6)))
def test_apply_never_raises_on_anything(command: object) -> None:
    m = StateMachine()
    _check(m.apply(command))
    assert roundtrip(m.snapshot()) == m.snapshot()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(OPS), well_formed_args, st.floats(0, 100),
                          st.sampled_from(["a", "b", "c", "d"])), max_size=12))
def test_random_args_never_raise_and_stay_deterministic(steps: list) -> None:
    a = StateMachine(Limits(max_finished_work=2, dedup_max_entries=3))
    for command in (c.add_work("w", "t", rid="s1", now=0), c.claim_work("n1", rid="s2", now=0),
                    c.acquire_lock("L", "n1", rid="s3", now=0)):
        a.apply(command)
    b = StateMachine.from_snapshot(roundtrip(a.snapshot()))  # a replica restored from disk
    for op, args, now, rid in steps:
        command = {"v": 1, "op": op, "rid": rid, "now": now, "args": args}
        ra = a.apply(command)
        _check(ra)
        assert ra["ok"] or ra["error"] != "internal", ra
        assert b.apply(command) == ra
    snap = a.snapshot()
    assert b.snapshot() == snap
    assert roundtrip(snap) == snap
    assert StateMachine.from_snapshot(roundtrip(snap)).snapshot() == snap
    productions = {}
    for model in a.models_list(stage="production"):
        productions[model["name"]] = productions.get(model["name"], 0) + 1
    assert all(n == 1 for n in productions.values())


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["acquire", "renew", "release", "tick", "node"]),
                          st.sampled_from(["n1", "n2", "n1:j"]), st.floats(0, 30),
                          st.integers(1, 8)), max_size=25))
def test_fence_tokens_never_repeat(steps: list) -> None:
    m = StateMachine()
    now, seen = 0.0, []
    for i, (kind, holder, dt, token) in enumerate(steps):
        now += dt
        builders = {
            "acquire": lambda: c.acquire_lock("L", holder, 10),
            "renew": lambda: c.renew_lock("L", holder, token),
            "release": lambda: c.release_lock("L", holder, token),
            "tick": c.tick,
            "node": lambda: c.release_node(holder.split(":")[0]),
        }
        r = m.apply(c.stamp({**builders[kind](), "rid": str(i)}, now))
        assert r["ok"] or r["error"] in ERROR_CODES
        if kind == "acquire" and r["ok"] and not r["renewed"]:
            seen.append(r["fence_token"])
    assert seen == sorted(seen) and len(set(seen)) == len(seen)


# -- random but plausible histories: invariants, determinism across restore ----------------

ids = st.sampled_from(["a", "b", "c"])
nodes = st.sampled_from(["n1", "n2", "n3"])
caps = st.lists(st.sampled_from(["gpu", "cpu"]), max_size=2)
plausible = st.one_of(
    st.builds(c.add_work, ids, st.sampled_from(["train", "eval"]), priority=st.integers(0, 3),
              capabilities=caps, max_attempts=st.integers(1, 3), timeout_s=st.floats(1, 20)),
    st.builds(c.claim_work, nodes, capabilities=caps, lease_s=st.none() | st.floats(1, 20)),
    st.builds(c.start_work, ids, st.integers(1, 6)),
    st.builds(c.renew_work, ids, st.integers(1, 6)),
    st.builds(c.complete_work, ids, st.integers(1, 6), st.none() | st.integers(-2**63, 2**63 - 1)),
    st.builds(c.fail_work, ids, st.integers(1, 6), retry=st.booleans()),
    st.builds(c.assign_job, ids, nodes, st.just("train")),
    st.builds(c.start_job, ids), st.builds(c.complete_job, ids), st.builds(c.fail_job, ids),
    st.builds(c.register_model, st.sampled_from(["m", "k"]), st.sampled_from(["1", "2", "3"]),
              st.just("s3://x"), st.just("sha")),
    st.builds(c.promote_model, st.sampled_from(["m", "k"]), st.sampled_from(["1", "2", "3"]),
              st.sampled_from(["candidate", "production", "archived"])),
    st.builds(c.acquire_lock, st.sampled_from(["L", "M"]), nodes, st.floats(1, 20)),
    st.builds(c.renew_lock, st.sampled_from(["L", "M"]), nodes, st.integers(1, 6)),
    st.builds(c.release_lock, st.sampled_from(["L", "M"]), nodes, st.integers(1, 6)),
    st.builds(c.release_node, nodes), st.builds(c.tick), st.builds(c.expire_work),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(plausible, st.floats(-5, 10), st.booleans()), max_size=40),
       st.integers(0, 40))
def test_plausible_histories(steps: list, cut: int) -> None:
    limits = Limits(max_finished_work=2, max_finished_jobs=2, dedup_max_entries=5,
                    max_versions_per_model=2)
    live, replica, restored = StateMachine(limits), StateMachine(limits), None
    now, commands = 100.0, []
    for i, (command, dt, retry) in enumerate(steps):
        now += dt  # proposers' clocks disagree: now sometimes goes backwards
        rid = f"r{i - 1}" if retry and i else f"r{i}"  # sometimes a retry of the previous rid
        commands.append(c.stamp({**command, "rid": rid}, now))
    for i, command in enumerate(commands):
        if i == cut:
            restored = StateMachine.from_snapshot(roundtrip(live.snapshot()))
        result = live.apply(command)
        _check(result)
        assert result["ok"] or result["error"] not in ("internal", "bad_command"), result
        assert replica.apply(roundtrip(command)) == result
        if restored is not None:
            assert restored.apply(command) == result
        _invariants(live)
    snap = live.snapshot()
    assert roundtrip(snap) == snap and replica.snapshot() == snap
    if restored is not None:
        assert restored.snapshot() == snap


def _invariants(m: StateMachine) -> None:
    clock = m.clock
    stats = m.work_stats()
    assert stats["total"] == len(m.work_list())
    assert stats["completed"] + stats["failed"] <= 2
    assert m.job_stats()["completed"] + m.job_stats()["failed"] <= 2
    tokens = [i["claim_token"] for i in m.work_list() if i["status"] in ("claimed", "running")]
    assert len(tokens) == len(set(tokens))
    for item in m.work_list():
        leased = item["status"] in ("claimed", "running")
        assert (item["expires_at"] is not None) == leased
        if leased:
            assert item["expires_at"] > clock
        assert item["attempts"] <= item["max_attempts"]
    for lock in m.locks_list():
        assert lock["expires_at"] > clock
    for name in ("m", "k"):
        assert len(m.models_list(name, "production")) <= 1
        assert len(m.models_list(name)) <= 2
    assert len(m.snapshot()["dedup"]) <= 5
