"""Cold start: N members start from the config's seed list; how long until every member holds
every other's entry (the bench's "converged": each node sees all the others alive).

What the backend does on join (``membership.swim``: ``membership``, ``engine``,
``hooks.anti_entropy``; and swim-p2p 1.2.6):

* The member list starts with *every configured peer* as a seed entry (ALIVE, incarnation 1, no
  metadata). The published view ignores an entry until it carries the member's own id: a member
  counts once its real entry (clock-ms incarnation, id) has been merged.
* On start the node announces its own entry to at most 48 random members of that list.
* Every protocol period: a heartbeat to ``gossip_fanout`` random members of the list, carrying
  the own entry plus the piggyback (every entry newly merged is a change queued with zero sends;
  freshest and least sent first, up to the packet budget; ``piggyback.py``).
* Anti-entropy while joining: every 0.5 s until some member is confirmed running (its entry has
  an id), then a SYNC-REQ plus our whole list to one of them, again 2 s later (the first answer
  is noticed then), then every ``push_pull_interval`` (the list's size: every seed counts).
  Both sides merge the other's whole list.

Datagrams to a member not started yet are lost; PINGs carry no entries and are not modelled.
"""

from __future__ import annotations

import heapq
import math
import random
import sys
import time
from typing import Any, Callable, Optional

import numpy as np

from ..membership.swim.gossip import push_pull_interval, retransmit_limit
from .params import Model, Protocol, protocol_for
from .piggyback import PiggybackQueues
from .sizes import measure

_ANNOUNCE_MAX = 48
_SYNC_CANDIDATES = 8  # ``get_random_members(8)``, of which the first confirmed one
_FRACTIONS = (0.5, 0.9, 0.99, 1.0)


class ColdStart:
    def __init__(self, n: int, proto: Protocol, model: Model, seed: int = 1, start_window_s: float = 10.0) -> None:
        self.n, self.p, self.m = n, proto, model
        self.sz = measure(n, False, proto.gossip_fanout, proto.packet_budget_bytes)
        self.rng = random.Random(seed)
        self.known = np.zeros((n, n), dtype=bool)  # [subject, observer]: the real entry is merged
        np.fill_diagonal(self.known, True)
        self.count = np.ones(n, dtype=np.int64)  # entries each observer holds (its own included)
        self.total = n
        self.started = np.zeros(n, dtype=bool)
        self.start_at = np.array([self.rng.random() * start_window_s for _ in range(n)])
        self.start_at[0] = 0.0
        self.pb = PiggybackQueues(n, self.sz.capacity, proto.gossip_fanout, retransmit_limit(proto.retransmit_mult, n))
        self.synced = np.zeros(n, dtype=bool)
        self.answered = np.zeros(n, dtype=bool)
        self.full_at = np.full(n, np.nan)  # when each observer held every entry
        self.reached: dict[float, float] = {}  # fraction of all (observer, subject) pairs -> time
        self.curve: list[tuple[float, float]] = []  # (time, fraction known), every second
        self.bytes = 0
        self.largest = 0
        self.now = 0.0
        self._heap: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0

    def at(self, t: float, fn: Callable[..., None], *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, fn, args))

    def _lost(self) -> bool:
        return self.m.loss > 0 and self.rng.random() < self.m.loss

    def _other(self, i: int) -> int:
        j = self.rng.randrange(self.n - 1)
        return j + 1 if j >= i else j

    def _merge(self, j: int, subjs: np.ndarray) -> None:
        """``merge_digest`` of real entries at ``j``: the new ones are confirmed and queued."""
        new = subjs[~self.known[subjs, j]]
        if not len(new):
            return
        self.known[new, j] = True
        self.count[j] += len(new)
        self.total += len(new)
        self.pb.changed_many(j, new)
        if self.count[j] == self.n:
            self.full_at[j] = self.now
        pairs = self.n * self.n
        for f in _FRACTIONS:
            if f not in self.reached and self.total >= f * pairs:
                self.reached[f] = self.now

    def _send(self, i: int, j: int, subjs: np.ndarray, size: int) -> None:
        """One datagram (latency is far below a period: merged on arrival, no event)."""
        self.bytes += size
        self.largest = max(self.largest, size)
        if self.started[j] and not self._lost():
            self.bytes += size
            self._merge(j, subjs)

    def _start(self, i: int) -> None:
        self.started[i] = True
        own = np.array([i])
        for j in self.rng.sample(range(self.n), min(self.n, _ANNOUNCE_MAX + 1)):
            if j != i:
                self._send(i, j, own, self.sz.heartbeat_own)
        self.at(self.now + self.rng.random() * self.p.protocol_period_s, self._cycle, i)
        self.at(self.now + self.rng.random() * self.m.tick_s, self._sync, i)

    def _cycle(self, i: int) -> None:
        chosen = self.pb.select(i)
        subjs = np.array(chosen + [i])
        size = self.sz.heartbeat(len(chosen))
        for _ in range(self.p.gossip_fanout):
            self._send(i, self._other(i), subjs, size)
        self.at(self.now + self.p.protocol_period_s + self.m.cycle_overhead_s, self._cycle, i)

    def _sync(self, i: int) -> None:
        """``membership.swim.hooks.anti_entropy`` on the tick that reaches ``_next_sync``."""
        if self.answered[i]:
            self.synced[i] = True
        if self.synced[i]:
            nxt = push_pull_interval(self.p.sync_interval_s, self.n) * self.rng.uniform(0.75, 1.25)
        else:
            nxt = 2.0
        candidates = [self._other(i) for _ in range(_SYNC_CANDIDATES)]
        running = candidates if self.synced[i] else [c for c in candidates if self.known[c, i]]
        if not running:
            nxt = 0.5
        self.at(self.now + nxt, self._sync, i)
        if not running:
            return
        j = running[0]
        if not self.started[j]:
            return
        # Over TCP (no loss): j merges our list, then answers with its own; each merge occupies
        # the merging loop for the list's length.
        merge = self.n * self.m.merge_per_entry_s
        self.bytes += 2 * self.sz.full_list * (self.count[i] + self.count[j]) // self.n
        self._merge(j, np.flatnonzero(self.known[:, i]))
        self.at(self.now + 2 * merge + 0.001, self._sync_answer, i, j)

    def _sync_answer(self, i: int, j: int) -> None:
        self.answered[i] = True
        self._merge(i, np.flatnonzero(self.known[:, j]))

    def _sample(self) -> None:
        self.curve.append((round(self.now, 1), round(self.total / (self.n * self.n), 4)))
        self.at(self.now + 1.0, self._sample)

    def run(self, limit_s: float = 900.0, progress: Optional[Callable[[float, float], None]] = None) -> None:
        for i in range(self.n):
            self.at(float(self.start_at[i]), self._start, i)
        self.at(0.0, self._sample)
        heap, step = self._heap, 0
        while heap and self.total < self.n * self.n:
            t, _, fn, args = heapq.heappop(heap)
            if t > limit_s:
                break
            self.now = t
            fn(*args)
            step += 1
            if progress is not None and step % 50_000 == 0:
                progress(t, self.total / (self.n * self.n))


