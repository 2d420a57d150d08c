"""Durable acknowledgements for pysyncobj (``raft.durability``), by wrapping its journal.

pysyncobj keeps its log in a memory-mapped file it never msyncs and writes its term and vote
without fsync: a process crash loses nothing (the page cache survives), a power cut of a
majority loses entries the cluster acknowledged. With ``fsync`` or ``batch`` each member makes a
log entry durable before that entry can count toward a commit:

- ``fsync``: every append, truncation and clear is msynced and fsynced before pysyncobj goes on;
- ``batch`` (group commit): appends only mark the journal dirty, and one msync + fsync runs
  before the next message leaves the node. A follower's acknowledgement and the leader's own
  AppendEntries are messages, so nothing counts toward a commit before it is on disk, and every
  entry appended in one tick shares one fsync. (A single-member cluster sends nothing: it syncs
  every append, as ``fsync``.)
- ``none``: as pysyncobj does it (fast; survives process crashes only).

The term and vote are made durable (file and directory fsync) in every mode but ``none`` before
pysyncobj returns from storing them, as Raft requires before a vote leaves the node.

Used only by ``bridge`` (the one module that touches pysyncobj's objects).
"""

from __future__ import annotations

import os
from typing import Any, Callable, ContextManager

from ...durable import fsync_dir

MODES = ("fsync", "batch", "none")


def journal_class(base: type) -> type:
    """A subclass of pysyncobj's ``FileJournal`` that syncs as ``mode`` says."""

    class DurableJournal(base):  # type: ignore[misc, valid-type]
        def __init__(self, path: str, mode: str) -> None:
            super().__init__(path)
            self.mode = mode
            self.path = path
            self.dirty = False
            self.syncs = 0
            self._fd = os.open(path, os.O_RDONLY)  # an fsync on any descriptor syncs the inode
            fsync_dir(os.path.dirname(path) or ".")

        def sync(self) -> None:
            self.flush()  # msync of the mapping (pysyncobj's own flush)
            os.fsync(self._fd)
            self.dirty = False
            self.syncs += 1

        def sync_if_dirty(self) -> None:
            if self.dirty:
                self.sync()

        def _changed(self) -> None:
            if self.mode == "fsync":
                self.sync()
            else:
                self.dirty = True

        def add(self, command: Any, idx: int, term: int) -> None:
            super().add(command, idx, term)
            self._changed()

        def deleteEntriesFrom(self, entryFrom: int) -> None:  # noqa: N802 (pysyncobj's name)
            super().deleteEntriesFrom(entryFrom)
            self._changed()

        def clear(self) -> None:
            super().clear()
            self._changed()

        def setCurrentTerm(self, term: int, votedForNodeId: Any) -> None:  # noqa: N802, N803
            super().setCurrentTerm(term, votedForNodeId)  # writes the meta file and renames it
            fd = os.open(self.path + ".meta", os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            fsync_dir(os.path.dirname(self.path) or ".")

        def _destroy(self) -> None:
            try:
                self.sync_if_dirty()
            finally:
                os.close(self._fd)
                super()._destroy()

    return DurableJournal


def build_durably(mode: str, syncobj_module: Any, journal_module: Any, build: Callable[[], Any],
                  solo: bool, guard: ContextManager[Any]) -> tuple[Any, Any]:
    """Build the SyncObj with ``build()`` while its journal factory makes durable journals;
    returns (syncobj, journal or None). ``solo``: no other member (batch syncs every append).
    ``guard`` (the bridge's lock) keeps two constructions from swapping the factory at once."""
    if mode == "none":
        return build(), None
    made: list[Any] = []
    cls = journal_class(journal_module.FileJournal)
    effective = "fsync" if solo else mode

    def factory(path: Any = None) -> Any:
        if path is None:
            return journal_module.MemoryJournal()
        made.append(cls(path, effective))
        return made[-1]

    with guard:
        original = syncobj_module.createJournal
        syncobj_module.createJournal = factory
        try:
            syncobj = build()
        finally:
            syncobj_module.createJournal = original
    journal = made[-1] if made else None
    if journal is not None and effective == "batch":
        # The one reach into pysyncobj's internals: every message leaves through the transport.
        transport = syncobj._SyncObj__transport
        send = transport.send

        def send_after_sync(node: Any, message: Any) -> Any:
            journal.sync_if_dirty()
            return send(node, message)

        transport.send = send_after_sync
    return syncobj, journal
