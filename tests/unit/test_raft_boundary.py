"""The thread boundary of the Raft backend, checked on the source."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "ringrift_cluster"
IMPORT = re.compile(r"^\s*(import pysyncobj|from pysyncobj)", re.MULTILINE)


def test_only_the_bridge_imports_pysyncobj():
    importers = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if IMPORT.search(p.read_text()))
    assert importers == ["consensus/raft/bridge.py"]


def test_only_the_bridge_crosses_threads():
    paths = sorted((PACKAGE / "consensus" / "raft").glob("*.py"))
    assert len(paths) > 5, paths
    for path in paths:
        text = path.read_text()
        if path.name == "bridge.py":
            assert "call_soon_threadsafe" in text
            continue
        for word in ("call_soon_threadsafe", "threading", "run_in_executor", "to_thread"):
            assert word not in text, f"{path.name} uses {word}: thread crossings belong in bridge.py"


def test_only_the_backend_holds_its_engine():
    """The engine is ``RaftConsensus``'s own: its parts (the serving gate, the store) use its
    public methods, never ``raft._engine``."""
    reach = re.compile(r"(?<!self)\._engine\b")
    offenders = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if reach.search(p.read_text()))
    assert offenders == []
