"""Proposal batching: the commands proposed in one pass of the event loop become one log entry.

pysyncobj spends most of a command's cost per log entry, not per byte: it pickles the entry,
queues it, wakes its tick thread through a pipe, appends it to the journal, sends it in an
append-entries message to every follower and runs a callback for it. Under a pipelined load
those fixed costs, paid once per command, were most of the leader's CPU. Here every command
proposed before the loop next runs its ready callbacks joins one entry (at most
``MAX_COMMANDS`` commands and ``MAX_BYTES`` bytes, so one entry never holds the engine's thread
for long and fits one append-entries batch); each command is still applied on its own, in
order, and each caller gets its own result. A lone command goes as it always did.

While ``max_in_flight`` entries are still waiting for their commit, new proposals wait to join
the next entry instead of leaving as entries of their own (group commit: what comes in while the
disks and the followers are busy goes together, as etcd's Raft groups what was proposed while its
last batch was being written): under load an entry
carries every command that came in while the last one committed, so the per-entry cost on the
leader and on every follower is shared by more commands; a lone command on an idle leader still
leaves at once. A held batch goes anyway after ``hold_s``: an entry whose outcome never comes
back never holds the next ones longer than that.

Batch entries are a list of the commands' JSON strings, which the replicated entry point
applies one by one (``replica.Replica.apply_entry``). Journals written before batching hold only
single commands, which it still applies.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

MAX_COMMANDS = 64
MAX_BYTES = 48 * 1024  # under pysyncobj's append-entries batch (64 KiB) with room for framing
MAX_IN_FLIGHT = 1  # entries sent and not yet settled before new proposals wait for the next one
HOLD_S = 0.02  # the longest a batch waits for an entry in flight (commits take 1-5 ms here)

Send = Callable[[Any, Callable[[Any, int], None]], None]  # (entry, callback(result, error))
Deliver = Callable[["asyncio.Future[Any]", Any], None]  # tick thread: queue (result, code) for a future
Fail = Callable[["asyncio.Future[Any]", BaseException], None]  # loop side: settle with an error


class ProposalBatcher:
    """Collects ``(payload, future)`` proposals on the loop and sends them to the engine as one
    entry per pass of the loop (or sooner, when a batch is full)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, send: Send, deliver: Deliver, fail: Fail, *,
                 max_commands: int = MAX_COMMANDS, max_in_flight: int | None = MAX_IN_FLIGHT,
                 hold_s: float = HOLD_S) -> None:
        self._loop, self._send, self._deliver, self._fail = loop, send, deliver, fail
        self._max = max_commands  # 1: no batching, each command its own entry at once
        self._max_in_flight = max_in_flight  # None: never wait for an entry in flight
        self._hold_s = hold_s
        self._payloads: list[str] = []
        self._futures: list[asyncio.Future[Any]] = []
        self._bytes = 0
        self._in_flight = 0  # entries sent whose commands have not all settled
        self._hold: asyncio.TimerHandle | None = None
        self.entries = 0  # log entries sent
        self.commands = 0  # commands they carried
        self.held = 0  # batches that waited for an entry in flight

    def add(self, payload: str, fut: "asyncio.Future[Any]") -> None:
        if self._payloads and (len(self._payloads) >= self._max or self._bytes + len(payload) > MAX_BYTES):
            self.flush()
        first = not self._payloads
        self._payloads.append(payload)
        self._futures.append(fut)
        self._bytes += len(payload)
        if self._max == 1:
            self.flush()
        elif first:
            self._loop.call_soon(self._flush_unless_busy)  # after every ready callback of this pass has proposed

    def _flush_unless_busy(self) -> None:
        if self._max_in_flight is None or self._in_flight < self._max_in_flight:
            self.flush()
        elif self._payloads and self._hold is None:
            self.held += 1
            self._hold = self._loop.call_later(self._hold_s, self.flush)

    def _settled(self, _last: "asyncio.Future[Any]") -> None:
        """An entry's last command has its outcome (or was cancelled): the entry is no longer in flight."""
        self._in_flight -= 1
        if self._payloads:
            self._flush_unless_busy()

    def flush(self) -> None:
        if self._hold is not None:
            self._hold.cancel()
            self._hold = None
        payloads, futures = self._payloads, self._futures
        if not payloads:
            return
        self._payloads, self._futures, self._bytes = [], [], 0
        self.entries += 1
        self.commands += len(payloads)
        self._in_flight += 1
        futures[-1].add_done_callback(self._settled)  # settled in order: the last one settles the entry
        deliver = self._deliver
        if len(payloads) == 1:
            entry: Any = payloads[0]
            fut = futures[0]

            def callback(result: Any, error: int) -> None:  # tick thread (or here, for QUEUE_FULL)
                try:
                    deliver(fut, (result, int(error)))
                except BaseException:
                    pass
        else:
            entry = payloads

            def callback(result: Any, error: int) -> None:  # tick thread (or here, for QUEUE_FULL)
                try:
                    if error != 0:  # the whole entry failed (not leader, discarded, ...): so did each command
                        for one in futures:
                            deliver(one, (None, int(error)))
                        return
                    if not isinstance(result, list) or len(result) != len(futures):  # never, but be total
                        result = [_INTERNAL] * len(futures)
                    for one, value in zip(futures, result):
                        deliver(one, (value, 0))
                except BaseException:
                    pass
        try:
            self._send(entry, callback)
        except BlockingIOError:
            pass  # wake-up pipe full: the entry is queued and the tick thread is busy anyway
        except Exception as e:
            for one in futures:
                self._fail(one, e)


def batch_counts(batcher: ProposalBatcher | None) -> dict[str, int]:
    """Commands proposed here, the log entries that carried them, and the batches that waited for
    an entry in flight."""
    if batcher is None:
        return {"commands": 0, "entries": 0, "held": 0}
    return {"commands": batcher.commands, "entries": batcher.entries, "held": batcher.held}


_INTERNAL = {"ok": False, "error": "internal", "message": "a batch entry's results did not match its commands"}


__all__ = ["HOLD_S", "MAX_BYTES", "MAX_COMMANDS", "MAX_IN_FLIGHT", "ProposalBatcher", "batch_counts"]
