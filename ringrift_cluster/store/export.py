"""The files that carry the state across restarts and mode switches, and their checks.

- ``state-export.json``: written at every graceful stop by whatever store the node ran, with the
  machine's snapshot, its lineage (``state/lineage.py``), the store that wrote it and the
  cluster's name. Any later start, in any mode, offers it as one of the node's candidates.
- ``store-run.json``: which store the node runs, and whether it stopped cleanly; the next start
  reads it to know that a switch is under way (and whether the old store left an export).

A file that cannot be trusted (unreadable, truncated, wrong JSON, a snapshot that does not
restore, another cluster's) is refused with one log line naming it, and never loaded.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from ..durable import write_json_durably

from ..state import StateMachine
from ..state.lineage import Lineage, of_snapshot

EXPORT_FILE = "state-export.json"
RUN_FILE = "store-run.json"
_log = structlog.get_logger("ringrift.store.export")


@dataclass(frozen=True)
class Export:
    source: str  # the store that wrote it: "journal" | "raft"
    lineage: Lineage
    written_at: float
    snapshot: dict[str, Any]

    @property
    def changes(self) -> int:
        return self.lineage.changes


def write_export(data_dir: Path, source: str, snapshot: dict[str, Any], cluster: str) -> Path:
    path = Path(data_dir) / EXPORT_FILE
    write_json_durably(path, {"cluster": cluster, "source": source, "lineage": of_snapshot(snapshot).to_dict(),
                            "written_at": time.time(), "snapshot": snapshot})
    return path


def read_export(data_dir: Path, cluster: str) -> Export | None:
    """The export in ``data_dir``; None when there is none or it is refused (logged)."""
    path = Path(data_dir) / EXPORT_FILE
    try:
        body = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        return _refuse(path, f"unreadable or not JSON: {e}")
    if not isinstance(body, dict):
        return _refuse(path, "not a JSON object")
    if body.get("cluster") != cluster:
        return _refuse(path, f"written by cluster {body.get('cluster')!r}, this is {cluster!r}")
    snapshot = body.get("snapshot")
    problem = snapshot_problem(snapshot)
    if problem:
        return _refuse(path, problem)
    lineage = of_snapshot(snapshot)
    try:
        if Lineage.from_dict(body.get("lineage")) != lineage:
            return _refuse(path, "its lineage does not match its snapshot")
        return Export(str(body["source"]), lineage, float(body["written_at"]), snapshot)
    except (KeyError, TypeError, ValueError) as e:
        return _refuse(path, f"bad header: {e}")


def snapshot_problem(snapshot: Any) -> str | None:
    """Why ``snapshot`` is not a state this version can load, or None."""
    if not isinstance(snapshot, dict):
        return "no state snapshot in it"
    try:
        of_snapshot(snapshot)
        StateMachine.from_snapshot(snapshot)
    except Exception as e:  # SnapshotError, ValueError: any reason is a refusal
        return f"its snapshot does not load: {e}"
    return None


def _refuse(path: Path, reason: str) -> None:
    _log.error("state_file_refused", path=str(path), reason=reason,
               hint="the file is left in place and ignored; the node keeps the state it has")
    return None


@dataclass(frozen=True)
class LastRun:
    store: str
    clean: bool


def read_last_run(data_dir: Path) -> LastRun | None:
    try:
        body = json.loads((Path(data_dir) / RUN_FILE).read_bytes())
        return LastRun(str(body["store"]), bool(body["clean"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as e:
        _refuse(Path(data_dir) / RUN_FILE, f"unreadable: {e}")
        return None


def write_last_run(data_dir: Path, store: str, clean: bool) -> None:
    write_json_durably(Path(data_dir) / RUN_FILE, {"store": store, "clean": clean, "at": time.time()})
