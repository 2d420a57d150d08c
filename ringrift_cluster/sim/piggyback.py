"""Every node's piggyback queue (``swim_gossip.Piggyback``) as two matrices.

The code's rule: a change is (re)queued with zero sends; a heartbeat takes the queued changes
with the fewest sends, freshest first, up to its capacity; each taken change counts ``fanout``
sends and leaves the queue at the retransmit limit.

Fresh changes (zero sends) are also kept per node in arrival order, so the common case, a
heartbeat filled from them, takes the newest from the end of a list; only a heartbeat that
needs older changes sorts the node's queue (one numpy pass over its row). A dict per node, the
previous form, grew to thousands of entries per node at high loss and sorted them every cycle.
"""

from __future__ import annotations

import numpy as np


class PiggybackQueues:
    def __init__(self, n: int, capacity: int, fanout: int, limit: int) -> None:
        self.capacity, self.fanout, self.limit = capacity, fanout, limit
        self.sends = np.full((n, n), -1, dtype=np.int8) if limit < 120 else np.full((n, n), -1, dtype=np.int16)
        self.seq = np.zeros((n, n), dtype=np.int32)  # the change's freshness (a global counter)
        self.fresh: list[list[tuple[int, int]]] = [[] for _ in range(n)]  # (subject, seq), oldest first
        self.length = np.zeros(n, dtype=np.int64)
        self._seq = 0

    def changed(self, i: int, subj: int) -> None:
        if self.sends[i, subj] < 0:
            self.length[i] += 1
        self._seq += 1
        self.sends[i, subj] = 0
        self.seq[i, subj] = self._seq
        fresh = self.fresh[i]
        fresh.append((subj, self._seq))
        if len(fresh) > 8 * self.capacity:
            # Under a flood only the newest are ever taken from here; older unsent changes stay
            # queued in the matrix, where ``select`` finds them once the list runs dry.
            del fresh[: len(fresh) // 2]

    def changed_many(self, i: int, subjs: np.ndarray) -> None:
        """``changed`` for several distinct subjects at once, in the order given."""
        row = self.sends[i]
        self.length[i] += int(np.count_nonzero(row[subjs] < 0))
        seqs = np.arange(self._seq + 1, self._seq + 1 + len(subjs), dtype=np.int64)
        self._seq += len(subjs)
        row[subjs] = 0
        self.seq[i, subjs] = seqs
        fresh = self.fresh[i]
        fresh.extend(zip(subjs.tolist(), seqs.tolist()))
        if len(fresh) > 8 * self.capacity:
            del fresh[: len(fresh) // 2]

    def clear(self, i: int) -> None:
        self.sends[i, :] = -1
        self.fresh[i] = []
        self.length[i] = 0

    def select(self, i: int) -> list[int]:
        """The subjects one heartbeat of node ``i`` carries besides its own entry."""
        if self.length[i] == 0:
            return []
        cap, sends, seq = self.capacity, self.sends[i], self.seq[i]
        out: list[int] = []
        fresh = self.fresh[i]
        while fresh and len(out) < cap:
            # The newest fresh changes, checked in one pass: still unsent, and their latest change.
            tail = fresh[-2 * cap:]
            del fresh[-2 * cap:]
            subj = np.fromiter((t[0] for t in tail), dtype=np.int64, count=len(tail))
            q = np.fromiter((t[1] for t in tail), dtype=np.int64, count=len(tail))
            ok = np.flatnonzero((sends[subj] == 0) & (seq[subj] == q))
            take = ok[::-1][: cap - len(out)]  # freshest first
            if len(take) < len(ok):  # valid but not taken this time: back on the list, in order
                left = np.sort(ok[::-1][cap - len(out):])
                fresh.extend(tail[k] for k in left.tolist())
            picked = subj[take]
            sends[picked] = -2  # taken: not again in this heartbeat
            out.extend(picked.tolist())
        if len(out) < cap and self.length[i] > len(out):
            queued = np.flatnonzero(sends >= 0)
            if len(queued):
                order = np.lexsort((-seq[queued], sends[queued]))[: cap - len(out)]
                out.extend(queued[order].tolist())
        if not out:
            return out
        idx = np.array(out)
        sends[idx] = np.where(sends[idx] == -2, 0, sends[idx]) + self.fanout
        done = idx[sends[idx] >= self.limit]
        if len(done):
            sends[done] = -1
            self.length[i] -= len(done)
        return out
