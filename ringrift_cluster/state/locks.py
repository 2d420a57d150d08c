"""Training locks: leases on the replicated clock, fenced by tokens that only ever grow.

Fence tokens come from one machine-wide counter, so a token is never reused for any lock, even
after expiry, release or compaction. A holder is a node id, optionally followed by ``:<detail>``
(e.g. ``gpu-3:job-17``); ``release_node("gpu-3")`` frees both forms.
"""

from __future__ import annotations

from typing import Any

from .. import mutations
from ._common import (
    LOCK_HELD,
    NOT_HELD,
    NOT_HOLDER,
    STALE_FENCE,
    Args,
    Core,
    clone,
    ok,
    refuse,
)

DEFAULT_LOCK_TTL_S = 300.0
MAX_TOKEN = 2**63 - 1


class Locks:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.locks: dict[str, dict[str, Any]] = {}
        self.next_expiry: float | None = None  # derived: no lock expires before this

    # -- commands ---------------------------------------------------------------------------

    def acquire(self, a: Args) -> dict[str, Any]:
        name = a.text("name")
        holder = a.text("holder")
        ttl_s = a.duration("ttl_s", DEFAULT_LOCK_TTL_S)
        a.done()
        clock = self.core.clock
        lock = self.locks.get(name)  # expired locks were swept before this command
        if lock is not None and lock["holder"] != holder:
            return refuse(LOCK_HELD, f"lock {name!r} is held by {lock['holder']!r}",
                          holder=lock["holder"], expires_at=lock["expires_at"])
        renewed = lock is not None
        if lock is None:
            lock = {"name": name, "holder": holder, "fence_token": self.core.next("fence"),
                    "acquired_at": clock, "ttl_s": ttl_s, "expires_at": clock + ttl_s}
            self.locks[name] = lock
        else:  # re-acquiring one's own lock renews it and keeps its token
            lock.update(ttl_s=ttl_s, expires_at=clock + ttl_s)
        self._note(lock["expires_at"])
        return ok(**clone(lock), renewed=renewed)

    def renew(self, a: Args) -> dict[str, Any]:
        name, holder, token = self._fence_args(a)
        ttl_s = a.duration("ttl_s", None)
        a.done()
        lock, refusal = self._held(name, holder, token)
        if lock is None:
            return refusal
        if ttl_s is not None:
            lock["ttl_s"] = ttl_s
        lock["expires_at"] = self.core.clock + lock["ttl_s"]
        self._note(lock["expires_at"])
        return ok(**clone(lock), renewed=True)

    def release(self, a: Args) -> dict[str, Any]:
        name, holder, token = self._fence_args(a)
        a.done()
        lock, refusal = self._held(name, holder, token)
        if lock is None:
            return refusal
        if not mutations.active("lock-release-dropped"):
            del self.locks[name]
        return ok(name=name, holder=holder, fence_token=token, released=True)

    def check_fence(self, fence: Args | None) -> dict[str, Any] | None:
        """For writes guarded by a lock (``args.fence = {"lock", "token"}``): a refusal unless
        that lock is still held with exactly that token."""
        if fence is None:
            return None
        name = fence.text("lock")
        token = fence.integer("token", lo=1, hi=MAX_TOKEN)
        fence.done()
        lock = self.locks.get(name)
        if lock is None or lock["fence_token"] != token:
            current = None if lock is None else lock["fence_token"]
            return refuse(STALE_FENCE, f"lock {name!r} is not held with fence token {token}",
                          fence_token=current)
        return None

    # -- driven by the machine --------------------------------------------------------------

    def sweep(self) -> list[str]:
        """Drop every lock whose lease has passed on the machine clock; returns their names."""
        clock = self.core.clock
        if self.next_expiry is None or clock < self.next_expiry:
            return []
        due = sorted(name for name, lock in self.locks.items() if lock["expires_at"] <= clock)
        for name in due:
            del self.locks[name]
        self.next_expiry = min((lock["expires_at"] for lock in self.locks.values()), default=None)
        return due

    def release_node(self, node_id: str) -> list[str]:
        prefix = node_id + ":"
        mine = sorted(name for name, lock in self.locks.items()
                      if lock["holder"] == node_id or lock["holder"].startswith(prefix))
        for name in mine:
            del self.locks[name]
        return mine

    # -- reads ------------------------------------------------------------------------------

    def get(self, name: str) -> dict[str, Any] | None:
        lock = self.locks.get(name)
        return clone(lock) if lock is not None else None

    def list_locks(self) -> list[dict[str, Any]]:
        return [clone(lock) for lock in list(self.locks.values())]

    # -- snapshot ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return clone(self.locks)

    def restore(self, data: dict[str, Any]) -> None:
        self.locks = clone(data)
        self.next_expiry = min((lock["expires_at"] for lock in self.locks.values()), default=None)

    # -- helpers ----------------------------------------------------------------------------

    def _fence_args(self, a: Args) -> tuple[str, str, int]:
        return a.text("name"), a.text("holder"), a.integer("fence_token", lo=1, hi=MAX_TOKEN)

    def _held(self, name: str, holder: str, token: int) -> tuple[Any, Any]:
        lock = self.locks.get(name)
        if lock is None:
            return None, refuse(NOT_HELD, f"lock {name!r} is not held")
        if lock["holder"] != holder or lock["fence_token"] != token:
            return None, refuse(NOT_HOLDER,
                                f"lock {name!r} is held by {lock['holder']!r} with another token",
                                holder=lock["holder"])
        return lock, None

    def _note(self, expires_at: float) -> None:
        if self.next_expiry is None or expires_at < self.next_expiry:
            self.next_expiry = expires_at
