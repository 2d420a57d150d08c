"""The one module that crosses between pysyncobj's threads and the asyncio loop.

Threads involved:

* the **owner thread** (``raft-owner``): constructs the ``SyncObj``, then only waits for the stop
  signal (pysyncobj's tick thread exits when the thread that constructed the object dies, so that
  thread lives as long as the node, never a short executor job);
* the **tick thread** (pysyncobj's own): socket I/O, elections, applying committed entries
  (``_MachineConsumer.execute``, ``replica.py``), command callbacks and the ``_on_tick`` hook;
* the **loop thread**: everything else.

Rules, enforced here and nowhere else:

* the tick thread touches asyncio objects only through ``loop.call_soon_threadsafe`` (see
  ``_post``; command outcomes are batched by ``_deliver`` so one wake-up settles many), guarded
  against a closed loop; the loop side checks ``fut.done()`` before settling;
* the loop never waits on the tick thread: proposals only enqueue (pysyncobj pickles the entry,
  appends it to a locked deque and writes one byte to a wake-up pipe); local reads take the
  state lock only with ``blocking=False`` and otherwise hand the read to the tick thread;
* callbacks and the tick hook never raise (an exception in a pysyncobj callback makes the node
  apply the entry twice; one in an applied method wedges the cluster);
* the replicated entry point is total: one JSON command in, the machine's result out, or ``{"ok": False, ...}``;
* log compaction never serializes on the tick thread when the machine can ``freeze()``: the tick
  thread freezes it (milliseconds) and a ``raft-dump`` thread writes the dump (``dump``).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

try:  # pysyncobj is imported here and in no other module of the package.
    import pysyncobj as _pso
    from pysyncobj import SERIALIZER_STATE, SyncObj, SyncObjConf, SyncObjConsumer, replicated
    from pysyncobj import journal as _pso_journal
    from pysyncobj import pickle as _pso_pickle
    from pysyncobj import syncobj as _pso_syncobj
    from pysyncobj.version import VERSION as PYSYNCOBJ_VERSION

    PYSYNCOBJ_AVAILABLE = True
    HAS_CRYPTO = bool(getattr(_pso, "HAS_CRYPTO", False))
except ImportError:  # pragma: no cover - exercised only where the engine is missing
    PYSYNCOBJ_AVAILABLE, PYSYNCOBJ_VERSION, HAS_CRYPTO = False, "", False

from ...timeouts import within
from .batch import MAX_COMMANDS as MAX_BATCH_COMMANDS, ProposalBatcher, batch_counts
from .dump import DumpWriter, stall_report
from .durable import build_durably
from .hints import LeaderLossHints, hint_counts
from .pacing import Pacing
from .replica import Replica
from .values import BARRIER, BARRIER_RESULT, EngineError, EngineStatus, FailReason, RaftRole, read_status

_JOURNAL_FACTORY_LOCK = threading.Lock()  # pysyncobj's journal factory is swapped per construction

_log = logging.getLogger(__name__)


if PYSYNCOBJ_AVAILABLE:

    class _MachineConsumer(Replica, SyncObjConsumer):
        """The replica (``replica.py``) as pysyncobj's consumer: ONE replicated entry point taking a
        serialized command; snapshots are the machine's own (``Replica._serialize``)."""

        def __init__(self, machine: Any, restore: Callable[[Any, Any], Any]) -> None:
            SyncObjConsumer.__init__(self)
            Replica.__init__(self, machine, restore, threading.Lock())

        @replicated
        def execute(self, payload: Any) -> Any:
            # Runs on every replica, on the tick thread, once the entry commits. Never raises.
            return self.apply_entry(payload)


def _spawn_dump(fn: Callable[..., None], *args: Any) -> None:
    """The dump writer's own thread: it reads only a frozen view, never the live machine."""
    threading.Thread(target=fn, args=args, name="raft-dump", daemon=True).start()


