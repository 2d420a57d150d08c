"""The Wing-Gong-Lowe search for a linearization of one key's history (porcupine's algorithm).

The history becomes a list of call and return events in time order. The search walks it: at a
call it tries to take that operation effect now (the model allows its answer from the current
state, and this set of operations done with this state was not tried before), else it moves on
to the next call; reaching a return means that operation must already have taken effect, so it
backs up to the last choice and tries the next one. The state is the set of states the key may
be in (the model may have several successors: an operation with an unknown outcome).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .history import Operation
from .models import Model


@dataclass
class Outcome:
    ok: bool
    longest: list[int]  # the longest linearized prefix found (operation indexes, in order)
    steps: int  # search steps taken (a measure of the work)


class _Event:
    __slots__ = ("op", "is_call", "time", "prev", "next", "match")

    def __init__(self, op: int, is_call: bool, time: float) -> None:
        self.op, self.is_call, self.time = op, is_call, time
        self.prev: _Event | None = None
        self.next: _Event | None = None
        self.match: _Event | None = None  # a call's return event


def _step(model: Model, states: frozenset, op: Operation) -> frozenset:
    out: set[Any] = set()
    for s in states:
        out.update(model.step(s, op))
    return frozenset(out)


def linearize(model: Model, ops: list[Operation], max_steps: int = 2_000_000) -> Outcome:
    """Whether ``ops`` is linearizable under ``model``; ``ok`` is also False past ``max_steps``
    (the caller tells the two apart by ``steps``)."""
    events: list[_Event] = []
    for i, op in enumerate(ops):
        call, ret = _Event(i, True, op.call), _Event(i, False, op.ret)
        call.match = ret
        events += [call, ret]
    # Calls before returns at the same instant: operations that touch in time count as concurrent.
    events.sort(key=lambda e: (e.time, not e.is_call))
    head = _Event(-1, True, float("-inf"))
    prev = head
    for e in events:
        prev.next, e.prev, prev = e, prev, e

    def lift(call: _Event) -> None:  # unlink a call and its return
        for e in (call, call.match):
            e.prev.next = e.next  # type: ignore[union-attr]
            if e.next is not None:
                e.next.prev = e.prev

    def unlift(call: _Event) -> None:
        for e in (call.match, call):
            e.prev.next = e  # type: ignore[union-attr]
            if e.next is not None:
                e.next.prev = e

    states = frozenset([model.init])
    stack: list[tuple[_Event, frozenset]] = []
    tried: set[tuple[int, frozenset]] = set()
    longest: list[int] = []
    entry = head.next
    steps = 0
    mask = 0
    while head.next is not None:
        steps += 1
        if steps > max_steps:
            return Outcome(False, longest, steps)
        assert entry is not None
        if entry.is_call:
            after = _step(model, states, ops[entry.op])
            key = (mask | (1 << entry.op), after)
            if after and key not in tried:
                tried.add(key)
                stack.append((entry, states))
                states, mask = after, mask | (1 << entry.op)
                lift(entry)
                if len(stack) > len(longest):
                    longest = [e.op for e, _ in stack]
                entry = head.next
            else:
                entry = entry.next
        else:  # a return whose call has not taken effect: undo the last choice
            if not stack:
                return Outcome(False, longest, steps)
            call, states = stack.pop()
            mask &= ~(1 << call.op)
            unlift(call)
            entry = call.next
    return Outcome(True, [e.op for e, _ in stack], steps)


__all__ = ["Outcome", "linearize"]