def cold_start(n: int, preset: str = "lan", model: Optional[Model] = None, seed: int = 1,
               start_window_s: float = 10.0, progress: bool = False, limit_s: float = 900.0,
               checkpoint: Optional[Callable[[dict[str, Any]], None]] = None) -> dict[str, Any]:
    """Every member starting within ``start_window_s``: times from the last start until the
    share of (observer, member) pairs confirmed reaches 50/90/99/100 %. ``checkpoint`` receives
    the figures so far at every progress step (a long run stopped early still leaves them)."""
    model = model or Model()
    started = time.monotonic()
    cs = ColdStart(n, protocol_for(preset), model, seed, start_window_s)

    def figures() -> dict[str, Any]:
        last = float(cs.start_at.max())
        since = {f: (round(t - last, 2) if t - last > 0 else 0.0) for f, t in cs.reached.items()}
        elapsed = max(cs.now, 1e-9)
        return {
            "n": n, "preset": preset, "loss": model.loss, "start_window_s": start_window_s, "seed": seed,
            "converge_s": since.get(1.0), "views_50_s": since.get(0.5), "views_90_s": since.get(0.9),
            "views_99_s": since.get(0.99), "converged": 1.0 in cs.reached,
            "simulated_s": round(cs.now - last, 1), "views_share": round(cs.total / (n * n), 4),
            "bytes_per_node_s": round(cs.bytes / n / elapsed), "max_datagram_b": cs.largest,
            "curve": [(round(t - last, 1), f) for t, f in cs.curve if math.isfinite(t)],
            "wall_s": round(time.monotonic() - started, 1),
        }

    def report(t: float, f: float) -> None:
        if progress:
            print(f"# cold start N={n} {preset}: simulated {t:6.1f} s, {100 * f:5.1f} % of views, "
                  f"{time.monotonic() - started:5.0f} s wall", file=sys.stderr, flush=True)
        if checkpoint is not None:
            checkpoint(figures())

    cs.run(limit_s=limit_s, progress=report if (progress or checkpoint) else None)
    return figures()
