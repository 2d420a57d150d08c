"""``ringrift-cluster demo``: real nodes on loopback that live and die with the demo.

``run_demo`` picks the single-cluster demo (swim + raft by default) or ``--compare`` (legacy
and swim + raft side by side). Either way SIGINT, SIGTERM and SIGHUP stop every node, and the
nodes stop by themselves if the demo is killed outright (``run --parent-pid``).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from .setup import Stop, check_sizes
from .view import Out


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo; returns the exit code (1 when a node fails to start)."""
    stop = Stop()
    stop.install()  # before any node exists: a signal during startup still stops them all
    out, err = Out(1), Out(2)
    check_sizes(args, 2 if args.compare else 1)
    root = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="ringrift-demo-"))
    try:
        if args.compare:
            from .compare import run_compare

            return run_compare(args, str(root), stop, out, err)
        from .single import run_single

        return run_single(args, str(root), stop, out, err)
    finally:
        if not args.data_dir:
            shutil.rmtree(root, ignore_errors=True)
