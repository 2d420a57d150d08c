"""Durable acknowledgements for pysyncobj (``raft.durability``), by wrapping its journal.

pysyncobj keeps its log in a memory-mapped file it never msyncs and writes its term and vote
without fsync: a process crash loses nothing (the page cache survives), a power cut of a
majority loses entries the cluster acknowledged. With ``fsync`` or ``batch`` each member makes a
log entry durable before that entry can count toward a commit:

- ``fsync``: every append, truncation and clear is fdatasynced before pysyncobj
  goes on;
- ``batch`` (group commit): appends only mark the journal dirty, and one fdatasync covers every
  entry appended since the last. A member syncs before any message that claims something of its
  log leaves it (an acknowledgement, a vote), so its acknowledgement follows its disk. The leader
  sends its AppendEntries first (and its answer to a forwarded command) and syncs right after,
  before the engine's thread waits for replies, and again at the top of every tick, where
  pysyncobj counts the leader toward a commit: the leader's write and its followers' overlap, as
  Raft allows (thesis §10.2.1; etcd does the same), yet the leader never counts an entry it has not
  synced. (A single-member cluster sends nothing: it syncs every append, as ``fsync``.)
- ``none``: as pysyncobj does it (fast; survives process crashes only).

Every write of the meta file (term, vote, commit index) is made durable in every mode but
``none`` before pysyncobj goes on (written, fsynced, renamed, directory fsynced), as Raft
requires of a term and vote before a vote leaves the node: pysyncobj rewrites the file about once
a second with the commit index, by a rename of an unsynced file, which a power cut turns into an
empty meta file, the vote forgotten. The journal is synced before the meta file, so a durable
commit index never points past the durable log (the engine hangs on that). So is a
snapshot a follower receives from its leader (pysyncobj writes it and renames it over the dump
without fsync, then drops its journal and acknowledges): a power cut after that acknowledgement
would leave an empty dump and no journal, the whole state gone from that member.

The journal's file is written with pwrite instead of through pysyncobj's mapping
(``journal_file.py``: the same format, a sync several times cheaper).

Used only by ``bridge`` (the one module that touches pysyncobj's objects).
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, ContextManager

from ...durable import fsync_dir, replace_durably
from .journal_file import PositionalFile
from .pacing import KEEPALIVE

MODES = ("fsync", "batch", "none")


def journal_class(journal_module: Any) -> type:
    """A subclass of pysyncobj's ``FileJournal`` that syncs as ``mode`` says."""
    base = journal_module.FileJournal
    dumps = journal_module.dumps  # the meta file's format, pysyncobj's own

    class DurableJournal(base):  # type: ignore[misc, valid-type]
        def __init__(self, path: str, mode: str) -> None:
            super().__init__(path)  # reads the journal through pysyncobj's mapping
            # From here on its file is written with pwrite (journal_file.py: a sync of mapped
            # pages costs several times more). A reach into the journal, like the meta storer's.
            mapped = self._FileJournal__journalFile
            mapped._destroy()
            self._file = self._FileJournal__journalFile = PositionalFile(path)
            self.mode = mode
            self.path = path
            self.dirty = False
            self.syncs = 0
            self.longest_sync_s = 0.0  # the longest fdatasync of the journal
            self.longest_meta_s = 0.0  # the longest durable rewrite of the meta file
            os.fsync(self._file.fd)  # what pysyncobj created or extended, before any entry counts
            fsync_dir(os.path.dirname(path) or ".")
            # A reach into the journal: its meta storer writes through the durable rule.
            storer = self._FileJournal__metaStorer
            meta_path = storer.getPath()

            def store_meta(meta: Any) -> None:
                self.sync_if_dirty()  # the log first: a durable commit index within the durable log
                started = time.monotonic()
                replace_durably(meta_path, lambda f: f.write(dumps(meta)))
                self.longest_meta_s = max(self.longest_meta_s, time.monotonic() - started)

            storer.storeMeta = store_meta

        def sync(self) -> None:
            # fdatasync: the data and the size (needed to read it back), not the mtime, which
            # fsync would commit to the filesystem's journal too (about 1.5 ms of 4 here).
            started = time.monotonic()
            os.fdatasync(self._file.fd)
            self.longest_sync_s = max(self.longest_sync_s, time.monotonic() - started)
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

        def _destroy(self) -> None:
            try:
                self.sync_if_dirty()
            finally:
                super()._destroy()  # closes the file

    return DurableJournal


