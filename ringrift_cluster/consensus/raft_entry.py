"""What a Raft log entry is: a command as compact JSON, with ``v``, ``rid`` and ``now`` filled in,
under a size limit. The Raft store encodes commands and the serving gate its seals with it."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Mapping

from ..errors import CommandRejected

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


__all__ = ["MAX_COMMAND_BYTES", "MAX_IMPORT_BYTES", "encode"]
