"""Containers that keep the state machine's cost flat as the state grows.

* ``CowDict``: the insertion-ordered map every part keeps its records in. ``freeze()`` hands out
  a consistent view in O(n / CHUNK): the map is split into chunks and a chunk shared with a view
  is copied on its next write. Records themselves are never mutated once stored (parts replace
  them), so a frozen view can be read from any thread while the engine keeps applying.
* ``KeyedHeap``: a min-heap with update and removal by id, for lease and lock deadlines.
* ``PendingQueue``: pending work grouped by (work type, required capabilities), one heap per
  group, so a claim looks at one candidate per group instead of at every pending item.

All of it is derived from the records and rebuilt on restore; none of it is in a snapshot.
"""

from __future__ import annotations

from heapq import heappop, heappush
from itertools import chain, islice
from typing import Any, Iterable, Iterator

CHUNK = 512  # a chunk copy (~10 µs) is the most one write pays after a freeze
SHARDS = 256


class ShardedMap:
    """A ``str -> value`` map split over 256 dicts by hash. A dict of a million keys that sees
    inserts and deletes rebuilds itself now and then in one go (~70 ms at 1M keys); a shard of
    4k keys does it in well under a millisecond. Its order is never used."""

    __slots__ = ("_shards", "_size")

    def __init__(self) -> None:
        self._shards: list[dict[str, Any]] = [{} for _ in range(SHARDS)]
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def __contains__(self, key: str) -> bool:
        return key in self._shards[hash(key) & (SHARDS - 1)]

    def __getitem__(self, key: str) -> Any:
        return self._shards[hash(key) & (SHARDS - 1)][key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._shards[hash(key) & (SHARDS - 1)].get(key, default)

    def __setitem__(self, key: str, value: Any) -> None:
        shard = self._shards[hash(key) & (SHARDS - 1)]
        if key not in shard:
            self._size += 1
        shard[key] = value

    def pop(self, key: str, *default: Any) -> Any:
        shard = self._shards[hash(key) & (SHARDS - 1)]
        if key in shard:
            self._size -= 1
            return shard.pop(key)
        if default:
            return default[0]
        raise KeyError(key)


class CowDict:
    """An insertion-ordered ``str -> record`` map with an O(n / CHUNK) ``freeze``."""

    __slots__ = ("_where", "_chunks", "_owned", "_added")

    def __init__(self, data: Iterable[tuple[str, Any]] = ()) -> None:
        self._where = ShardedMap()  # key -> chunk number
        self._chunks: dict[int, dict[str, Any]] = {}  # in chunk (= insertion) order
        self._owned: set[int] = set()  # chunks no frozen view shares: writable in place
        self._added = 0
        pairs = iter(data)
        while chunk := dict(islice(pairs, CHUNK)):  # bulk load, a chunk at a time
            n = self._added // CHUNK
            self._chunks[n] = chunk
            self._owned.add(n)
            for key in chunk:
                self._where[key] = n
            self._added += CHUNK
        if len(self._where) != sum(map(len, self._chunks.values())):
            raise ValueError("CowDict: duplicate keys")

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, key: object) -> bool:
        return key in self._where

    def __getitem__(self, key: str) -> Any:
        return self._chunks[self._where[key]][key]

    def get(self, key: str, default: Any = None) -> Any:
        n = self._where.get(key)
        return default if n is None else self._chunks[n][key]

    def __setitem__(self, key: str, value: Any) -> None:
        n = self._where.get(key)
        if n is None:  # a new key goes last, like in a dict
            n = self._added // CHUNK
            self._added += 1
            self._where[key] = n
            if n not in self._chunks:
                self._chunks[n] = {}
                self._owned.add(n)
        self._writable(n)[key] = value

    def __delitem__(self, key: str) -> None:
        n = self._where.pop(key)
        chunk = self._writable(n)
        del chunk[key]
        if not chunk:
            del self._chunks[n]
            self._owned.discard(n)

    def setdefault(self, key: str, default: Any) -> Any:
        if key not in self._where:
            self[key] = default
        return self[key]

    def _writable(self, n: int) -> dict[str, Any]:
        chunk = self._chunks[n]
        if n not in self._owned:  # shared with a frozen view: copy before the first write
            chunk = self._chunks[n] = dict(chunk)
            self._owned.add(n)
        return chunk

    def __iter__(self) -> Iterator[str]:
        return chain.from_iterable(list(self._chunks.values()))

    def first(self) -> tuple[str, Any]:
        """The oldest key and its record in O(1) (``next(iter(d))`` lists every chunk first)."""
        for chunk in self._chunks.values():
            for key in chunk:
                return key, chunk[key]
        raise KeyError("first() of an empty CowDict")

    def keys(self) -> Iterator[str]:
        return iter(self)

    # Iteration is all C (chain, map, dict views): ``list(d.values())`` runs without a thread
    # switch, as it does on a plain dict.
    def values(self) -> Iterator[Any]:
        return chain.from_iterable(map(dict.values, list(self._chunks.values())))

    def items(self) -> Iterator[tuple[str, Any]]:
        return chain.from_iterable(map(dict.items, list(self._chunks.values())))

    def freeze(self) -> "Frozen":
        """A view of the map as it is now; later writes never show in it."""
        self._owned = set()
        return Frozen(list(self._chunks.values()))


