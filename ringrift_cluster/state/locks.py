"""Training locks: leases on the replicated clock, fenced by tokens that only ever grow.

Fence tokens come from one machine-wide counter, so a token is never reused for any lock, even
after expiry, release or compaction. A holder is a node id, optionally followed by ``:<detail>``
(e.g. ``gpu-3:job-17``); ``release_node("gpu-3")`` frees both forms.

Expiry pops a deadline heap and ``release_node`` looks at holders, not at every lock, so neither
grows with the number of locks. Locks are replaced, never mutated (``freeze`` shares them).
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
from ._index import CowDict, Frozen, KeyedHeap

DEFAULT_LOCK_TTL_S = 300.0
MAX_TOKEN = 2**63 - 1


class Locks:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.locks = CowDict()
        # Derived, rebuilt on restore: deadlines, and the lock names under each node id a
        # holder answers to (``a:b:c`` answers to ``a``, ``a:b`` and ``a:b:c``).
        self.deadlines = KeyedHeap()  # name -> expires_at
        self.by_node: dict[str, dict[str, None]] = {}

    @property
    def next_expiry(self) -> float | None:
        """When the next lock expires (None: no lock is held)."""
        top = self.deadlines.peek()
        return None if top is None else top[0]

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
            lock = self._put({"name": name, "holder": holder, "fence_token": self.core.next("fence"),
                              "acquired_at": clock, "ttl_s": ttl_s, "expires_at": clock + ttl_s})
        else:  # re-acquiring one's own lock renews it and keeps its token
            lock = self._put({**lock, "ttl_s": ttl_s, "expires_at": clock + ttl_s})
        return ok(**clone(lock), renewed=renewed)

    def renew(self, a: Args) -> dict[str, Any]:
        name, holder, token = self._fence_args(a)
        ttl_s = a.duration("ttl_s", None)
        a.done()
        lock, refusal = self._held(name, holder, token)
        if lock is None:
            return refusal
        ttl = lock["ttl_s"] if ttl_s is None else ttl_s
        lock = self._put({**lock, "ttl_s": ttl, "expires_at": self.core.clock + ttl})
        return ok(**clone(lock), renewed=True)

    def release(self, a: Args) -> dict[str, Any]:
        name, holder, token = self._fence_args(a)
        a.done()
        lock, refusal = self._held(name, holder, token)
        if lock is None:
            return refusal
        if not mutations.active("lock-release-dropped"):
            self._drop(name)
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
        due = []
        while (top := self.deadlines.peek()) is not None and top[0] <= clock:
            due.append(top[1])
            self._drop(top[1])
        due.sort()
        return due

    def release_node(self, node_id: str) -> list[str]:
        mine = sorted(self.by_node.get(node_id, ()))
        for name in mine:
            self._drop(name)
        return mine

    # -- reads ------------------------------------------------------------------------------

    def get(self, name: str) -> dict[str, Any] | None:
        lock = self.locks.get(name)
        return clone(lock) if lock is not None else None

    def list_locks(self) -> list[dict[str, Any]]:
        return [clone(lock) for lock in list(self.locks.values())]

    # -- snapshot ---------------------------------------------------------------------------

    def freeze(self) -> Frozen:
        return self.locks.freeze()

    @staticmethod
    def thaw(frozen: Frozen, copy: Any = clone) -> dict[str, Any]:
        return frozen if copy is None else {name: copy(lock) for name, lock in frozen.items()}

    def restore(self, data: dict[str, Any]) -> None:
        self.locks, self.deadlines, self.by_node = CowDict(), KeyedHeap(), {}
        for name, lock in data.items():
            if lock["name"] != name:
                raise ValueError(f"locks: {name!r} holds the lock of {lock['name']!r}")
            self._put(clone(lock))

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

    def _put(self, lock: dict[str, Any]) -> dict[str, Any]:
        name = lock["name"]
        old = self.locks.get(name)
        if old is not None and old["holder"] != lock["holder"]:
            self._unhold(old)
        self.locks[name] = lock
        self.deadlines.set(name, lock["expires_at"])
        for node_id in _answers_to(lock["holder"]):
            self.by_node.setdefault(node_id, {})[name] = None
        return lock

    def _drop(self, name: str) -> None:
        self._unhold(self.locks[name])
        del self.locks[name]
        self.deadlines.discard(name)

    def _unhold(self, lock: dict[str, Any]) -> None:
        for node_id in _answers_to(lock["holder"]):
            names = self.by_node[node_id]
            del names[lock["name"]]
            if not names:
                del self.by_node[node_id]


def _answers_to(holder: str) -> list[str]:
    """Every node id whose release frees this holder's locks: itself and each ``:`` prefix."""
    return [holder[:i] for i, ch in enumerate(holder) if ch == ":"] + [holder]
