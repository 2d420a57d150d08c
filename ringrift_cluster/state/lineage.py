"""Where a state comes from: the lineage that decides which of two states is newer.

A state's lineage is its **seals** (one per leader period it went through, oldest first, the
last ``MAX_SEALS`` kept), each with the change count at which it was made, and its **changes**
(the machine's ``change`` counter).

A leader seals once, when it takes over and before it serves a write: it has gathered the
candidate states of the other members, imported the newest if it was ahead of its own, and then
appends a fresh seal id. An import copies the lineage of the state it imports. Within one leader
period the changes are one leader's, in one order, so two states with the same last seal differ
only in how far they got. Hence ``contains(a, b)`` (``a`` holds every change ``b`` holds):

- ``a`` went through one of ``b``'s seals made after ``b``'s last change (a leader that sealed
  and wrote nothing), or through ``b``'s last seal before its last change, and then stayed in
  that period at least until ``b``'s count (``a``'s next seal was made at a count >= ``b``'s, or
  it has none and its own count is >= ``b``'s);
- ``b`` with no seal at all: ``a`` reached ``b``'s count before its first seal.

``a`` is AHEAD of ``b`` when it contains ``b`` and not the reverse; both ways: SAME; neither:
DIVERGED (a leader sealed and wrote without hearing from the holder of the other).

Invariant (why no acknowledged write is ever overwritten): an import replaces a state only by
one that contains it, so every change of the replaced state, acknowledged or not, is in the new
one. What can be lost is what a leader never heard of: the state of a member that was down for
the whole gather (the gather waits for every member, within a bound, when a switch is in sight);
such a state diverges from the one the cluster went on with, so it never overwrites it either.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

MAX_SEALS = 64
Seal = tuple[str, int]  # (id, change count when it was made)


class Relation(str, enum.Enum):
    SAME = "same"
    AHEAD = "ahead"
    BEHIND = "behind"
    DIVERGED = "diverged"


@dataclass(frozen=True)
class Lineage:
    seals: tuple[Seal, ...] = ()
    changes: int = 0

    @property
    def head(self) -> str | None:
        return self.seals[-1][0] if self.seals else None

    def to_dict(self) -> dict[str, Any]:
        return {"seals": [list(seal) for seal in self.seals], "changes": self.changes}

    @classmethod
    def from_dict(cls, data: Any) -> "Lineage":
        """Raises ValueError on anything but ``{"seals": [[id, count], ...], "changes": n}``."""
        if not isinstance(data, Mapping):
            raise ValueError("lineage: expected an object")
        seals, changes = data.get("seals"), data.get("changes")
        if type(changes) is not int or changes < 0:
            raise ValueError("lineage.changes: expected an integer >= 0")
        if not isinstance(seals, list):
            raise ValueError("lineage.seals: expected a list")
        parsed: list[Seal] = []
        for seal in seals:
            if not (isinstance(seal, (list, tuple)) and len(seal) == 2 and isinstance(seal[0], str) and seal[0]
                    and type(seal[1]) is int and 0 <= seal[1] <= changes):
                raise ValueError("lineage.seals: expected [id, count] pairs with count <= changes")
            parsed.append((seal[0], seal[1]))
        return cls(tuple(parsed[-MAX_SEALS:]), changes)

    def sealed(self, seal_id: str) -> "Lineage":
        return Lineage((self.seals + ((seal_id, self.changes),))[-MAX_SEALS:], self.changes)

    def __str__(self) -> str:
        return f"{self.head or '-'}+{self.changes}"


def of_snapshot(snapshot: Mapping[str, Any]) -> Lineage:
    """The lineage a machine snapshot carries (snapshots from before lineages: no seals)."""
    counters = snapshot.get("counters")
    changes = counters.get("change") if isinstance(counters, Mapping) else None
    return Lineage.from_dict({"seals": snapshot.get("seals", []), "changes": changes})


def contains(a: Lineage, b: Lineage) -> bool:
    """Whether ``a`` holds every change ``b`` holds (see the module docstring)."""
    ids = [seal_id for seal_id, _ in a.seals]
    for seal_id, count in reversed(b.seals):
        if seal_id in ids:
            i = ids.index(seal_id)
            until = a.seals[i + 1][1] if i + 1 < len(a.seals) else a.changes
            return until >= b.changes
        if count < b.changes:
            return False  # b wrote after this seal, and a never went through it
    first = a.seals[0][1] if a.seals else a.changes  # b's changes are all from before any seal
    return first >= b.changes


def relation(a: Lineage, b: Lineage) -> Relation:
    """What ``a`` is to ``b``."""
    a_has_b, b_has_a = contains(a, b), contains(b, a)
    if a_has_b and b_has_a:
        return Relation.SAME
    if a_has_b:
        return Relation.AHEAD
    return Relation.BEHIND if b_has_a else Relation.DIVERGED


def is_newer(candidate: Lineage, current: Lineage) -> bool:
    """Whether ``candidate`` may replace ``current``."""
    return relation(candidate, current) is Relation.AHEAD


def newest(lineages: Iterable[Lineage]) -> Lineage | None:
    """The candidate no other is ahead of; among diverged ones (which no rule can order) the
    one with more changes, then the greater last seal id, so every node picks the same."""
    best: Lineage | None = None
    for lineage in lineages:
        if best is None:
            best = lineage
            continue
        rel = relation(lineage, best)
        if rel is Relation.AHEAD or (rel is Relation.DIVERGED
                                     and (lineage.changes, lineage.head or "") > (best.changes, best.head or "")):
            best = lineage
    return best
