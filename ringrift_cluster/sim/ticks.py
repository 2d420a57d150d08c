"""The engine's tick work (suspicion expiry, the published ``failed``, refutation, announces,
telling the dead) and anti-entropy. A mixin of ``engine.Sim``."""

from __future__ import annotations

from typing import Any

import numpy as np

from .views import ALIVE, DEAD, SUSPECT

_ANNOUNCE_MAX = 48
_ANNOUNCE_GAP_S = 0.5
_TELL_DEAD_EVERY_S = 1.0  # ``membership.swim.hooks.tell_the_dead``: at most once per member per second
# A refutation's clock-ms incarnation outranks any run of +1 bumps (views keep it in an int32).
_REFUTE_BUMP = 10**4


class TickWork:
    # Set by ``engine.Sim``; named here for readers (and type checkers) of this mixin.
    n: int
    p: Any
    m: Any
    sz: Any
    c: Any
    rng: Any
    views: Any
    running: np.ndarray
    busy_until: np.ndarray
    pending_announce: list[set[int]]
    last_announce: np.ndarray
    told_dead: dict[tuple[int, int], float]
    now: float

    def _expire(self, obs: int, subj: int, inc: int) -> None:
        """``expire_suspects``: still the same suspicion after the timeout -> DEAD (+1), and a
        death this node declared is announced."""
        if not self.running[obs] or obs == subj:
            return
        if self.busy_until[obs] > self.now:
            self.at(self.busy_until[obs], self._expire, obs, subj, inc)
            return
        if self.views.entry[obs, subj] != inc * 4 + SUSPECT:
            return
        self._set(obs, subj, DEAD, inc + 1)
        self._announce(obs, subj)

    def _confirm_failed(self, obs: int, subj: int, inc: int) -> None:
        """The view publishes ``failed`` once a raw DEAD lasted ``failed_confirm_s`` unrefuted."""
        failed = self.views.failed_at.setdefault(subj, {})
        if not self.running[obs] or self._view(obs, subj) != DEAD or obs in failed:
            return
        failed[obs] = self.now
        self.c.failed_events += 1
        self.c.failed_events_about[subj] = self.c.failed_events_about.get(subj, 0) + 1

    def _refute(self, i: int) -> None:
        if not self.running[i]:
            return
        if self.busy_until[i] > self.now:
            self.at(self.busy_until[i], self._refute, i)
            return
        if self._view(i, i) == ALIVE:
            return
        self.c.refutations += 1
        self._pause_refute(i)

    def _pause_refute(self, i: int) -> None:
        """Own entry ALIVE, above every incarnation anyone gave it, announced."""
        if self.running[i]:
            inc = (int(self.views.entry[:, i].max()) >> 2) + _REFUTE_BUMP
            assert inc < 2**29, "incarnations outgrew the views' int32"
            self._set(i, i, ALIVE, inc)
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
        subjs = np.array(subjects)
        keys = self.views.entry[i, subjs]
        size = self.sz.heartbeat(len(subjects) - 1)
        targets = min(_ANNOUNCE_MAX, self.n - 1)
        picked = set(self.rng.sample(range(self.n), min(self.n, targets + 1))) - {i}
        for j in list(picked)[:targets]:
            delivered = self.running[j] and not self._lost()
            self.c.count("HEARTBEAT", size, delivered)
            if delivered:
                self._send_entries(i, j, subjs, keys)

    # -- telling the dead ---------------------------------------------------------------------------

    def _heard(self, j: int, i: int) -> None:
        """``j`` received a datagram from ``i``. If ``j`` holds ``i`` DEAD, its next tick sends
        ``i`` its own entry (``membership.swim.hooks.tell_the_dead``), at most once a second."""
        if not self.m.tell_the_dead or self.views.entry[j, i] & 3 != DEAD:
            return
        if self.now - self.told_dead.get((j, i), -1e9) < _TELL_DEAD_EVERY_S:
            return
        self.told_dead[(j, i)] = self.now
        self.at(self.now + self._latency() + self.rng.random() * self.m.tick_s, self._tell_dead, j, i)

    def _tell_dead(self, j: int, i: int) -> None:
        if not self.running[j] or self._view(j, i) != DEAD:
            return
        self.c.dead_told += 1
        delivered = self.running[i] and not self._lost()
        self.c.count("HEARTBEAT", self.sz.heartbeat_own, delivered)
        if delivered:
            self._send_entries(j, i, np.array([i]), np.array([self.views.entry[j, i]]))

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
        self._heard(j, i)
        self.c.count("SYNC-RESP", sz.full_list, True, datagram=small)
        merge = self.n * self.m.merge_per_entry_s
        t_j = self._ready(j, self.now + self._latency())
        self.busy_until[j] = max(self.busy_until[j], t_j + merge)
        self.at(t_j + merge, self._apply, j, *self._snapshot(i))
        t_i = t_j + merge + self._latency()
        self.at(t_i, self._sync_back, i, j)

    def _sync_back(self, i: int, j: int) -> None:
        if not self.running[i]:
            return
        self._heard(i, j)
        merge = self.n * self.m.merge_per_entry_s
        start = max(self.now, self.busy_until[i])
        self.busy_until[i] = start + merge
        self.at(start + merge, self._apply, i, *self._snapshot(j))

    def _snapshot(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Node ``i``'s entries for every member that ever changed (the rest are the same in every
        list)."""
        subjs = np.fromiter(sorted(self.views.changed), dtype=np.int64, count=len(self.views.changed))
        return subjs, self.views.entry[i, subjs]
