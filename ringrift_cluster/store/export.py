"""The portable snapshot that carries the state across a mode switch.

A graceful stop writes ``state-export.json`` in the node's data dir: the machine's snapshot and
which store it came from. The next start, in any mode, offers it to its store, which takes it
only if it holds more changes than its own state (``state.import``)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXPORT_FILE = "state-export.json"


@dataclass(frozen=True)
class Export:
    source: str  # the store that wrote it: "journal" | "raft"
    changes: int  # the machine's change counter
    written_at: float
    snapshot: dict[str, Any]


def write_export(data_dir: Path, source: str, snapshot: dict[str, Any]) -> Path:
    path = Path(data_dir) / EXPORT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"source": source, "changes": snapshot.get("counters", {}).get("change", 0),
            "written_at": time.time(), "snapshot": snapshot}
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        json.dump(body, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def read_export(data_dir: Path) -> Export | None:
    """The export in ``data_dir``, or None when there is none or it is unreadable."""
    try:
        body = json.loads((Path(data_dir) / EXPORT_FILE).read_text())
        return Export(str(body["source"]), int(body["changes"]), float(body["written_at"]), dict(body["snapshot"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
