"""The event loop and the protocol as our backend runs it (swim-p2p 1.2.6 + ``swim_engine``).

Per node, what the code does, in its order:

* **Protocol cycle** (library ``_protocol_loop``): a heartbeat to ``gossip_fanout`` random
  non-DEAD members carrying the piggyback (``swim_gossip.Piggyback``); then the suspects it
  knows, of which only the ones *it* suspected get an indirect probe (``gate_indirect_probes``:
  once, off the loop); then one random member (DEAD included, then usually skipped) is pinged
  ``ping_retries`` times (timeout, then 0.8 x timeout); a failed ping marks it SUSPECT with
  incarnation + 1 and tells the suspect (buddy); then the cycle's own work and the sleep.
* **Merge** (``MemberList.merge_digest``): per entry, a higher incarnation wins; at equal
  incarnation DEAD > SUSPECT > ALIVE. Every change is queued for piggyback with zero sends.
* **Engine tick** (0.1 s): a SUSPECT older than ``suspicion_timeout_s`` becomes DEAD
  (incarnation + 1; the node announces a death it declared to up to 48 members); a node that sees
  itself not ALIVE refutes with an incarnation from the clock and announces it.
* **Anti-entropy**: full lists both ways with one random member every ``push_pull_interval``.
* **Published view** (``SwimView``): SUSPECT reported after ``suspect_report_after_s``, DEAD
  reported as failed after ``failed_confirm_s``.

Views are kept only for *tracked* members (one that ever changed: killed, suspected): an array of
(state, incarnation, since) over observers; every other member is ALIVE everywhere at its first
incarnation, which is what the code would hold. Idle traffic (heartbeats with only the own entry,
pings, pongs) is counted, not scheduled: only what carries news becomes an event.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from ..membership.swim.gossip import push_pull_interval, retransmit_limit
from .costs import cycle_scan_per_member_s
from .params import Model, Protocol
from .sizes import Sizes

ALIVE, SUSPECT, DEAD = 0, 1, 2
_ANNOUNCE_MAX = 48
_ANNOUNCE_GAP_S = 0.5
_REFUTE_BUMP = 10**6  # a refutation's clock-ms incarnation outranks any run of +1 bumps
TYPES = ("PING", "PONG", "PING-REQ", "PING-REQ-ACK", "HEARTBEAT", "SYNC-REQ", "SYNC-RESP")


@dataclass
class Tracked:
    """One member's state in every observer's view."""

    state: np.ndarray
    inc: np.ndarray
    since: np.ndarray  # when the observer's view of it last changed state
    suspect_from: np.ndarray  # start of the current raw SUSPECT (nan when not suspect)
    dead_from: np.ndarray  # start of the current raw DEAD (nan when not dead)
    failed_at: np.ndarray  # when the observer published ``failed`` (nan: not yet)


@dataclass
class Counters:
    msgs: dict[str, int] = field(default_factory=lambda: {t: 0 for t in TYPES})
    bytes: dict[str, int] = field(default_factory=lambda: {t: 0 for t in TYPES})
    largest_datagram: int = 0
    suspect_events: int = 0  # published suspect events (any observer, any member)
    failed_events: int = 0
    suspect_events_about: dict[int, int] = field(default_factory=dict)
    failed_events_about: dict[int, int] = field(default_factory=dict)
    announces: int = 0
    refutations: int = 0
    suspicions_raised: int = 0

    def count(self, kind: str, size: int, delivered: bool, datagram: bool = True) -> None:
        """One message sent (and received, when delivered): sent + received, like the bench.
        Full lists go over TCP: not datagrams."""
        k = 2 if delivered else 1
        self.msgs[kind] += k
        self.bytes[kind] += k * size
        if datagram and size > self.largest_datagram:
            self.largest_datagram = size


class Sim:
    def __init__(self, n: int, proto: Protocol, model: Model, sizes: Sizes, seed: int = 1) -> None:
        self.n, self.p, self.m, self.sz = n, proto, model, sizes
        self.rng = random.Random(seed)
        self.now = 0.0
        self._heap: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0
        self.running = np.ones(n, dtype=bool)  # the process is up (not killed)
        self.busy_until = np.zeros(n)  # the node's loop is occupied until then (stall, merge)
        self.tracked: dict[int, Tracked] = {}
        self.piggy: list[dict[int, list[int]]] = [dict() for _ in range(n)]  # subject -> [sends, seq]
        self._fresh = 0
        self.suspected_here: set[tuple[int, int]] = set()
        self.pending_announce: list[set[int]] = [set() for _ in range(n)]
        self.last_announce = np.full(n, -1e9)
        self.cycles = np.zeros(n, dtype=np.int64)
        self.c = Counters()
        self.limit = retransmit_limit(proto.retransmit_mult, n)
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
        tr = self.tracked.get(subject)
        return ALIVE if tr is None else int(tr.state[observer])

    def _track(self, subject: int) -> Tracked:
        tr = self.tracked.get(subject)
        if tr is None:
            n = self.n
            nan = np.full(n, np.nan)
            tr = Tracked(np.zeros(n, dtype=np.int8), np.zeros(n, dtype=np.int64), np.zeros(n), nan.copy(),
                         nan.copy(), nan.copy())
            self.tracked[subject] = tr
        return tr

    def _random_peer(self, i: int, *, skip_dead: bool = True, exclude: int = -1) -> int:
        """A uniformly random other member (the library's ``random.sample`` of the eligible)."""
        for _ in range(64):
            j = self.rng.randrange(self.n - 1)
            j = j + 1 if j >= i else j
            if j == exclude:
                continue
            if skip_dead and self._view(i, j) == DEAD:
                continue
            return j
        return -1

    def _sync_interval(self) -> float:
        return push_pull_interval(self.p.sync_interval_s, self.n)

    # -- state changes (one observer's view) --------------------------------------------------------

    def _set(self, obs: int, subj: int, state: int, inc: int) -> None:
        tr = self._track(subj)
        old = int(tr.state[obs])
        tr.state[obs], tr.inc[obs] = state, inc
        now = self.now
        if old != state:
            tr.since[obs] = now
            self._leave_state(tr, obs, subj, old)
            if state == SUSPECT and subj != obs:
                tr.suspect_from[obs] = now
                self.at(now + self.p.suspicion_timeout_s + self.rng.random() * self.m.tick_s, self._expire,
                        obs, subj, inc)
            elif state == DEAD and subj != obs:
                tr.dead_from[obs] = now
                self.first_dead_at.setdefault(subj, now)
                failed = now + self.p.failed_confirm_s + self.rng.random() * self.m.tick_s + self.m.report_delay_s
                self.at(failed, self._confirm_failed, obs, subj, inc)
        if subj == obs and state != ALIVE:
            self.at(now + self.rng.random() * self.m.tick_s, self._refute, obs)
        if subj != obs:  # the own entry rides every heartbeat anyway
            self._fresh += 1
            self.piggy[obs][subj] = [0, self._fresh]
        if self.on_merge is not None:
            self.on_merge(obs, subj, state)

    def _leave_state(self, tr: Tracked, obs: int, subj: int, old: int) -> None:
        """Close the raw episode being left: a suspicion that lasted the report delay was a
        published ``suspect`` event."""
        if old == SUSPECT:
            if self.now - tr.suspect_from[obs] >= self.p.suspect_report_after_s:
                self._suspect_event(subj)
            tr.suspect_from[obs] = np.nan
        elif old == DEAD:
            tr.dead_from[obs] = np.nan

    def _suspect_event(self, subj: int) -> None:
        self.c.suspect_events += 1
        self.c.suspect_events_about[subj] = self.c.suspect_events_about.get(subj, 0) + 1

    def _merge(self, obs: int, subj: int, state: int, inc: int) -> None:
        """``merge_digest`` for one entry."""
        tr = self.tracked.get(subj)
        cur_state, cur_inc = (ALIVE, 0) if tr is None else (int(tr.state[obs]), int(tr.inc[obs]))
        if inc > cur_inc or (inc == cur_inc and state > cur_state):
            self._set(obs, subj, state, inc)

    # -- the protocol cycle -------------------------------------------------------------------------

    def _cycle(self, i: int) -> None:
        if not self.running[i]:
            return
        if self.busy_until[i] > self.now:  # the loop is blocked: the cycle runs when it frees
            self.at(self.busy_until[i], self._cycle, i)
            return
        self.cycles[i] += 1
        self._heartbeat(i)
        self._indirect_probes(i)
        self._probe(i)

    def _heartbeat(self, i: int) -> None:
        entries = self._select(i)
        size = self.sz.heartbeat(len(entries) - (1 if i in self.tracked else 0))
        for _ in range(self.p.gossip_fanout):
            j = self._random_peer(i)
            if j < 0:
                break
            delivered = self.running[j] and not self._lost()
            self.c.count("HEARTBEAT", size, delivered)
            news = self._news(j, entries) if delivered and entries else None
            if news:
                self.at(self.now + self._latency(), self._deliver, j, news)

    def _news(self, j: int, entries: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
        """The entries that would change ``j``'s view. A view only ever moves up in (incarnation,
        state), so an entry that does not win now never will: dropping it here is exact, and
        spares the event loop the redundant deliveries that make up most of an epidemic."""
        out = []
        for e in entries:
            tr = self.tracked.get(e[0])
            cur_inc = 0 if tr is None else int(tr.inc[j])
            if e[2] > cur_inc or (e[2] == cur_inc and e[1] > (ALIVE if tr is None else int(tr.state[j]))):
                out.append(e)
        return out

    def _select(self, i: int) -> list[tuple[int, int, int]]:
        """``Piggyback.select``: fewest sends first, then freshest, up to the capacity; each
        selected change counts ``fanout`` sends and leaves the queue at the retransmit limit."""
        own = self.tracked.get(i)
        out = [] if own is None else [(i, int(own.state[i]), int(own.inc[i]))]
        queue = self.piggy[i]
        if not queue:
            return out
        if len(queue) > self.sz.capacity:
            order = heapq.nsmallest(self.sz.capacity, queue, key=lambda s: (queue[s][0], -queue[s][1]))
        else:
            order = sorted(queue, key=lambda s: (queue[s][0], -queue[s][1]))
        for s in order:
            tr = self.tracked[s]
            out.append((s, int(tr.state[i]), int(tr.inc[i])))
            queue[s][0] += self.p.gossip_fanout
            if queue[s][0] >= self.limit:
                del queue[s]
        return out

    def _deliver(self, j: int, entries: list[tuple[int, int, int]]) -> None:
        if not self.running[j]:
            return
        ready = self._ready(j, self.now)
        if ready > self.now + self.m.service_s + 1e-9:
            self.at(ready, self._apply, j, entries)
        else:
            self._apply(j, entries)

    def _apply(self, j: int, entries: list[tuple[int, int, int]]) -> None:
        if not self.running[j]:
            return
        for subj, state, inc in entries:
            self._merge(j, subj, state, inc)

    def _ping_rtt(self, i: int, j: int, sent: float, timeout: float) -> Optional[float]:
        """When the PONG for a PING sent at ``sent`` arrives back (None: lost or never)."""
        sz = self.sz
        if self._lost():
            self.c.count("PING", sz.ping, False)
            return None
        arrive = sent + self._latency()
        if not self.running[j] or (j in self.killed_at and self.killed_at[j] <= arrive):
            self.c.count("PING", sz.ping, False)
            return None
        self.c.count("PING", sz.ping, True)
        answer = self._ready(j, arrive)
        lost = self._lost()
        self.c.count("PONG", sz.pong, not lost)
        return None if lost else answer + self._latency()

    def _probe(self, i: int) -> None:
        p = self.p
        j = self._random_peer(i, skip_dead=False)
        if j < 0 or (self._view(i, j) == DEAD and self.cycles[i] % 30 != 0):
            self._next_cycle(i, self.now)  # the library skips most DEAD targets: a wasted cycle
            return
        if self.on_probe is not None:
            self.on_probe(i, j)
        t0 = self.now
        deadline, best = t0, None
        for attempt in range(p.ping_retries):
            timeout = p.ping_timeout_s * (1.0 if attempt == 0 else 0.8)
            sent = deadline
            back = self._ping_rtt(i, j, sent, timeout)
            deadline = sent + timeout
            if back is not None:
                best = back if best is None else min(best, back)
            if best is not None and best <= deadline:
                break
        ok = best is not None and best <= deadline
        end = best if ok else deadline
        self.at(end, self._probe_done, i, j, ok)

    def _probe_done(self, i: int, j: int, ok: bool) -> None:
        if not self.running[i]:
            return
        state = self._view(i, j)
        if ok:
            if state != ALIVE:  # mark_alive on a PONG: incarnation + 1
                self._set(i, j, ALIVE, int(self.tracked[j].inc[i]) + 1)
        elif state == ALIVE:  # mark_suspect without an incarnation: + 1; DEAD is never demoted
            inc = int(self.tracked[j].inc[i]) + 1 if j in self.tracked else 1
            self._set(i, j, SUSPECT, inc)
            self.c.suspicions_raised += 1
            self.suspected_here.add((i, j))
            size = self.sz.heartbeat(1)  # buddy: the suspect hears it at once
            delivered = self.running[j] and not self._lost()
            self.c.count("HEARTBEAT", size, delivered)
            if delivered:
                self.at(self.now + self._latency(), self._deliver, j, [(j, SUSPECT, inc)])
        self._next_cycle(i, self.now)

    def _next_cycle(self, i: int, end: float) -> None:
        self.at(end + self.cycle_work + self.p.protocol_period_s, self._cycle, i)

    def _indirect_probes(self, i: int) -> None:
        """Only for members this node suspected itself, once, off the loop: k PING-REQs; a helper
        that reaches the target acks; the first ack makes the target ALIVE (incarnation + 1)."""
        mine = [s for (o, s) in self.suspected_here if o == i] if self.suspected_here else []
        for j in mine:
            self.suspected_here.discard((i, j))
            if self._view(i, j) != SUSPECT:
                continue
            sz, t = self.sz, self.now
            window = 2 * self.p.ping_timeout_s
            first: Optional[float] = None
            for _ in range(self.p.indirect_probes):
                h = self._random_peer(i, exclude=j)
                if h < 0:
                    break
                lost = self._lost() or not self.running[h]
                self.c.count("PING-REQ", sz.ping_req, not lost)
                if lost:
                    continue
                at_helper = self._ready(h, t + self._latency())
                back = self._ping_rtt(h, j, at_helper, self.p.ping_timeout_s)
                if back is None or back - at_helper > self.p.ping_timeout_s:
                    self.c.count("PING-REQ-ACK", sz.ping_req_ack, True)  # "unreachable"
                    continue
                lost = self._lost()
                self.c.count("PING-REQ-ACK", sz.ping_req_ack, not lost)
                if not lost:
                    ack = back + self._latency()
                    first = ack if first is None else min(first, ack)
            if first is not None and first - t <= window:
                self.at(first, self._indirect_ok, i, j)

    def _indirect_ok(self, i: int, j: int) -> None:
        if self.running[i] and self._view(i, j) == SUSPECT:
            self._set(i, j, ALIVE, int(self.tracked[j].inc[i]) + 1)

    # -- the engine's tick work ---------------------------------------------------------------------

    def _expire(self, obs: int, subj: int, inc: int) -> None:
        """``expire_suspects``: still the same suspicion after the timeout -> DEAD (+1), and a
        death this node declared is announced."""
        if not self.running[obs] or obs == subj:
            return
        if self.busy_until[obs] > self.now:
            self.at(self.busy_until[obs], self._expire, obs, subj, inc)
            return
        tr = self.tracked[subj]
        if tr.state[obs] != SUSPECT or tr.inc[obs] != inc:
            return
        self._set(obs, subj, DEAD, inc + 1)
        self._announce(obs, subj)

    def _confirm_failed(self, obs: int, subj: int, inc: int) -> None:
        """The view publishes ``failed`` once a raw DEAD lasted ``failed_confirm_s`` unrefuted."""
        tr = self.tracked[subj]
        if not self.running[obs] or tr.state[obs] != DEAD or not np.isnan(tr.failed_at[obs]):
            return
        tr.failed_at[obs] = self.now
        self.c.failed_events += 1
        self.c.failed_events_about[subj] = self.c.failed_events_about.get(subj, 0) + 1

    def _refute(self, i: int) -> None:
        if not self.running[i]:
            return
        if self.busy_until[i] > self.now:
            self.at(self.busy_until[i], self._refute, i)
            return
        tr = self.tracked.get(i)
        if tr is None or tr.state[i] == ALIVE:
            return
        self.c.refutations += 1
        self._set(i, i, ALIVE, int(tr.inc.max()) + _REFUTE_BUMP)
        self._announce(i, i)

    def _announce(self, i: int, subj: int) -> None:
        """The changed entries to at most 48 random members, at most every 0.5 s."""
        self.pending_announce[i].add(subj)
        when = self.last_announce[i] + _ANNOUNCE_GAP_S
        if when > self.now:
            if len(self.pending_announce[i]) == 1:
                self.at(when, self._send_announce, i)
            return
        self._send_announce(i)

    def _send_announce(self, i: int) -> None:
        if not self.running[i] or not self.pending_announce[i]:
            return
        subjects, self.pending_announce[i] = sorted(self.pending_announce[i] | {i}), set()
        self.last_announce[i] = self.now
        self.c.announces += 1
        entries = [(s, self._view(i, s), int(self.tracked[s].inc[i]) if s in self.tracked else 0) for s in subjects]
        entries = [e for e in entries if e[0] in self.tracked]
        size = self.sz.heartbeat(len(subjects) - 1)
        targets = min(_ANNOUNCE_MAX, self.n - 1)
        picked = set(self.rng.sample(range(self.n), min(self.n, targets + 1))) - {i}
        for j in list(picked)[:targets]:
            delivered = self.running[j] and not self._lost()
            self.c.count("HEARTBEAT", size, delivered)
            news = self._news(j, entries) if delivered and entries else None
            if news:
                self.at(self.now + self._latency(), self._deliver, j, news)

    # -- anti-entropy -------------------------------------------------------------------------------

    def _sync(self, i: int, next_in: float = 0.0) -> None:
        """Full lists both ways with one random member (SYNC-REQ + push; SYNC-RESP back), over TCP
        beyond the budget; merging a whole list occupies each side's loop."""
        if not self.running[i]:
            return
        self.at(self.now + (next_in or self._sync_interval() * self.rng.uniform(0.75, 1.25)), self._sync, i)
        j = self._random_peer(i)
        if j < 0:
            return
        sz = self.sz
        up = self.running[j]
        self.c.count("SYNC-REQ", sz.sync_req, up)
        small = sz.full_list <= self.p.packet_budget_bytes  # a short list still goes as a datagram
        self.c.count("HEARTBEAT", sz.full_list, up, datagram=small)  # the push: our whole list
        if not up:
            return
        self.c.count("SYNC-RESP", sz.full_list, True, datagram=small)
        merge = self.n * self.m.merge_per_entry_s
        t_j = self._ready(j, self.now + self._latency())
        self.busy_until[j] = max(self.busy_until[j], t_j + merge)
        mine = self._snapshot(i)
        self.at(t_j + merge, self._apply, j, mine)
        t_i = t_j + merge + self._latency()
        self.at(t_i, self._sync_back, i, j)

    def _sync_back(self, i: int, j: int) -> None:
        if not self.running[i]:
            return
        merge = self.n * self.m.merge_per_entry_s
        start = max(self.now, self.busy_until[i])
        self.busy_until[i] = start + merge
        self.at(start + merge, self._apply, i, self._snapshot(j))

    def _snapshot(self, i: int) -> list[tuple[int, int, int]]:
        return [(s, int(tr.state[i]), int(tr.inc[i])) for s, tr in self.tracked.items()]

    # -- faults -------------------------------------------------------------------------------------

    def kill(self, v: int, at: float) -> None:
        def do() -> None:
            self.running[v] = False
            self.killed_at[v] = self.now
            self.piggy[v].clear()
        self.at(at, do)

    def stall(self, i: int, start: float, length: float) -> None:
        """Node ``i``'s loop is blocked for ``length`` (GC, a stalled host, SIGSTOP)."""
        def do() -> None:
            self.busy_until[i] = max(self.busy_until[i], self.now + length)
            refute_after = max(0.5, self.p.ping_retries * self.p.ping_timeout_s + self.p.protocol_period_s)
            if length > refute_after:  # the engine notices the pause and refutes unasked
                self.at(self.now + length, self._pause_refute, i)
        self.at(start, do)

    def _pause_refute(self, i: int) -> None:
        if self.running[i]:
            tr = self._track(i)
            self._set(i, i, ALIVE, int(tr.inc.max()) + _REFUTE_BUMP)
            self._announce(i, i)

    def _contention(self, i: int) -> None:
        if not self.running[i]:
            return
        length = self.rng.expovariate(1.0 / self.m.contention_mean_s)
        self.busy_until[i] = max(self.busy_until[i], self.now + length)
        self.at(self.now + self.rng.expovariate(self.m.contention_rate), self._contention, i)