def _settle(fut: "asyncio.Future[Any]", result: Any, error: BaseException | None) -> None:
    """Loop side of every crossing: settle ``fut`` unless it is already done (e.g. timed out)."""
    if fut.done():
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)


@dataclass
class _StartResult:
    error: BaseException | None = None


class RaftEngine:
    """One SyncObj with one consumer, driven from asyncio.

    ``conf`` holds SyncObjConf keyword arguments; unknown keys are rejected here because
    pysyncobj silently ignores them.
    """

    STATUS_INTERVAL_S = 0.005  # the tick hook republishes status at most this often

    def __init__(
        self,
        *,
        self_address: str,
        other_addresses: tuple[str, ...],
        conf: Mapping[str, Any],
        machine: Any,
        restore: Callable[[Any, Any], Any],
        on_change: Callable[[], None] | None = None,
        durability: str = "none",
        hints: Mapping[str, float] | None = None,
        batch: bool = True,
    ) -> None:
        if not PYSYNCOBJ_AVAILABLE:
            raise EngineError("pysyncobj is not installed")
        known = set(vars(SyncObjConf()))
        unknown = sorted(set(conf) - known)
        if unknown:
            raise EngineError(f"unknown SyncObjConf options {unknown}")
        self.self_address = self_address
        self.other_addresses = tuple(other_addresses)
        self._conf = dict(conf)
        self._durability = durability
        self._hint_settings = dict(hints or {})  # LeaderLossHints keywords; empty: no hints
        self.hints: LeaderLossHints | None = None
        self._journal: Any = None
        self._machine = machine
        self._restore = restore
        self._on_change = on_change
        self._loop: asyncio.AbstractEventLoop | None = None
        self._consumer: Any = None
        self._syncobj: Any = None
        self._owner: threading.Thread | None = None
        self._stop = threading.Event()
        self._stopped: asyncio.Future[None] | None = None
        self._status = EngineStatus()
        self._last_publish = 0.0
        self._role = RaftRole.FOLLOWER  # written by onStateChanged on the tick thread
        self._reads: collections.deque[tuple[Callable[[Any], Any], asyncio.Future[Any]]] = collections.deque()
        self._pending: set[asyncio.Future[Any]] = set()
        self._outbox: collections.deque[tuple[asyncio.Future[Any], Any]] = collections.deque()
        self._drain_scheduled = False
        self._hook_errors = 0
        self._dumper: Any = None
        self._batch = batch  # proposals of one loop pass as one entry (batch.py)
        self._batcher: ProposalBatcher | None = None
        self._pacing: Pacing | None = None
        self.started = False

    # ----------------------------------------------------------------------------- lifecycle

    @property
    def used(self) -> bool:
        return self._owner is not None

    async def start(self, timeout: float) -> None:
        """Construct the SyncObj on the owner thread and wait until its port is bound."""
        if self._owner is not None:
            raise EngineError("already started")
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._batcher = ProposalBatcher(
            loop, self._send, self._deliver,
            lambda fut, e: _settle(fut, None, EngineError(f"cannot enqueue: {type(e).__name__}: {e}")),
            max_commands=MAX_BATCH_COMMANDS if self._batch else 1)
        ready: asyncio.Future[_StartResult] = loop.create_future()
        self._stopped = loop.create_future()
        self._owner = threading.Thread(target=self._own, args=(ready,), name="raft-owner", daemon=True)
        self._owner.start()
        try:
            outcome = await within(ready, timeout)
        except asyncio.TimeoutError:
            self._stop.set()
            raise EngineError(f"pysyncobj did not bind within {timeout:.1f} s") from None
        if outcome.error is not None:
            raise EngineError(str(outcome.error)) from outcome.error
        self.started = True

    def _own(self, ready: "asyncio.Future[_StartResult]") -> None:
        """Owner thread: construct, report, wait for stop, destroy. Lives as long as the node."""
        syncobj = None
        try:
            self._consumer = _MachineConsumer(self._machine, self._restore)
            hooks: dict[str, Any] = {}
            if self._conf.get("fullDumpFile") and callable(getattr(self._machine, "freeze", None)):
                self._dumper = DumpWriter(self._consumer, str(self._conf["fullDumpFile"]), SERIALIZER_STATE,
                                          _pso_pickle.load, _spawn_dump)
                hooks = {"serializer": self._dumper.serialize, "deserializer": self._dumper.deserialize,
                         "serializeChecker": self._dumper.check}
            conf = SyncObjConf(**self._conf, **hooks, onStateChanged=self._on_state_changed)
            conf.validate()  # raft.py validated first; this is the engine's own belt and braces
            syncobj, self._journal = build_durably(
                self._durability, _pso_syncobj, _pso_journal,
                lambda: SyncObj(self.self_address, list(self.other_addresses), conf=conf, consumers=[self._consumer]),
                solo=not self.other_addresses, guard=_JOURNAL_FACTORY_LOCK)
            if self._dumper is not None:
                self._dumper.syncobj = syncobj
            self._syncobj = syncobj
            self._pacing = Pacing(syncobj, _pso_syncobj.monotonicTime, solo=not self.other_addresses)
            if self._hint_settings:
                # The deadline is on pysyncobj's clock (CLOCK_MONOTONIC_RAW), not time.monotonic.
                self.hints = LeaderLossHints(syncobj, clock=_pso_syncobj.monotonicTime, **self._hint_settings)
            syncobj.addOnTickCallback(self._on_tick)
            try:
                syncobj.waitBinded()
            except Exception:
                raise EngineError(f"cannot bind the Raft port {conf.bindAddress} (in use?)") from None
        except BaseException as e:
            if syncobj is not None:
                try:
                    syncobj.destroy_synchronous()
                except Exception:
                    pass
            self._syncobj = None
            self._post(_settle, ready, _StartResult(e), None)
            self._post(_settle, self._stopped, None, None)
            return
        self._post(_settle, ready, _StartResult(), None)
        self._stop.wait()
        try:
            syncobj.destroy_synchronous()
        except Exception:
            _log.exception("raft destroy failed")
        self._post(_settle, self._stopped, None, None)

    async def stop(self) -> None:
        self._stop.set()
        for fut in list(self._pending):
            _settle(fut, None, EngineError("raft stopped before the outcome was known"))
        self._pending.clear()
        while self._reads:
            _, fut = self._reads.popleft()
            _settle(fut, None, EngineError("raft stopped"))
        if self._stopped is not None:
            await asyncio.shield(self._stopped)
        owner = self._owner
        if owner is not None and owner.is_alive():  # it is returning; join off the loop
            await asyncio.to_thread(owner.join, 5.0)
        self.started = False

    # ----------------------------------------------------------------------------- crossings

    def _post(self, fn: Callable[..., Any], *args: Any) -> None:
        """The one way from a pysyncobj thread to the loop. Never raises."""
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # loop closed (shutdown): nobody is waiting any more
            pass

    def _deliver(self, fut: "asyncio.Future[Any]", value: Any) -> None:
        """Tick thread: queue one outcome; one wake-up of the loop drains every queued outcome.

        The state machine returns fresh values (never references into its state), so results
        cross as they are.
        """
        self._outbox.append((fut, value))
        if not self._drain_scheduled:
            self._drain_scheduled = True
            self._post(self._drain)

    def _drain(self) -> None:
        """Loop side of ``_deliver``."""
        self._drain_scheduled = False  # first: an outcome queued from now on schedules a new drain
        outbox = self._outbox
        while outbox:
            fut, value = outbox.popleft()
            _settle(fut, value, None)

    def propose(self, payload: str) -> "asyncio.Future[tuple[Any, int]]":
        """Enqueue one command; the future resolves with (result, FailReason code). Commands
        proposed in one pass of the loop share a log entry (``batch.py``)."""
        if self._loop is None or self._consumer is None or self._batcher is None or self._stop.is_set():
            raise EngineError("raft engine not running")
        fut: asyncio.Future[tuple[Any, int]] = self._loop.create_future()
        self._pending.add(fut)
        fut.add_done_callback(self._pending.discard)
        self._batcher.add(payload, fut)  # type: ignore[union-attr]
        return fut

    def _send(self, entry: Any, callback: Callable[[Any, int], None]) -> None:
        """Hand one log entry to pysyncobj (it pickles and queues it; the tick thread sends it)."""
        self._consumer.execute(entry, callback=callback)

    def read_local(self, fn: Callable[[Any], Any]) -> "asyncio.Future[Any]":
        """Run ``fn(machine)`` against this replica's state, between two applies."""
        if self._loop is None or self._consumer is None:
            raise EngineError("raft engine not running")
        fut: asyncio.Future[Any] = self._loop.create_future()
        consumer = self._consumer
        if consumer.lock.acquire(blocking=False):
            try:
                fut.set_result(fn(consumer.machine))
            except Exception as e:
                fut.set_exception(e)
            finally:
                consumer.lock.release()
        else:  # an apply is running right now: the tick thread does the read after it
            self._reads.append((fn, fut))
        return fut

    def force_compaction(self) -> None:
        if self._syncobj is not None:
            self._syncobj.forceLogCompaction()  # sets a flag the tick thread reads

    # ----------------------------------------------------------------------------- tick thread

    def _on_state_changed(self, old: int, new: int) -> None:
        try:
            self._role = RaftRole(new)
            self._publish(force=True)
        except BaseException:
            self._hook_errors += 1

    def _on_tick(self) -> None:
        try:
            if self.hints is not None:
                self.hints.on_tick()
            self._publish(force=False)
            while self._reads:
                fn, fut = self._reads.popleft()
                consumer = self._consumer
                with consumer.lock:
                    try:
                        result, error = fn(consumer.machine), None
                    except Exception as e:
                        result, error = None, e
                self._post(_settle, fut, result, error)
        except BaseException:
            self._hook_errors += 1

    def _publish(self, *, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._last_publish < self.STATUS_INTERVAL_S:
            return
        self._last_publish = now
        so = self._syncobj
        if so is None:
            return
        status = read_status(so, self._role, now)
        previous = self._status
        self._status = status
        if self._on_change is not None and previous.leadership_key() != status.leadership_key():
            self._post(self._on_change)

    # ----------------------------------------------------------------------------- loop side

    def status(self) -> EngineStatus:
        status = self._status
        so = self._syncobj
        alive = bool(so is not None and so.tick_thread_alive())
        if alive != status.tick_thread_alive:
            status = dataclasses.replace(status, tick_thread_alive=alive)
        return status

    @property
    def journal_syncs(self) -> int:
        """How many times the journal was made durable (0 with durability none)."""
        return getattr(self._journal, "syncs", 0)

    def batch_counts(self) -> dict[str, int]:
        return {**batch_counts(self._batcher), "notices_deferred": getattr(self._pacing, "notices_deferred", 0),
                "notices_alone": getattr(self._pacing, "notices_alone", 0)}

    def hint_counts(self) -> dict[str, Any]:
        """Elections started early on a leader-loss hint; keepalives sent to other followers."""
        return {**hint_counts(self.hints), "keepalives": getattr(self._pacing, "keepalives", 0)}

    @property
    def apply_failures(self) -> int:
        return 0 if self._consumer is None else self._consumer.apply_failures

    @property
    def restore_failed(self) -> str | None:
        return None if self._consumer is None else self._consumer.restore_failed

    @property
    def hook_errors(self) -> int:
        return self._hook_errors

    def stalls(self) -> dict[str, Any]:
        """The tick thread's longest apply, snapshot, journal sync and meta write (ms)."""
        return stall_report(self._consumer, self._dumper, self._journal)


__all__ = [
    "BARRIER", "BARRIER_RESULT", "EngineError", "EngineStatus", "FailReason", "HAS_CRYPTO",
    "PYSYNCOBJ_AVAILABLE", "PYSYNCOBJ_VERSION", "RaftEngine", "RaftRole",
]