def build_durably(mode: str, syncobj_module: Any, journal_module: Any, build: Callable[[], Any],
                  solo: bool, guard: ContextManager[Any]) -> tuple[Any, Any]:
    """Build the SyncObj with ``build()`` while its journal factory makes durable journals;
    returns (syncobj, journal or None). ``solo``: no other member (batch syncs every append).
    ``guard`` (the bridge's lock) keeps two constructions from swapping the factory at once."""
    if mode == "none":
        return build(), None
    made: list[Any] = []
    cls = journal_class(journal_module)
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
    _durable_snapshot_installs(syncobj._SyncObj__serializer)
    if journal is not None and effective == "batch":
        _group_commit(syncobj, journal)
    return syncobj, journal


# Messages that may leave before the sender's journal is durable, because none says anything of
# what the sender holds: a leader's AppendEntries (nothing counts the leader's copy toward a commit
# but the leader itself, which syncs before counting, below), a command a follower forwards to the
# leader, the leader's answer naming the index it gave that command (the follower's caller still
# waits for the commit), and a keepalive between followers (pacing.py). Every other message (an
# acknowledgement, a vote, a request for votes) leaves only after a sync: it is a claim about the
# sender's log.
_CLAIM_NOTHING = frozenset({"append_entries", "apply_command", "apply_command_response", KEEPALIVE["type"]})


def _group_commit(syncobj: Any, journal: Any) -> None:
    """``batch``: where the one sync per group of appends happens (see the module's docstring)."""
    # A reach into pysyncobj's internals: every message leaves through the transport.
    transport = syncobj._SyncObj__transport
    send = transport.send

    def send_after_sync(node: Any, message: Any) -> Any:
        if not (isinstance(message, dict) and message.get("type") in _CLAIM_NOTHING):
            journal.sync_if_dirty()
        return send(node, message)

    transport.send = send_after_sync
    # After the tick's sends, before its wait for replies: the overlap.
    syncobj.addOnTickCallback(journal.sync_if_dirty)
    tick = syncobj._onTick  # the auto-tick thread looks the method up on every tick

    def tick_after_sync(*args: Any, **kwargs: Any) -> Any:
        # The tick begins with the leader's commit count, which includes the leader itself;
        # an entry appended while handling a message (a new leader's no-op) is synced here.
        journal.sync_if_dirty()
        return tick(*args, **kwargs)

    syncobj._onTick = tick_after_sync
    # pysyncobj dumps every attribute set after its constructor with the state; this one is
    # code, not state (and cannot be pickled): count it among the engine's own.
    syncobj._SyncObj__properies.add("_onTick")


def _durable_snapshot_installs(serializer: Any) -> None:
    """A received snapshot reaches the disk before pysyncobj acts on it (a reach into its
    ``Serializer``, whose ``setTransmissionData`` writes ``<dump>.1.tmp`` chunk by chunk and
    renames it over the dump on the last, empty chunk, returning True)."""
    receive = serializer.setTransmissionData
    path = getattr(serializer, "_Serializer__fileName", None)
    if path is None:  # an in-memory dump: nothing on disk to make durable
        return

    def receive_durably(data: Any) -> Any:
        if data is not None and data[2]:  # the last chunk: the whole snapshot is in the temporary file
            incoming = getattr(serializer, "_Serializer__incomingTransmissionFile", None)
            if incoming is not None:
                incoming.flush()
                os.fsync(incoming.fileno())  # before the rename: the old dump stays until the new one is whole
        installed = receive(data)
        if installed:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)  # whatever the last chunk carried
            finally:
                os.close(fd)
            fsync_dir(os.path.dirname(path) or ".")  # the rename
        return installed

    serializer.setTransmissionData = receive_durably
