"""The replicated state machine as pysyncobj's consumer holds it (the bridge adds the
``@replicated`` entry point). Runs on the tick thread, under the lock the bridge hands in: one
entry point that is total (it parses one JSON command and returns the machine's result, or
``{"ok": False, "error": ...}``, whatever happens), and snapshots that are the machine's own
``snapshot()`` (plain data), never this object's ``__dict__``, so neither the lock nor the machine
object is pickled."""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable, ContextManager

from .values import BARRIER, BARRIER_RESULT

_log = logging.getLogger(__name__)


class Replica:
    def __init__(self, machine: Any, restore: Callable[[Any, Any], Any], lock: ContextManager[Any]) -> None:
        self.machine = machine
        self.restore_fn = restore
        self.lock = lock
        self.apply_failures = 0
        self.restore_failed: str | None = None
        self.longest_apply_s = 0.0

    def apply_entry(self, payload: Any) -> Any:
        """A committed entry, applied. Never raises. One command (a JSON string) or a batch of them
        (a list, ``batch.py``), applied in order, answered by a list."""
        with self.lock:
            started = time.perf_counter()
            if isinstance(payload, list):
                result: Any = [self._apply(one) for one in payload]
            else:
                result = self._apply(payload)
            self.longest_apply_s = max(self.longest_apply_s, time.perf_counter() - started)
            return result

    def _apply(self, payload: Any) -> Any:
        if payload == BARRIER:
            return BARRIER_RESULT
        try:
            command = json.loads(payload)
        except Exception:
            return {"ok": False, "error": "bad_command", "message": "entry is not JSON"}
        if not isinstance(command, dict):
            return {"ok": False, "error": "bad_command", "message": "entry is not an object"}
        try:
            return self.machine.apply(command)
        except BaseException as e:  # the machine promises never to raise; be total anyway
            self.apply_failures += 1
            return {"ok": False, "error": "internal", "message": f"apply raised {type(e).__name__}"}

    def _serialize(self) -> Any:  # pysyncobj's hook: log compaction
        with self.lock:
            return {"format": 1, "machine": self.machine.snapshot()}

    def _deserialize(self, data: Any) -> None:  # pysyncobj's hook: dump load / snapshot install
        try:
            with self.lock:
                if not isinstance(data, dict) or data.get("format") != 1:
                    raise ValueError(f"unknown snapshot format {type(data).__name__}")
                self.machine = self.restore_fn(self.machine, data["machine"])
            self.restore_failed = None
        except BaseException as e:  # never raise into pysyncobj's tick
            self.restore_failed = f"{type(e).__name__}: {e}"
            _log.critical("raft snapshot restore failed: %s", self.restore_failed)


__all__ = ["Replica"]
