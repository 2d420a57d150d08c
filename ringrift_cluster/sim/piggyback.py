"""Every node's piggyback queue (``membership.swim.gossip.Piggyback``) as two matrices.

The code's rule: a change is (re)queued with zero sends; a heartbeat takes the queued changes
with the fewest sends, freshest first, up to its capacity; each taken change counts ``fanout``
sends and leaves the queue at the retransmit limit.

A node's queue is its row: sends (-1: not queued) and the change's freshness (a global
counter). A heartbeat reads the row in one numpy pass and, when more is queued than fits, picks
by (sends, -freshness) with a partial sort. A dict per node, the first form, grew to thousands
of entries per node at high loss and was sorted in Python every cycle.
"""

from __future__ import annotations

import numpy as np


class PiggybackQueues:
    def __init__(self, n: int, capacity: int, fanout: int, limit: int) -> None:
        self.capacity, self.fanout, self.limit = capacity, fanout, limit
        self.sends = np.full((n, n), -1, dtype=np.int8 if limit + fanout < 127 else np.int16)
        self.seq = np.zeros((n, n), dtype=np.int64)
        self.length = np.zeros(n, dtype=np.int64)  # queued changes per node
        self._seq = 0

    def changed(self, i: int, subj: int) -> None:
        if self.sends[i, subj] < 0:
            self.length[i] += 1
        self._seq += 1
        self.sends[i, subj] = 0
        self.seq[i, subj] = self._seq

    def changed_many(self, i: int, subjs: np.ndarray) -> None:
        """``changed`` for several distinct subjects at once, in the order given."""
        row = self.sends[i]
        self.length[i] += int(np.count_nonzero(row[subjs] < 0))
        row[subjs] = 0
        self.seq[i, subjs] = np.arange(self._seq + 1, self._seq + 1 + len(subjs))
        self._seq += len(subjs)

    def clear(self, i: int) -> None:
        self.sends[i, :] = -1
        self.length[i] = 0

    def select(self, i: int) -> list[int]:
        """The subjects one heartbeat of node ``i`` carries besides its own entry."""
        if self.length[i] == 0:
            return []
        sends = self.sends[i]
        queued = np.flatnonzero(sends >= 0)
        cap = self.capacity
        if len(queued) > cap:
            rank = sends[queued].astype(np.int64) * (1 << 40) - self.seq[i, queued]  # fewest sends, then freshest
            queued = queued[np.argpartition(rank, cap - 1)[:cap]]
        after = sends[queued] + self.fanout
        done = after >= self.limit
        after[done] = -1
        sends[queued] = after
        self.length[i] -= int(np.count_nonzero(done))
        return queued.tolist()
