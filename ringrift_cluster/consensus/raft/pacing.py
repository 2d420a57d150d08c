"""When pysyncobj's tick thread sends and wakes: three adjustments to its pacing, by wrapping.

- **A commit notice waits a moment for the next append.** After applying newly committed
  entries, pysyncobj's leader sends every follower an AppendEntries with no entries, only to tell
  it the new commit index: four messages out and four replies in per write with five voters, and
  a wake-up of every follower, while the write's own answer is on its way to the client. The next
  append carries the same index. So a broadcast that would carry no entry to any follower is
  deferred by at most ``NOTICE_DELAY_S`` (the heartbeat deadline is brought forward to then, and
  the tick thread's wait is cut to reach it): a write that follows within that time carries the
  notice; otherwise it goes alone, as before, a few milliseconds later. Followers only apply a
  commit that much later; commits themselves are not delayed (they count the leader's and the
  followers' acknowledgements, not the notice). A notice that a follower is waiting for, because
  a command it forwarded has just committed (its caller is answered when the follower applies
  it), is never deferred.
  Measured with five voters and sequential writes (``batch``): 1.57-1.66 ms a write instead of
  1.83-1.90 ms, and a fifth less CPU per write summed over the cluster.
- **A single-member cluster commits at once.** pysyncobj's leader counts commits at the top of a
  tick and appends new commands later in the same tick; with no follower to answer, nothing wakes
  the tick thread in between, so every write waited for the next tick (about 50 ms). Here a tick
  that leaves the solo leader's log ahead of its commit index wakes the next one at once.
- **Links between followers are kept alive.** pysyncobj drops a connection, and the message being
  sent on it, when it sends on a connection it has read nothing from for ``connectionTimeout``.
  Followers never send each other anything until an election, so the first vote request on such
  a link was lost and the candidate waited out a whole election timeout for another term
  (measured: the first leader SIGKILL in a fresh 5-member cluster took 0.46-0.62 s to the next
  write instead of 0.16 s).
  Here a follower sends every other follower a message of a type pysyncobj ignores (a stock
  pysyncobj peer ignores it too) every third of that timeout; the leader's links carry its
  AppendEntries and their answers. A peer that really stopped answering is still dropped, on the
  next keepalive after the timeout.

Reaches into pysyncobj's internals (its name-mangled attributes, its transport and poller), as
``durable.py`` does; used only by ``bridge``. Everything here runs on the tick thread.
"""

from __future__ import annotations

from typing import Any, Callable

_LEADER = 2  # pysyncobj's _RAFT_STATE.LEADER
# Long enough for the next write of a client that waits for each answer (a few hundred
# microseconds on one machine, a round trip more across a network), short beside any heartbeat.
NOTICE_DELAY_S = 0.005
KEEPALIVE = {"type": "keepalive"}  # no type pysyncobj handles: read, then ignored


class Pacing:
    """Installed on a constructed SyncObj; counts what it changed."""

    def __init__(self, syncobj: Any, clock: Callable[[], float], solo: bool) -> None:
        self._so = syncobj
        self._clock = clock  # pysyncobj's own (its heartbeat deadline is on that clock)
        self._send = syncobj._SyncObj__sendAppendEntries
        self.notices_deferred = 0  # commit-only broadcasts held back for the next append
        self.notices_alone = 0  # of those, the ones no append came for in time: they went alone
        self.solo_wakes = 0
        self.keepalives = 0  # sent to other followers
        self._keepalive_s = float(syncobj.conf.connectionTimeout) / 3
        self._kept_at = clock()
        self._woke_for = -1  # the last log index a wake was for: one wake per append, never a spin
        self._notice_due: float | None = None  # a deferred notice's deadline, while one is pending
        self._told = -1  # the commit index the last broadcast carried
        self._forwarded = -1  # the highest index given to a command a follower forwarded
        # The instance attributes shadow the methods for pysyncobj's own calls
        # (``self.__sendAppendEntries()``); they are code, not state: keep them out of the dumps.
        syncobj._SyncObj__sendAppendEntries = self._send_append_entries
        syncobj._SyncObj__properies.add("_SyncObj__sendAppendEntries")
        transport = syncobj._SyncObj__transport
        self._transport_send = transport.send
        transport.send = self._watch_send
        poller = syncobj._poller
        self._poll = poller.poll
        poller.poll = self._poll_until_notice
        if solo:
            syncobj.addOnTickCallback(self._wake_if_uncommitted)
        else:
            syncobj.addOnTickCallback(self._keep_links_alive)

    def _send_append_entries(self) -> None:
        so = self._so
        try:
            if so._SyncObj__raftState == _LEADER and not self._carries_entries():
                now = self._clock()
                if now <= so._SyncObj__newAppendEntriesTime and not self._forwarder_waits():
                    if self._notice_due is None:
                        self._notice_due = now + NOTICE_DELAY_S
                        self.notices_deferred += 1
                    so._SyncObj__newAppendEntriesTime = min(so._SyncObj__newAppendEntriesTime, self._notice_due)
                    return
                if self._notice_due is not None:
                    self.notices_alone += 1
            self._told = so._SyncObj__raftCommitIndex
        except Exception:  # never in the engine's way: when in doubt, send
            pass
        self._notice_due = None
        self._send()

    def _carries_entries(self) -> bool:
        """Whether a send now would carry an entry (or a snapshot) to some connected follower."""
        so = self._so
        last = so._SyncObj__raftLog[-1][1]
        next_index = so._SyncObj__raftNextIndex
        return any(next_index.get(node, 0) <= last for node in so._SyncObj__connectedNodes)

    def _forwarder_waits(self) -> bool:
        """A command forwarded by a follower has committed, and no broadcast has said so yet."""
        return self._told < self._forwarded <= self._so._SyncObj__raftCommitIndex

    def _watch_send(self, node: Any, message: Any) -> Any:
        try:
            if isinstance(message, dict) and message.get("type") == "apply_command_response" \
                    and "log_idx" in message:
                self._forwarded = max(self._forwarded, message["log_idx"])
        except Exception:
            pass
        return self._transport_send(node, message)

    def _poll_until_notice(self, timeout: float) -> Any:
        due = self._notice_due
        if due is not None:
            if self._so._SyncObj__raftState != _LEADER:  # no longer ours to send: never a spin
                self._notice_due = None
            else:  # the next tick sends it (its heartbeat deadline is ``due`` at the latest)
                timeout = max(0.0, min(timeout, due - self._clock()))
        return self._poll(timeout)

    def _keep_links_alive(self) -> None:
        try:  # a tick callback never raises
            now = self._clock()
            if now - self._kept_at < self._keepalive_s:
                return
            self._kept_at = now
            so = self._so
            if so._isLeader():
                return
            leader = so._getLeader()
            for node in so.otherNodes:
                if node != leader and so.isNodeConnected(node):
                    self._transport_send(node, KEEPALIVE)  # the send it wraps: nothing to watch here
                    self.keepalives += 1
        except Exception:
            pass

    def _wake_if_uncommitted(self) -> None:
        try:  # a tick callback never raises
            so = self._so
            last = so._SyncObj__raftLog[-1][1]
            if so._SyncObj__raftState == _LEADER and so._SyncObj__raftCommitIndex < last != self._woke_for:
                self._woke_for = last
                self.solo_wakes += 1
                so._SyncObj__pipeNotifier.notify()
        except Exception:
            pass


__all__ = ["KEEPALIVE", "NOTICE_DELAY_S", "Pacing"]
