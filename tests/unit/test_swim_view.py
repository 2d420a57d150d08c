"""The damped view of the SWIM backend: raw library states in, published transitions out."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ringrift_cluster.membership.swim.view import RAW_ALIVE, RAW_DEAD, RAW_SUSPECT, RawObservation, SwimView
from ringrift_cluster.model import EventKind, MemberState

ALIVE, SUSPECT, DEAD = RawObservation(RAW_ALIVE), RawObservation(RAW_SUSPECT), RawObservation(RAW_DEAD)
LEFT = RawObservation(RAW_DEAD, left=True)


def kinds(view: SwimView, now: float, obs: RawObservation, node: str = "b") -> list[str]:
    return [t.kind.value for t in view.observe(now, {node: obs})]


def test_join_then_short_suspicion_is_a_flap_not_an_event() -> None:
    v = SwimView(suspect_report_after_s=1.0, failed_confirm_s=0.5)
    assert kinds(v, 0.0, ALIVE) == ["joined"]
    assert kinds(v, 1.0, SUSPECT) == []
    assert kinds(v, 1.9, SUSPECT) == []
    assert kinds(v, 2.0, ALIVE) == []
    assert v.raw_flaps == 1 and v.refutations == 0
    assert v.states()["b"][0] is MemberState.ALIVE


def test_long_suspicion_then_refuted() -> None:
    v = SwimView(1.0, 0.5)
    kinds(v, 0.0, ALIVE)
    kinds(v, 1.0, SUSPECT)
    [t] = v.observe(2.0, {"b": SUSPECT})
    assert (t.kind, t.after_s) == (EventKind.SUSPECT, 1.0)
    [t] = v.observe(3.5, {"b": ALIVE})
    assert (t.kind, t.after_s) == (EventKind.ALIVE, 1.5)
    assert v.refutations == 1 and v.raw_flaps == 0


def test_dead_is_failed_after_confirmation_once() -> None:
    v = SwimView(1.0, 0.5)
    kinds(v, 0.0, ALIVE)
    kinds(v, 1.0, SUSPECT)
    assert kinds(v, 2.2, SUSPECT) == ["suspect"]
    assert kinds(v, 3.0, DEAD) == []
    [t] = v.observe(3.5, {"b": DEAD})
    assert (t.kind, t.after_s) == (EventKind.FAILED, 2.5)  # silence since the suspicion began
    assert kinds(v, 4.0, DEAD) == [] and v.failures_detected == 1


def test_dead_refuted_within_confirmation_is_never_published() -> None:
    v = SwimView(1.0, 0.5)
    kinds(v, 0.0, ALIVE)
    assert kinds(v, 1.0, DEAD) == []
    assert kinds(v, 1.3, ALIVE) == []
    assert v.raw_flaps == 1 and v.raw_dead_flaps == 1 and v.failures_detected == 0


def test_library_probe_of_a_dead_member_does_not_resurrect_it() -> None:
    v = SwimView(1.0, 0.5)
    kinds(v, 0.0, ALIVE)
    kinds(v, 1.0, DEAD)
    assert kinds(v, 2.0, DEAD) == ["failed"]
    assert kinds(v, 40.0, SUSPECT) == []
    assert kinds(v, 50.0, DEAD) == []
    assert v.states()["b"][0] is MemberState.FAILED
    assert kinds(v, 60.0, ALIVE) == ["alive"]  # really back (a new incarnation)


def test_leave_and_rejoin() -> None:
    v = SwimView(1.0, 0.5)
    kinds(v, 0.0, ALIVE)
    assert kinds(v, 1.0, LEFT) == ["left"]  # no confirmation delay: the member said so
    assert kinds(v, 2.0, SUSPECT) == [] and kinds(v, 3.0, LEFT) == []
    assert kinds(v, 9.0, ALIVE) == ["joined"]
    assert v.leaves_detected == 1


def test_failed_then_leave_marker_becomes_left() -> None:
    v = SwimView(1.0, 0.1)
    kinds(v, 0.0, ALIVE)
    kinds(v, 1.0, DEAD)
    assert kinds(v, 2.0, DEAD) == ["failed"]
    assert kinds(v, 2.5, LEFT) == ["left"]


def test_first_seen_gone_is_silent_and_suspect_is_pending() -> None:
    v = SwimView(1.0, 0.5)
    assert kinds(v, 0.0, SUSPECT) == [] and "b" not in v.states()
    assert kinds(v, 1.0, DEAD) == []
    assert v.states()["b"][0] is MemberState.FAILED
    assert kinds(v, 5.0, ALIVE) == ["joined"]  # subscribers always see joined first


def test_missing_members_keep_their_state() -> None:
    v = SwimView(1.0, 0.5)
    kinds(v, 0.0, ALIVE)
    assert v.observe(10.0, {}) == []
    assert v.states()["b"][0] is MemberState.ALIVE


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 3.0), st.sampled_from([ALIVE, SUSPECT, DEAD, LEFT])), max_size=40))
def test_events_are_transitions_and_joined_comes_first(steps: list[tuple[float, RawObservation]]) -> None:
    v = SwimView(0.75, 0.25)
    now, published, seen = 0.0, None, []
    for dt, obs in steps:
        now += dt
        for t in v.observe(now, {"b": obs}):
            seen.append(t.kind)
            state = {EventKind.JOINED: "alive", EventKind.ALIVE: "alive", EventKind.SUSPECT: "suspect",
                     EventKind.FAILED: "failed", EventKind.LEFT: "left"}[t.kind]
            assert state != published, "an event must change the published state"
            published = state
    if seen:
        assert seen[0] is EventKind.JOINED
    if "b" in v.states() and published is not None:
        assert v.states()["b"][0].value == published


def test_settled_tells_when_a_timer_still_runs() -> None:
    """The engine re-feeds only unsettled members each tick; everything else waits for a change."""
    v = SwimView(1.0, 0.5)
    assert not v.settled("b")  # never seen
    kinds(v, 0.0, ALIVE)
    assert v.settled("b")
    kinds(v, 1.0, SUSPECT)
    assert not v.settled("b")  # suspicion not reported yet
    assert kinds(v, 2.0, SUSPECT) == ["suspect"] and v.settled("b")
    kinds(v, 2.5, DEAD)
    assert not v.settled("b")  # DEAD not confirmed yet
    assert kinds(v, 3.0, DEAD) == ["failed"] and v.settled("b")
    assert kinds(v, 4.0, LEFT) == ["left"] and v.settled("b")
