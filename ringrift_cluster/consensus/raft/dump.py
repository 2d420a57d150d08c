"""Raft log compaction without stalling the engine: the dump is written by a thread of its own.

Used by ``bridge``, the only module that imports pysyncobj or starts threads: it passes in
pysyncobj's states and unpickler and the function that runs the writer on its own thread.
"""

from __future__ import annotations

import gzip
import logging
import os
import pickle
import time
from typing import Any, Callable

from ...durable import fsync_dir

_log = logging.getLogger(__name__)


class YieldingFile:
    """A file whose writes let the tick thread run: the pickler calls ``write`` about every
    64 KiB frame (protocol 4), and ``sleep(0)`` hands over the GIL there."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def write(self, data: bytes) -> int:
        n = self.raw.write(data)
        time.sleep(0)
        return n


class DumpWriter:
    """pysyncobj's asynchronous serializer hooks (``serializer``, ``serializeChecker``,
    ``deserializer``). At log compaction the tick thread only freezes the machine; a
    ``raft-dump`` thread writes the file in the very format pysyncobj writes itself (gzip'd
    pickle of ``([engine fields, consumer data], last entries, cluster)``), so dumps of
    either kind load either way.

    pysyncobj renames ``<dump>.tmp`` right after ``serialize`` returns; the writer uses its
    own temporary name, so that rename finds nothing (and is ignored: ``check`` reports)."""

    def __init__(self, consumer: Any, path: str, states: Any, load: Callable[[Any], Any],
                 spawn: Callable[..., None]) -> None:
        self.consumer = consumer  # the bridge's consumer: ``lock``, ``machine``, ``_deserialize``
        self.path = path
        self.states = states  # pysyncobj's SERIALIZER_STATE
        self.load = load  # pysyncobj's unpickler (it also reads pickles of older Pythons)
        self.spawn = spawn  # spawn(fn, *args): run fn(*args) on the raft-dump thread
        self.syncobj: Any = None
        self.state = self.states.NOT_SERIALIZING
        self.longest_stall_s = 0.0
        self.dumps = 0
        self.last_error: str | None = None

    def serialize(self, tmp: str, raft_data: tuple[Any, ...]) -> None:  # tick thread
        started = time.perf_counter()
        try:  # a leftover would be renamed over the dump when this returns
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        with self.consumer.lock:
            view = self.consumer.machine.freeze()
        engine = self._engine_fields()
        self.state = self.states.SERIALIZING
        self.spawn(self._write, view, engine, raft_data)
        self.longest_stall_s = max(self.longest_stall_s, time.perf_counter() - started)

    def _write(self, view: Any, engine: dict[str, Any], raft_data: tuple[Any, ...]) -> None:
        tmp = self.path + ".writing"
        try:
            data = ([engine, {"format": 1, "machine": view.layout()}], *raft_data)
            with open(tmp, "wb") as f:
                with gzip.GzipFile(fileobj=f, mode="wb", compresslevel=6) as g:
                    pickle.dump(data, YieldingFile(g), protocol=4)
                f.flush()
                # pysyncobj drops the journal entries a dump covers: the dump must be on disk first.
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            fsync_dir(os.path.dirname(self.path) or ".")
            self.dumps += 1
            self.state = self.states.SUCCESS
        except BaseException as e:  # a failed dump keeps the old one and the log
            self.last_error = f"{type(e).__name__}: {e}"
            _log.error("raft dump failed: %s", self.last_error)
            self.state = self.states.FAILED

    def check(self) -> int:  # tick thread: SUCCESS / FAILED are reported once
        state = self.state
        if state in (self.states.SUCCESS, self.states.FAILED):
            self.state = self.states.NOT_SERIALIZING
        return state

    def deserialize(self, path: str) -> tuple[Any, ...]:  # tick thread: start-up or install
        with open(path, "rb") as f:
            with gzip.GzipFile(fileobj=f) as g:
                data = self.load(g)
        own, consumer_data = data[0][0], data[0][1]
        if self.syncobj is not None and isinstance(own, dict):
            self.syncobj.__dict__.update(own)  # what pysyncobj's own loader does
        self.consumer._deserialize(consumer_data)
        return tuple(data[1:])

    def _engine_fields(self) -> dict[str, Any]:
        # pysyncobj's own dump carries the fields it set after construction; so does ours.
        so = self.syncobj
        known = getattr(so, "_SyncObj__properies", None)
        if so is None or known is None:
            return {}
        return {k: v for k, v in so.__dict__.items() if k not in known}


def stall_report(consumer: Any, dumper: "DumpWriter | None", journal: Any = None) -> dict[str, Any]:
    """The longest the tick thread spent in one apply, one snapshot, one journal sync and one
    durable meta write (ms; the last two None without a durable journal), and the dumps."""
    return {
        "longest_apply_ms": round(1000 * consumer.longest_apply_s, 3) if consumer is not None else 0.0,
        "longest_snapshot_ms": round(1000 * dumper.longest_stall_s, 3) if dumper is not None else None,
        "dumps_written": dumper.dumps if dumper is not None else None,
        "dump_error": dumper.last_error if dumper is not None else None,
        "longest_journal_sync_ms": round(1000 * journal.longest_sync_s, 3) if journal is not None else None,
        "longest_meta_write_ms": round(1000 * journal.longest_meta_s, 3) if journal is not None else None,
    }