class Frozen:
    """The chunks of a ``CowDict`` at one instant. Nobody writes them: safe on any thread."""

    __slots__ = ("chunks",)

    def __init__(self, chunks: list[dict[str, Any]]) -> None:
        self.chunks = chunks

    def items(self) -> Iterator[tuple[str, Any]]:
        return chain.from_iterable(map(dict.items, self.chunks))

    def values(self) -> Iterator[Any]:
        return chain.from_iterable(map(dict.values, self.chunks))

    def __len__(self) -> int:
        return sum(len(c) for c in self.chunks)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickles as a plain dict, streamed from the chunks: no dict of every record is built.
        return dict, (), None, None, self.items()


class KeyedHeap:
    """A min-heap of ``(key, id)`` with O(log n) set and removal by id; ``(key, id)`` is unique."""

    __slots__ = ("_heap", "_pos")

    def __init__(self) -> None:
        self._heap: list[tuple[Any, str]] = []
        self._pos = ShardedMap()

    def __len__(self) -> int:
        return len(self._heap)

    def peek(self) -> tuple[Any, str] | None:
        return self._heap[0] if self._heap else None

    def set(self, ident: str, key: Any) -> None:
        i = self._pos.get(ident)
        if i is None:
            self._heap.append((key, ident))
            self._pos[ident] = len(self._heap) - 1
            self._up(len(self._heap) - 1)
            return
        old = self._heap[i][0]
        self._heap[i] = (key, ident)
        self._up(i) if key < old else self._down(i)

    def discard(self, ident: str) -> None:
        i = self._pos.pop(ident, None)
        if i is None:
            return
        last = self._heap.pop()
        if i < len(self._heap):  # move the last entry into the hole and restore the order
            self._heap[i] = last
            self._pos[last[1]] = i
            self._up(i)
            self._down(self._pos[last[1]])

    def pop(self) -> tuple[Any, str]:
        top = self._heap[0]
        self.discard(top[1])
        return top

    def _up(self, i: int) -> None:
        heap, pos = self._heap, self._pos
        entry = heap[i]
        while i:
            parent = (i - 1) >> 1
            if not entry < heap[parent]:
                break
            heap[i] = heap[parent]
            pos[heap[i][1]] = i
            i = parent
        heap[i] = entry
        pos[entry[1]] = i

    def _down(self, i: int) -> None:
        heap, pos = self._heap, self._pos
        n = len(heap)
        entry = heap[i]
        while True:
            child = 2 * i + 1
            if child >= n:
                break
            if child + 1 < n and heap[child + 1] < heap[child]:
                child += 1
            if not heap[child] < entry:
                break
            heap[i] = heap[child]
            pos[heap[i][1]] = i
            i = child
        heap[i] = entry
        pos[entry[1]] = i


class PendingQueue:
    """Pending work ids in claim order: highest priority first, then oldest (``seq``).

    One heap per (work type, required capabilities). A claim may take a group when it asks for
    that type (or any type) and has every capability the group requires; the answer is the
    smallest ``(-priority, seq)`` among those groups' heads, exactly the item a scan of all
    pending items picks, because ``seq`` is unique.
    """

    __slots__ = ("_groups", "_size")

    def __init__(self) -> None:
        self._groups: dict[str, dict[tuple[str, ...], list[tuple[int, int, str]]]] = {}
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def push(self, item: dict[str, Any]) -> None:
        groups = self._groups.setdefault(item["work_type"], {})
        heap = groups.setdefault(tuple(sorted(set(item["capabilities"]))), [])
        heappush(heap, (-item["priority"], item["seq"], item["work_id"]))
        self._size += 1

    def pop_best(self, work_types: set[str], capabilities: set[str]) -> str | None:
        """Remove and return the work id a claim with these filters gets, or None."""
        best: tuple[int, int, str] | None = None
        where: tuple[str, tuple[str, ...]] | None = None
        types = work_types if work_types else self._groups
        for work_type in types:
            groups = self._groups.get(work_type)
            if groups is None:
                continue
            for required, heap in groups.items():
                if required and not capabilities.issuperset(required):
                    continue
                if best is None or heap[0] < best:
                    best, where = heap[0], (work_type, required)
        if best is None or where is None:
            return None
        groups = self._groups[where[0]]
        heap = groups[where[1]]
        heappop(heap)
        if not heap:  # drop empty groups so claims never iterate over them
            del groups[where[1]]
            if not groups:
                del self._groups[where[0]]
        self._size -= 1
        return best[2]
