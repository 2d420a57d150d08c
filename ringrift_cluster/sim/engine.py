"""The event loop and the protocol as our backend runs it (swim-p2p 1.2.6 + ``membership.swim.engine``).

Per node, what the code does, in its order:

* **Protocol cycle** (library ``_protocol_loop``, ``cycle.py``): a heartbeat to
  ``gossip_fanout`` random non-DEAD members carrying the piggyback (``membership.swim.gossip.Piggyback``);
  then the suspects it knows, of which only the ones *it* suspected get an indirect probe
  (``gate_indirect_probes``: once, off the loop); then one random member (DEAD included, then
  usually skipped) is pinged ``ping_retries`` times (timeout, then 0.8 x timeout); a failed ping
  marks it SUSPECT with incarnation + 1 and tells the suspect (buddy); then the cycle's own work
  and the sleep.
* **Merge** (``MemberList.merge_digest``): per entry, a higher incarnation wins; at equal
  incarnation DEAD > SUSPECT > ALIVE. Every change is queued for piggyback with zero sends.
* **Engine tick** (0.1 s, ``ticks.py``): a SUSPECT older than ``suspicion_timeout_s`` becomes DEAD
  (incarnation + 1; the node announces a death it declared to up to 48 members); a node that sees
  itself not ALIVE refutes with an incarnation from the clock and announces it; a member held
  DEAD but still heard from is sent its own entry (``tell_the_dead``), so it refutes.
* **Anti-entropy** (``ticks.py``): full lists both ways with one random member every
  ``push_pull_interval``.
* **Published view** (``SwimView``): SUSPECT reported after ``suspect_report_after_s``, DEAD
  reported as failed after ``failed_confirm_s``.

Idle traffic (heartbeats with only the own entry, pings, pongs) is counted, not scheduled: only
a message that changes its receiver's view becomes an event.
"""

from __future__ import annotations

import heapq
import math
import random
from typing import Any, Callable, Optional

import numpy as np

from ..membership.swim.gossip import push_pull_interval, retransmit_limit
from .costs import cycle_scan_per_member_s
from .cycle import ProtocolCycle
from .params import Model, Protocol
from .piggyback import PiggybackQueues
from .sizes import Sizes
from .ticks import TickWork
from .views import ALIVE, DEAD, SUSPECT, TYPES, Counters, Views

__all__ = ["ALIVE", "SUSPECT", "DEAD", "TYPES", "Sim"]


