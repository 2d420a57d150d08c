"""What goes into the Raft log and what comes back: a command as one compact JSON entry (``v``,
``rid`` and ``now`` filled in) under a size limit, and pysyncobj's failure codes as our errors.
The Raft store encodes commands and the serving gate its seals with it; ``RaftConsensus``
translates each failed commit."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Mapping

from ...errors import ClusterError, ClusterTimeout, CommandRejected, NoLeader, NotLeader
from ...model import NodeId
from .values import FailReason

# pysyncobj chunks entries above appendEntriesBatchSizeBytes (64 KiB) and mislabels the chunks;
# pickling also inflates text. Commands are small plain data: refuse anything bigger up front.
MAX_COMMAND_BYTES = 32 * 1024
# A state import (snapshot carried across a mode switch) is one entry too; pysyncobj ships it in
# 64 KiB chunks (its chunk labels are wrong, which makes followers log an UnpicklingError per
# extra chunk before the last one completes the entry).
MAX_IMPORT_BYTES = 16 * 1024 * 1024


def encode(command: Mapping[str, Any], limit: int) -> tuple[str, str]:
    """The JSON entry for ``command`` and its rid (``v``, ``rid`` and ``now`` filled in when missing)."""
    if not isinstance(command, Mapping):
        raise CommandRejected("bad_command", f"a command is a mapping, not {type(command).__name__}")
    cmd = dict(command)
    cmd.setdefault("v", 1)
    if not cmd.get("rid"):
        cmd["rid"] = uuid.uuid4().hex
    if cmd.get("now") is None:
        cmd["now"] = time.time()
    try:
        payload = json.dumps(cmd, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise CommandRejected("bad_command", f"the command is not JSON data: {e}") from e
    if len(payload) > limit:  # characters: JSON is ASCII here (ensure_ascii)
        raise CommandRejected("too_large", f"the command is {len(payload)} bytes (max {limit})")
    return payload, str(cmd["rid"])



# The ONE table from pysyncobj's failure codes to our exceptions. ``may_commit`` says whether the
# command may still take effect: callers retry those with the same ``rid`` (the state machine
# deduplicates by rid).
_FAILURES: dict[FailReason, tuple[type[ClusterError], bool, str]] = {
    FailReason.MISSING_LEADER: (NoLeader, False, "no Raft leader is known"),
    FailReason.NOT_LEADER: (NotLeader, False, "the node this command was forwarded to is not the leader"),
    FailReason.QUEUE_FULL: (ClusterTimeout, False, "the Raft command queue is full"),
    FailReason.REQUEST_DENIED: (ClusterTimeout, False, "the Raft leader denied the request"),
    FailReason.DISCARDED: (ClusterTimeout, True, "the entry was overwritten by a new leader"),
    FailReason.LEADER_CHANGED: (ClusterTimeout, True, "the leader changed before the command committed"),
    FailReason.UNKNOWN_OUTCOME: (ClusterTimeout, True, "the outcome of the command is unknown"),
}


def failure_error(code: int, *, leader: NodeId | None = None, rid: str | None = None) -> ClusterError:
    """Translate a pysyncobj FAIL_REASON code into our exception (unknown codes: ClusterTimeout)."""
    try:
        reason = FailReason(code)
        kind, may_commit, text = _FAILURES[reason]
        name = reason.name
    except (ValueError, KeyError):
        kind, may_commit, text, name = ClusterTimeout, True, "unexpected Raft failure code", str(code)
    message = f"{text} ({name})" + ("; it may still commit, retry with the same rid" if may_commit else "")
    error: ClusterError = kind(leader, message) if kind is NotLeader else kind(message)
    error.raft_code = name  # type: ignore[attr-defined]
    error.rid = rid  # type: ignore[attr-defined]
    error.may_commit = may_commit  # type: ignore[attr-defined]
    return error


__all__ = ["MAX_COMMAND_BYTES", "MAX_IMPORT_BYTES", "encode", "failure_error"]
