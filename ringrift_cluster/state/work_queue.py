"""The work queue: prioritised items, claimed under a lease and fenced by a claim token.

Lifecycle: pending -> claimed -> running -> completed | failed. ``fail`` and lease expiry count an
attempt and go back to pending until ``max_attempts`` is reached; ``release_node`` (a node
confirmed dead) returns its claims to pending without counting an attempt.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from ._common import (
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
        self.items: dict[str, dict[str, Any]] = {}
        self.finished: OrderedDict[str, None] = OrderedDict()  # finish order, oldest first
        # Derived indexes, rebuilt on restore. Their order never influences the state.
        self._pending: dict[str, None] = {}
        self._leased: dict[str, None] = {}
        self.next_expiry: float | None = None  # no lease ends before this (may be too early)

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
        self.items[work_id] = {
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
        self._pending[work_id] = None
        return ok(work_id=work_id, status=PENDING)

    def claim(self, a: Args) -> dict[str, Any]:
        node_id = a.text("node_id")
        capabilities = set(a.texts("capabilities", []))
        work_types = set(a.texts("work_types", []))
        lease_s = a.duration("lease_s", None)
        a.done()
        best: dict[str, Any] | None = None
        for work_id in self._pending:
            item = self.items[work_id]
            if work_types and item["work_type"] not in work_types:
                continue
            if not capabilities.issuperset(item["capabilities"]):
                continue
            if best is None or (-item["priority"], item["seq"]) < (-best["priority"], best["seq"]):
                best = item
        if best is None:
            return ok(item=None, claim_token=None, expires_at=None)
        clock = self.core.clock
        lease = best["timeout_s"] if lease_s is None else lease_s
        best.update(status=CLAIMED, claimed_by=node_id, claim_token=self.core.next("claim"),
                    claimed_at=clock, lease_s=lease, expires_at=clock + lease, started_at=None)
        del self._pending[best["work_id"]]
        self._leased[best["work_id"]] = None
        self._note(best["expires_at"])
        return ok(item=clone(best), claim_token=best["claim_token"], expires_at=best["expires_at"])

    def start(self, a: Args) -> dict[str, Any]:
        work_id, token = self._fence_args(a)
        a.done()
        item, refusal = self._leased_item(work_id, token)
        if item is None:
            return refusal
        if item["status"] == CLAIMED:
            item["status"] = RUNNING
            item["started_at"] = self.core.clock
        return ok(work_id=work_id, status=RUNNING, expires_at=item["expires_at"])

    def renew(self, a: Args) -> dict[str, Any]:
        work_id, token = self._fence_args(a)
        lease_s = a.duration("lease_s", None)
        a.done()
        item, refusal = self._leased_item(work_id, token)
        if item is None:
            return refusal
        if lease_s is not None:
            item["lease_s"] = lease_s
        item["expires_at"] = self.core.clock + item["lease_s"]
        self._note(item["expires_at"])
        return ok(work_id=work_id, status=item["status"], expires_at=item["expires_at"])

    def complete(self, a: Args) -> dict[str, Any]:
        work_id, token = self._fence_args(a)
        result = a.data("result")
        a.done()
        item, refusal = self._leased_item(work_id, token)
        if item is None:
            return refusal
        self._finish(item, COMPLETED, result=result)
        return ok(work_id=work_id, status=COMPLETED, attempts=item["attempts"])

    def fail(self, a: Args) -> dict[str, Any]:
        work_id, token = self._fence_args(a)
        error = a.text("error", "", max_len=MAX_LONG_TEXT, empty=True)
        retry = a.flag("retry", True)
        a.done()
        item, refusal = self._leased_item(work_id, token)
        if item is None:
            return refusal
        self._count_failure(item, error, retry)
        return ok(work_id=work_id, status=item["status"], attempts=item["attempts"])

    # -- driven by the machine --------------------------------------------------------------

    def sweep(self) -> list[str]:
        """Expire every lease that has passed on the machine clock; returns the work ids."""
        clock = self.core.clock
        if self.next_expiry is None or clock < self.next_expiry:
            return []
        due = [self.items[w] for w in self._leased if self.items[w]["expires_at"] <= clock]
        due.sort(key=lambda item: (item["expires_at"], item["seq"]))
        for item in due:
            self._count_failure(item, "lease expired", retry=True)
        self.next_expiry = min((self.items[w]["expires_at"] for w in self._leased), default=None)
        return [item["work_id"] for item in due]

    def release_node(self, node_id: str) -> list[str]:
        """Return every claim of ``node_id`` to pending; a dead node costs the item no attempt."""
        mine = [self.items[w] for w in self._leased if self.items[w]["claimed_by"] == node_id]
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
        counts = dict.fromkeys(STATUSES, 0)
        for item in list(self.items.values()):
            counts[item["status"]] += 1
        counts["total"] = sum(counts.values())
        return counts

    # -- snapshot ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {"items": clone(self.items), "finished": list(self.finished)}

    def restore(self, data: dict[str, Any]) -> None:
        self.items = clone(data["items"])
        self.finished = OrderedDict((w, None) for w in data["finished"])
        self._pending, self._leased = {}, {}
        for work_id, item in self.items.items():
            if item["status"] == PENDING:
                self._pending[work_id] = None
            elif item["status"] in LEASED:
                self._leased[work_id] = None
        if set(self.finished) != {w for w, i in self.items.items() if i["status"] not in
                                  (PENDING, *LEASED)}:
            raise ValueError("work: finished index does not match the items")
        self.next_expiry = min((self.items[w]["expires_at"] for w in self._leased), default=None)

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

    def _note(self, expires_at: float) -> None:
        if self.next_expiry is None or expires_at < self.next_expiry:
            self.next_expiry = expires_at

    def _count_failure(self, item: dict[str, Any], error: str, retry: bool) -> None:
        item["attempts"] += 1
        if retry and item["attempts"] < item["max_attempts"]:
            self._requeue(item, error)
        else:
            self._finish(item, FAILED, error=error)

    def _requeue(self, item: dict[str, Any], error: str) -> None:
        item.update(status=PENDING, claimed_by=None, claim_token=None, claimed_at=None,
                    expires_at=None, started_at=None, error=error)
        del self._leased[item["work_id"]]
        self._pending[item["work_id"]] = None

    def _finish(self, item: dict[str, Any], status: str, result: Any = None,
                error: str | None = None) -> None:
        # claimed_by and claim_token stay as a record of who finished it.
        item.update(status=status, expires_at=None, finished_at=self.core.clock,
                    result=result, error=error)
        del self._leased[item["work_id"]]
        self.finished[item["work_id"]] = None