class Sim(ProtocolCycle, TickWork):
    def __init__(self, n: int, proto: Protocol, model: Model, sizes: Sizes, seed: int = 1) -> None:
        self.n, self.p, self.m, self.sz = n, proto, model, sizes
        self.rng = random.Random(seed)
        self.now = 0.0
        self._heap: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0
        self.running = np.ones(n, dtype=bool)  # the process is up (not killed)
        self.busy_until = np.zeros(n)  # the node's loop is occupied until then (stall, merge)
        self.views = Views(n)
        self.limit = retransmit_limit(proto.retransmit_mult, n)
        self.pb = PiggybackQueues(n, sizes.capacity, proto.gossip_fanout, self.limit)
        self.suspected_here: list[set[int]] = [set() for _ in range(n)]  # members each node suspected itself
        self.pending_announce: list[set[int]] = [set() for _ in range(n)]
        self.last_announce = np.full(n, -1e9)
        self.told_dead: dict[tuple[int, int], float] = {}  # (observer, member) -> when told
        self.cycles = np.zeros(n, dtype=np.int64)
        self.c = Counters()
        per_member = model.cycle_overhead_per_member_s
        if per_member is None:
            per_member = cycle_scan_per_member_s()
        self.cycle_work = model.cycle_overhead_s + per_member * n
        self.killed_at: dict[int, float] = {}
        self.first_dead_at: dict[int, float] = {}
        self.on_merge: Optional[Callable[[int, int, int], None]] = None  # test hook: (observer, subject, state)
        self.on_probe: Optional[Callable[[int, int], None]] = None  # test hook: (prober, target)

    # -- event loop ---------------------------------------------------------------------------------

    def at(self, t: float, fn: Callable[..., None], *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, fn, args))

    def run_until(self, t_end: float, progress: Optional[Callable[[float], None]] = None) -> None:
        heap, step = self._heap, 0
        while heap and heap[0][0] <= t_end:
            t, _, fn, args = heapq.heappop(heap)
            self.now = t
            fn(*args)
            step += 1
            if progress is not None and step % 200_000 == 0:
                progress(t)
        self.now = t_end

    def start(self) -> None:
        """Every node starts its cycle at a random phase and its first anti-entropy soon after."""
        for i in range(self.n):
            self.at(self.rng.random() * self.p.protocol_period_s, self._cycle, i)
            # A joiner pulls a full list at once and again 2 s later (its first answer arrives in
            # between), then every push_pull_interval.
            self.at(self.rng.random() * self.m.tick_s, self._sync, i, 2.0)
        if self.m.contention_rate > 0:
            for i in range(self.n):
                self.at(self.rng.expovariate(self.m.contention_rate), self._contention, i)

    # -- helpers ------------------------------------------------------------------------------------

    def _latency(self) -> float:
        m = self.m
        return m.latency_s * math.exp(m.latency_sigma * self.rng.gauss(0.0, 1.0))

    def _lost(self) -> bool:
        return self.m.loss > 0 and self.rng.random() < self.m.loss

    def _ready(self, i: int, t: float) -> float:
        """When node ``i`` handles something that arrives at ``t`` (its loop may be stalled)."""
        return max(t, self.busy_until[i]) + self.m.service_s

    def _view(self, observer: int, subject: int) -> int:
        return int(self.views.entry[observer, subject]) & 3

    def _inc(self, observer: int, subject: int) -> int:
        return int(self.views.entry[observer, subject]) >> 2

    def _random_peer(self, i: int, *, skip_dead: bool = True, exclude: int = -1) -> int:
        """A uniformly random other member (the library's ``random.sample`` of the eligible)."""
        entry = self.views.entry
        for _ in range(64):
            j = self.rng.randrange(self.n - 1)
            j = j + 1 if j >= i else j
            if j == exclude:
                continue
            if skip_dead and entry[i, j] & 3 == DEAD:
                continue
            return j
        return -1

    def _sync_interval(self) -> float:
        return push_pull_interval(self.p.sync_interval_s, self.n)

    # -- state changes (one observer's view) --------------------------------------------------------

    def _set(self, obs: int, subj: int, state: int, inc: int) -> None:
        v = self.views
        old = int(v.entry[obs, subj]) & 3
        v.entry[obs, subj] = inc * 4 + state
        v.changed.add(subj)
        now = self.now
        if old != state:
            self._leave_state(obs, subj, old)
            if state == SUSPECT and subj != obs:
                v.suspect_from[(obs, subj)] = now
                self.at(now + self.p.suspicion_timeout_s + self.rng.random() * self.m.tick_s, self._expire,
                        obs, subj, inc)
            elif state == DEAD and subj != obs:
                v.dead_from.setdefault(subj, {})[obs] = now
                self.first_dead_at.setdefault(subj, now)
                failed = now + self.p.failed_confirm_s + self.rng.random() * self.m.tick_s + self.m.report_delay_s
                self.at(failed, self._confirm_failed, obs, subj, inc)
        if subj == obs and state != ALIVE:
            self.at(now + self.rng.random() * self.m.tick_s, self._refute, obs)
        if subj != obs:  # the own entry rides every heartbeat anyway
            self.pb.changed(obs, subj)
        if self.on_merge is not None:
            self.on_merge(obs, subj, state)

    def _leave_state(self, obs: int, subj: int, old: int) -> None:
        """Close the raw episode being left: a suspicion that lasted the report delay was a
        published ``suspect`` event."""
        v = self.views
        if old == SUSPECT:
            start = v.suspect_from.pop((obs, subj), None)
            if start is not None and self.now - start >= self.p.suspect_report_after_s:
                self.c.suspect_events += 1
                self.c.suspect_events_about[subj] = self.c.suspect_events_about.get(subj, 0) + 1
        elif old == DEAD:
            v.dead_from.get(subj, {}).pop(obs, None)

    def _merge(self, obs: int, subj: int, state: int, inc: int) -> None:
        """``merge_digest`` for one entry."""
        if inc * 4 + state > self.views.entry[obs, subj]:
            self._set(obs, subj, state, inc)

    def _send_entries(self, i: int, j: int, subjs: np.ndarray, keys: np.ndarray) -> None:
        """A delivered datagram from ``i`` carrying these entries, merged on arrival. Only entries
        that would change ``j``'s view matter: a view only ever moves up, so an entry that does not
        win now never will, and dropping it is exact (most deliveries of an epidemic are such).
        A free receiver merges at once: the LAN's sub-millisecond latency is below every timer's
        resolution, and an event per datagram was a third of the run time; a stalled one merges
        when its loop frees."""
        self._heard(j, i)
        cur = self.views.entry[j, subjs]
        win = keys > cur
        if not np.count_nonzero(win):
            return
        if self.busy_until[j] > self.now:
            self.at(self._ready(j, self.now), self._apply, j, subjs[win], keys[win])
        else:
            self._merge_won(j, subjs[win], keys[win], cur[win])

    def _apply(self, j: int, subjs: np.ndarray, keys: np.ndarray) -> None:
        """Entries merged later (a stalled loop, a whole list): checked again against the view."""
        if not self.running[j]:
            return
        cur = self.views.entry[j, subjs]
        win = keys > cur
        if np.count_nonzero(win):
            self._merge_won(j, subjs[win], keys[win], cur[win])

    def _merge_won(self, j: int, subjs: np.ndarray, keys: np.ndarray, cur: np.ndarray) -> None:
        # A new incarnation in the same state (a refutation reaching a member that never saw the
        # suspicion: most of an epidemic) only updates the entry and queues it: done in bulk.
        bulk = ((keys & 3) == (cur & 3)) & (subjs != j)
        if self.on_merge is None and np.count_nonzero(bulk):
            same = subjs[bulk]
            self.views.entry[j, same] = keys[bulk]
            self.views.changed.update(same.tolist())
            self.pb.changed_many(j, same)
            rest = ~bulk
            subjs, keys = subjs[rest], keys[rest]
        for s, k in zip(subjs.tolist(), keys.tolist()):
            self._set(j, s, k & 3, k >> 2)

    # -- faults -------------------------------------------------------------------------------------

    def kill(self, v: int, at: float) -> None:
        def do() -> None:
            self.running[v] = False
            self.killed_at[v] = self.now
            self.pb.clear(v)
        self.at(at, do)

    def stall(self, i: int, start: float, length: float) -> None:
        """Node ``i``'s loop is blocked for ``length`` (GC, a stalled host, SIGSTOP)."""
        def do() -> None:
            self.busy_until[i] = max(self.busy_until[i], self.now + length)
            refute_after = max(0.5, self.p.ping_retries * self.p.ping_timeout_s + self.p.protocol_period_s)
            if length > refute_after:  # the engine notices the pause and refutes unasked
                self.at(self.now + length, self._pause_refute, i)
        self.at(start, do)

    def _contention(self, i: int) -> None:
        if not self.running[i]:
            return
        length = self.rng.expovariate(1.0 / self.m.contention_mean_s)
        self.busy_until[i] = max(self.busy_until[i], self.now + length)
        self.at(self.now + self.rng.expovariate(self.m.contention_rate), self._contention, i)
