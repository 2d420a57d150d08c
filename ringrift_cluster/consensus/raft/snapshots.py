"""The loop side of Raft snapshots: restoring a machine from one, and making sure the first full
dump is written early and really appears (the writer itself is ``dump.py``, on its own thread)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any


def default_restore(machine: Any, snapshot: Any) -> Any:
    """Restore ``machine`` from ``snapshot``: ``restore(snapshot)`` in place (or returning a new
    machine), else a ``from_snapshot(snapshot)`` constructor on its class."""
    restore = getattr(machine, "restore", None)
    if callable(restore):
        result = restore(snapshot)
        return result if result is not None and callable(getattr(result, "apply", None)) else machine
    from_snapshot = getattr(type(machine), "from_snapshot", None)
    if callable(from_snapshot):
        return from_snapshot(snapshot)
    raise TypeError(f"{type(machine).__name__} has neither restore(snapshot) nor from_snapshot(snapshot)")


async def first_dump(engine: Any, path: Path, log: Any) -> None:
    """Return once the full-dump file exists; ask the engine for a compaction once a few entries
    are applied, and again every 5 s (logging once that it is missing)."""
    warned = False
    forced_at: float | None = None
    while not path.exists():
        now = time.monotonic()
        if engine.status().applied_index >= 3 and (forced_at is None or now - forced_at > 5.0):
            if forced_at is not None and not warned:
                warned = True
                log.error("raft_dump_missing", path=str(path))
            engine.force_compaction()
            forced_at = now
        await asyncio.sleep(0.2)


__all__ = ["default_restore", "first_dump"]
