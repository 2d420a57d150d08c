"""Where a state comes from: the lineage that decides which of two states is newer.

A state's lineage is its **seals** (the ids of the leader periods it went through, oldest first,
the last ``MAX_SEALS`` kept) and its **changes** (the machine's ``change`` counter).

A leader seals once, when it takes over and before it serves a write: it has gathered the
candidate states of the other members, imported the newest if it was ahead of its own, and then
appends a fresh seal id. An import copies the lineage of the state it imports. So:

- two states with the same last seal are the same leader period: the one with more changes saw
  more of it (``AHEAD`` / ``BEHIND``; equal changes: ``SAME``);
- a state whose seals contain the other's last seal continued from it into later periods:
  ``AHEAD``, whatever the counts;
- otherwise the two histories **diverged** (a leader sealed without hearing from the holder of
  the other): neither replaces the other; the running store keeps its own.

Invariant (why no acknowledged write is ever overwritten): every write is applied after its
leader's seal, so the state holding it has that seal as its last one or in its list. An import
replaces a state only by one that is ``AHEAD`` of it, that is, one whose history contains the
replaced state's last seal and everything after it; a state that did not see a write can only
be ``BEHIND`` or ``DIVERGED`` from the one that did, so it never replaces it. What can be lost is
what a leader never heard of: the state of a member that was down for the whole gather (the
gather waits for every member, within a bound, whenever a switch is in sight).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

MAX_SEALS = 32


class Relation(str, enum.Enum):
    SAME = "same"
    AHEAD = "ahead"
    BEHIND = "behind"
    DIVERGED = "diverged"


@dataclass(frozen=True)
class Lineage:
    seals: tuple[str, ...] = ()
    changes: int = 0

    @property
    def head(self) -> str | None:
        return self.seals[-1] if self.seals else None

    def to_dict(self) -> dict[str, Any]:
        return {"seals": list(self.seals), "changes": self.changes}

    @classmethod
    def from_dict(cls, data: Any) -> "Lineage":
        """Raises ValueError on anything but ``{"seals": [str, ...], "changes": int >= 0}``."""
        if not isinstance(data, Mapping):
            raise ValueError("lineage: expected an object")
        seals, changes = data.get("seals"), data.get("changes")
        if not isinstance(seals, list) or not all(isinstance(s, str) and s for s in seals):
            raise ValueError("lineage.seals: expected a list of seal ids")
        if type(changes) is not int or changes < 0:
            raise ValueError("lineage.changes: expected an integer >= 0")
        return cls(tuple(seals[-MAX_SEALS:]), changes)

    def sealed(self, seal_id: str) -> "Lineage":
        return Lineage((self.seals + (seal_id,))[-MAX_SEALS:], self.changes)

    def __str__(self) -> str:
        return f"{self.head or '-'}+{self.changes}"


def of_snapshot(snapshot: Mapping[str, Any]) -> Lineage:
    """The lineage a machine snapshot carries (snapshots from before lineages: no seals)."""
    counters = snapshot.get("counters")
    changes = counters.get("change") if isinstance(counters, Mapping) else None
    if type(changes) is not int or changes < 0:
        raise ValueError("counters.change: expected an integer >= 0")
    seals = snapshot.get("seals", [])
    return Lineage.from_dict({"seals": seals, "changes": changes})


def relation(a: Lineage, b: Lineage) -> Relation:
    """What ``a`` is to ``b``."""
    if a.head == b.head:
        if a.changes == b.changes:
            return Relation.SAME
        return Relation.AHEAD if a.changes > b.changes else Relation.BEHIND
    if b.head is None or b.head in a.seals:
        return Relation.AHEAD  # a went on from b's period (an unsealed state is the root of all)
    if a.head is None or a.head in b.seals:
        return Relation.BEHIND
    return Relation.DIVERGED


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
