"""The work queue: prioritised items, claimed under a lease and fenced by a claim token.

Lifecycle: pending -> claimed -> running -> completed | failed. ``fail`` and lease expiry count an
attempt and go back to pending until ``max_attempts`` is reached; ``release_node`` (a node
confirmed dead) returns its claims to pending without counting an attempt.

Costs do not grow with the queue: a claim takes the head of the right ``PendingQueue`` group
(O(groups + log n)), expiries pop a deadline heap, a node's claims are indexed by node. Items
are replaced, never mutated in place, which is what lets ``freeze`` share them with a snapshot.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from ._common import (
    INVALID_STATE,
    ALREADY_EXISTS,
    MAX_LONG_TEXT,
    NOT_FOUND,
    STALE_TOKEN,
    Args,
    Core,
    clone,
    ok,
    refuse,
)
from ._index import CowDict, Frozen, KeyedHeap, PendingQueue

PENDING, CLAIMED, RUNNING = "pending", "claimed", "running"
COMPLETED, FAILED = "completed", "failed"
STATUSES = (PENDING, CLAIMED, RUNNING, COMPLETED, FAILED)
LEASED = (CLAIMED, RUNNING)

DEFAULT_PRIORITY = 50
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_TIMEOUT_S = 3600.0
MAX_PRIORITY = 10**9
MAX_ATTEMPTS = 1000


class WorkQueue:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.items = CowDict()
        self.finished: OrderedDict[str, None] = OrderedDict()  # finish order, oldest first
        # Derived indexes, rebuilt on restore; never in a snapshot.
        self.counts = dict.fromkeys(STATUSES, 0)
        self.queue = PendingQueue()
        self.leases = KeyedHeap()  # leased work id -> (expires_at, seq)
        self.by_node: dict[str, dict[str, None]] = {}  # node id -> its leased work ids

    @property
    def next_expiry(self) -> float | None:
        """When the next lease ends (None: nothing is leased)."""
        top = self.leases.peek()
        return None if top is None else top[0][0]

    # -- commands ---------------------------------------------------------------------------

    def add(self, a: Args) -> dict[str, Any]:
        work_id = a.text("work_id")
        work_type = a.text("work_type")
        priority = a.integer("priority", DEFAULT_PRIORITY, lo=-MAX_PRIORITY, hi=MAX_PRIORITY)
        config = a.mapping("config", {})
        capabilities = a.texts("capabilities", [])
        max_attempts = a.integer("max_attempts", DEFAULT_MAX_ATTEMPTS, lo=1, hi=MAX_ATTEMPTS)
        timeout_s = a.duration("timeout_s", DEFAULT_TIMEOUT_S)
        a.done()
        existing = self.items.get(work_id)
        if existing is not None:
            return refuse(ALREADY_EXISTS, f"work {work_id!r} already exists",
                          status=existing["status"])
        item = {
            "work_id": work_id,
            "work_type": work_type,
            "priority": priority,
            "config": config,
            "capabilities": capabilities,
            "max_attempts": max_attempts,
            "timeout_s": timeout_s,
            "seq": self.core.next("work"),
            "status": PENDING,
            "attempts": 0,
            "created_at": self.core.clock,
            "claimed_by": None,
            "claim_token": None,
            "claimed_at": None,
            "lease_s": None,
            "expires_at": None,
            "started_at": None,
            "finished_at": None,
            "result": None,
            "error": None,
        }
        self.items[work_id] = item
        self.counts[PENDING] += 1
        self.queue.push(item)
        return ok(work_id=work_id, status=PENDING)

    def claim(self, a: Args) -> dict[str, Any]:
        node_id = a.text("node_id")
        capabilities = set(a.texts("capabilities", []))
        work_types = set(a.texts("work_types", []))
        lease_s = a.duration("lease_s", None)
        a.done()
        work_id = self.queue.pop_best(work_types, capabilities)
        if work_id is None:
            return ok(item=None, claim_token=None, expires_at=None)
        return self.take(work_id, node_id, lease_s)

    def take(self, work_id: str, node_id: str, lease_s: float | None) -> dict[str, Any]:
        """Lease the pending item ``work_id`` (already out of the pending queue) to ``node_id``."""
        item = self.items[work_id]
        if item["status"] != PENDING:  # unreachable while the queue matches the items
            return refuse(INVALID_STATE, f"work {work_id!r} is not pending", status=item["status"])
        clock = self.core.clock
        lease = item["timeout_s"] if lease_s is None else lease_s
        item = self._put(item, status=CLAIMED, claimed_by=node_id, claim_token=self.core.next("claim"),
                         claimed_at=clock, lease_s=lease, expires_at=clock + lease, started_at=None)
        return ok(item=clone(item), claim_token=item["claim_token"], expires_at=item["expires_at"])

    def start(self, a: Args) -> dict[str, Any]:
        work_id, token = self._fence_args(a)
        a.done()
        item, refusal = self._leased_item(work_id, token)
        if item is None:
            return refusal
        if item["status"] == CLAIMED:
            item = self._put(item, status=RUNNING, started_at=self.core.clock)
        return ok(work_id=work_id, status=RUNNING, expires_at=item["expires_at"])

    def renew(self, a: Args) -> dict[str, Any]:
        work_id, token = self._fence_args(a)
        lease_s = a.duration("lease_s", None)
        a.done()
        item, refusal = self._leased_item(work_id, token)
        if item is None:
            return refusal
        lease = item["lease_s"] if lease_s is None else lease_s
        item = self._put(item, lease_s=lease, expires_at=self.core.clock + lease)
        return ok(work_id=work_id, status=item["status"], expires_at=item["expires_at"])

    def complete(self, a: Args) -> dict[str, Any]:
        work_id, token = self._fence_args(a)
        result = a.data("result")
        a.done()
        item, refusal = self._leased_item(work_id, token)
        if item is None:
            return refusal
        item = self._finish(item, COMPLETED, result=result)
        return ok(work_id=work_id, status=COMPLETED, attempts=item["attempts"])

    def fail(self, a: Args) -> dict[str, Any]:
        work_id, token = self._fence_args(a)
        error = a.text("error", "", max_len=MAX_LONG_TEXT, empty=True)
        retry = a.flag("retry", True)
        a.done()
        item, refusal = self._leased_item(work_id, token)
        if item is None:
            return refusal
        item = self._count_failure(item, error, retry)
        return ok(work_id=work_id, status=item["status"], attempts=item["attempts"])

    # -- driven by the machine --------------------------------------------------------------

    def sweep(self) -> list[str]:
        """Expire every lease that has passed on the machine clock; returns the work ids."""
        clock = self.core.clock
        expired = []
        # Deadline order, then seq: the heap's own order. Handling one never leases another.
        while (top := self.leases.peek()) is not None and top[0][0] <= clock:
            self._count_failure(self.items[top[1]], "lease expired", retry=True)
            expired.append(top[1])
        return expired

    def release_node(self, node_id: str) -> list[str]:
        """Return every claim of ``node_id`` to pending; a dead node costs the item no attempt."""
        mine = [self.items[w] for w in self.by_node.get(node_id, ())]
        mine.sort(key=lambda item: item["seq"])
        for item in mine:
            self._requeue(item, f"node {node_id} released")
        return [item["work_id"] for item in mine]

    def compact(self) -> None:
        limits = self.core.limits
        horizon = self.core.clock - limits.finished_work_ttl_s
        while self.finished:
            work_id = next(iter(self.finished))
            if (len(self.finished) <= limits.max_finished_work
                    and self.items[work_id]["finished_at"] > horizon):
                break
            self.finished.popitem(last=False)
            self.counts[self.items[work_id]["status"]] -= 1
            del self.items[work_id]

    # -- reads ------------------------------------------------------------------------------

    def get(self, work_id: str) -> dict[str, Any] | None:
        item = self.items.get(work_id)
        return clone(item) if item is not None else None

    def list_items(self, status: str | None = None, node_id: str | None = None,
             limit: int | None = None) -> list[dict[str, Any]]:
        """Items in add order; pending items alone come in claim order (priority, then age)."""
        items = [i for i in list(self.items.values())
                 if (status is None or i["status"] == status)
                 and (node_id is None or i["claimed_by"] == node_id)]
        if status == PENDING:
            items.sort(key=lambda i: (-i["priority"], i["seq"]))
        return [clone(i) for i in items[:limit]]

    def stats(self) -> dict[str, int]:
        return {**self.counts, "total": len(self.items)}

    # -- snapshot ---------------------------------------------------------------------------

    def freeze(self) -> tuple[Frozen, list[str]]:
        return self.items.freeze(), list(self.finished)

    @staticmethod
    def thaw(frozen: tuple[Frozen, list[str]], copy: Any = clone) -> dict[str, Any]:
        items, finished = frozen
        # copy=None keeps the frozen view itself (a pickler streams it as a dict).
        return {"items": items if copy is None else {w: copy(i) for w, i in items.items()},
                "finished": list(finished)}

    def restore(self, data: dict[str, Any]) -> None:
        self.items = CowDict((str(w), clone(i)) for w, i in data["items"].items())
        self.finished = OrderedDict((w, None) for w in data["finished"])
        self.counts = dict.fromkeys(STATUSES, 0)
        self.queue, self.leases, self.by_node = PendingQueue(), KeyedHeap(), {}
        for item in self.items.values():
            self.counts[item["status"]] += 1
            self._index(None, item)
        if set(self.finished) != {w for w, i in self.items.items() if i["status"] not in
                                  (PENDING, *LEASED)}:
            raise ValueError("work: finished index does not match the items")

    # -- helpers ----------------------------------------------------------------------------

    def _fence_args(self, a: Args) -> tuple[str, int]:
        return a.text("work_id"), a.integer("claim_token", lo=1, hi=2**63 - 1)

    def _leased_item(self, work_id: str, token: int) -> tuple[Any, Any]:
        item = self.items.get(work_id)
        if item is None:
            return None, refuse(NOT_FOUND, f"work {work_id!r} not found")
        if item["status"] not in LEASED or item["claim_token"] != token:
            return None, refuse(STALE_TOKEN,
                                f"work {work_id!r}: claim token {token} is not the current claim",
                                status=item["status"])
        return item, None

    def _put(self, item: dict[str, Any], **changes: Any) -> dict[str, Any]:
        """Store a changed copy of a leased item (never mutate: a frozen view may share it) and
        keep the counts, the deadline heap, the node index and the pending queue in step."""
        new = {**item, **changes}
        self.items[new["work_id"]] = new
        self.counts[item["status"]] -= 1
        self.counts[new["status"]] += 1
        self._index(item, new)
        return new

    def _index(self, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
        work_id = new["work_id"]
        if old is not None and old["status"] in LEASED and (
                new["status"] not in LEASED or old["claimed_by"] != new["claimed_by"]):
            mine = self.by_node[old["claimed_by"]]
            del mine[work_id]
            if not mine:
                del self.by_node[old["claimed_by"]]
        if new["status"] in LEASED:
            self.leases.set(work_id, (new["expires_at"], new["seq"]))
            self.by_node.setdefault(new["claimed_by"], {})[work_id] = None
        else:
            self.leases.discard(work_id)
            if new["status"] == PENDING:  # a claim takes the item out of the queue itself
                self.queue.push(new)

    def _count_failure(self, item: dict[str, Any], error: str, retry: bool) -> dict[str, Any]:
        attempts = item["attempts"] + 1
        if retry and attempts < item["max_attempts"]:
            return self._requeue(item, error, attempts=attempts)
        return self._finish(item, FAILED, error=error, attempts=attempts)

    def _requeue(self, item: dict[str, Any], error: str, **more: Any) -> dict[str, Any]:
        return self._put(item, status=PENDING, claimed_by=None, claim_token=None, claimed_at=None,
                         expires_at=None, started_at=None, error=error, **more)

    def _finish(self, item: dict[str, Any], status: str, result: Any = None,
                error: str | None = None, **more: Any) -> dict[str, Any]:
        # claimed_by and claim_token stay as a record of who finished it.
        item = self._put(item, status=status, expires_at=None, finished_at=self.core.clock,
                         result=result, error=error, **more)
        self.finished[item["work_id"]] = None
        return item
