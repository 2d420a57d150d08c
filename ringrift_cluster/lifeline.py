"""``run --parent-pid PID``: a node that stops when the process that started it dies.

The demo starts its nodes with this, so no node outlives its demo, even one killed by SIGKILL.
On Linux the kernel sends SIGTERM at once (``prctl(PR_SET_PDEATHSIG)``); everywhere a watcher
thread also notices the node was re-parented and sends the same SIGTERM, then ends the process
outright if the graceful stop has not finished within ``grace_s``.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1


def exit_with_parent(parent_pid: int, *, interval_s: float = 0.5, grace_s: float = 20.0) -> None:
    """Arrange for this process to stop when ``parent_pid`` is no longer its parent."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watcher below still works
    if os.getppid() != parent_pid:  # the parent died before we got here
        raise SystemExit(f"ringrift-cluster: parent process {parent_pid} is gone; not starting")
    threading.Thread(target=_watch, args=(parent_pid, interval_s, grace_s),
                     name="parent-watch", daemon=True).start()


def _watch(parent_pid: int, interval_s: float, grace_s: float) -> None:
    while os.getppid() == parent_pid:
        time.sleep(interval_s)
    os.kill(os.getpid(), signal.SIGTERM)  # the graceful stop of run_until_signalled
    time.sleep(grace_s)
    os._exit(1)  # the graceful stop hung: the parent is gone, so must we be
