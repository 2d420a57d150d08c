"""The library's protocol cycle, per node: heartbeat, indirect probes of its own suspects, one
random probe, then the cycle's work and the sleep. A mixin of ``engine.Sim``."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .views import ALIVE, DEAD, SUSPECT


class ProtocolCycle:
    # Set by ``engine.Sim``; named here for readers (and type checkers) of this mixin.
    n: int
    p: Any
    m: Any
    sz: Any
    c: Any
    views: Any
    pb: Any
    running: np.ndarray
    busy_until: np.ndarray
    cycles: np.ndarray
    killed_at: dict[int, float]
    suspected_here: list[set[int]]
    now: float

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
        """The own entry plus ``Piggyback.select`` to ``gossip_fanout`` random live members."""
        chosen = self.pb.select(i)
        size = self.sz.heartbeat(len(chosen))
        entry = self.views.entry
        subjs = np.array(chosen + [i]) if chosen else None
        keys = entry[i, subjs] if chosen else None
        own = int(entry[i, i])
        for _ in range(self.p.gossip_fanout):
            j = self._random_peer(i)
            if j < 0:
                break
            delivered = self.running[j] and not self._lost()
            self.c.count("HEARTBEAT", size, delivered)
            if not delivered:
                continue
            if subjs is not None:
                self._send_entries(i, j, subjs, keys)
            elif own > entry[j, i]:
                self._send_entries(i, j, np.array([i]), np.array([own]))
            else:  # idle: only the own entry, and nothing new in it
                self._heard(j, i)

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
        self._heard(j, i)
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
                self._set(i, j, ALIVE, self._inc(i, j) + 1)
        elif state == ALIVE:  # mark_suspect without an incarnation: + 1; DEAD is never demoted
            inc = max(1, self._inc(i, j) + 1)
            self._set(i, j, SUSPECT, inc)
            self.c.suspicions_raised += 1
            self.suspected_here[i].add(j)
            size = self.sz.heartbeat(1)  # buddy: the suspect hears it at once
            delivered = self.running[j] and not self._lost()
            self.c.count("HEARTBEAT", size, delivered)
            if delivered:
                self._send_entries(i, j, np.array([j]), np.array([inc * 4 + SUSPECT]))
        self._next_cycle(i, self.now)

    def _next_cycle(self, i: int, end: float) -> None:
        self.at(end + self.cycle_work + self.p.protocol_period_s, self._cycle, i)

    def _indirect_probes(self, i: int) -> None:
        """Only for members this node suspected itself, once, off the loop: k PING-REQs; a helper
        that reaches the target acks; the first ack makes the target ALIVE (incarnation + 1)."""
        mine, self.suspected_here[i] = self.suspected_here[i], set()
        for j in sorted(mine):
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
                self._heard(h, i)
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
            self._set(i, j, ALIVE, self._inc(i, j) + 1)
