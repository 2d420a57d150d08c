"""A member held dead but still heard from is told so (it then refutes), once a second at most."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from ringrift_cluster.membership.swim import hooks as swim_hooks


@dataclass
class FakeMember:
    addr: tuple[str, int]
    is_dead: bool
    last_state_change: float
    metadata: dict[str, Any] = field(default_factory=dict)


def engine(heard: dict) -> Any:
    """The engine's parts ``tell_the_dead`` uses; the digest it would send is recorded."""
    sent: list[tuple[list, list]] = []
    return SimpleNamespace(stats=SimpleNamespace(last_heard=heard), _told_dead={}, status=SimpleNamespace(dead_told=0),
                           _send_digest=lambda addrs, targets: (addrs, targets), _own_task=sent.append, sent=sent)


def test_only_a_dead_member_heard_since_its_death_is_told_and_not_more_than_once_a_second() -> None:
    now_mono, now_wall = time.monotonic(), time.time()
    died = now_wall - 10
    back = ("10.0.0.3", 7947)  # dead here, heard from 2 s ago: alive and does not know
    old = ("10.0.0.4", 7947)  # dead here, last heard before it was declared dead
    left = ("10.0.0.5", 7947)  # left gracefully: never told
    alive = ("10.0.0.6", 7947)
    members = [FakeMember(back, True, died), FakeMember(old, True, died), FakeMember(left, True, died, {"left": True}),
               FakeMember(alive, False, died)]
    heard = {back: now_mono - 2, old: now_mono - 12, left: now_mono - 1, alive: now_mono - 1}
    eng = engine(heard)
    node = SimpleNamespace(members=SimpleNamespace(get_all_members=lambda exclude_self: members))
    assert swim_hooks.tell_the_dead(eng, node, now_mono) == 1
    assert eng.sent == [([back], [back])] and eng.status.dead_told == 1
    assert swim_hooks.tell_the_dead(eng, node, now_mono + 0.5) == 0  # told half a second ago
    assert swim_hooks.tell_the_dead(eng, node, now_mono + 1.01) == 1  # still not refuted: again
    assert eng.status.dead_told == 2


def test_one_member_held_dead_is_reached_every_two_seconds_or_so_and_left_ones_never() -> None:
    """Both sides of a healed partition hold each other dead: ``reach_the_dead`` sends our entry
    to one of them (jittered every 1-3 s), so that it hears from us and the two refute."""
    me = ("10.0.0.1", 7947)
    dead = [("10.0.0.3", 7947), ("10.0.0.4", 7947)]
    left = ("10.0.0.5", 7947)
    members = [FakeMember(a, True, 0.0) for a in dead] + [FakeMember(left, True, 0.0, {"left": True}),
                                                        FakeMember(("10.0.0.6", 7947), False, 0.0)]
    eng = engine({})
    eng.plan, eng._next_reach_dead, eng.status.dead_reached = SimpleNamespace(self_addr=me), 0.0, 0
    node = SimpleNamespace(members=SimpleNamespace(get_all_members=lambda exclude_self: members))
    sent_at = [t / 10 for t in range(600) if swim_hooks.reach_the_dead(eng, node, t / 10)]  # 60 s of ticks
    gaps = [b - a for a, b in zip(sent_at, sent_at[1:])]
    assert sent_at[0] == 0.0 and 20 <= len(sent_at) <= 60 and all(0.9 <= g <= 3.1 for g in gaps), sent_at
    assert all(addrs == [me] and len(targets) == 1 and targets[0] in dead for addrs, targets in eng.sent), eng.sent
    assert {targets[0] for _, targets in eng.sent} == set(dead)  # a random one each time, never the left one
    assert eng.status.dead_reached == len(sent_at)
    members[:2] = []  # they refuted: nobody left to reach
    assert not swim_hooks.reach_the_dead(eng, node, 100.0)
