"""Timestamps from inside a node, for ``scripts/bench/commit_trace.py`` only.

A process started with this directory first on ``PYTHONPATH`` and ``RINGRIFT_TRACE_DIR`` set
imports this at startup and appends one line per event to ``<dir>/t-<pid>.txt``:
``<CLOCK_MONOTONIC ns> <event>`` (one clock for every process on the machine). Events: each
message pysyncobj receives and sends (with its type), each fdatasync's start and end, each
proposal, each apply of a log entry, each HTTP connection accepted. It wraps the engines' methods
from outside, as a profiler would; nothing of it is in the package, and a node started without
the variable runs untouched.
"""

import os
import time

_DIR = os.environ.get("RINGRIFT_TRACE_DIR")
_fd = os.open(os.path.join(_DIR, f"t-{os.getpid()}.txt"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) if _DIR else None


def event(name: str) -> None:
    """Record one event (a no-op unless tracing is on)."""
    if _fd is not None:
        os.write(_fd, f"{time.monotonic_ns()} {name}\n".encode())


if _fd is not None:

    def _around(owner: object, attr: str, before: str, after: str | None = None) -> None:
        original = getattr(owner, attr)

        def wrapper(*args: object, **kwargs: object) -> object:
            event(before)
            try:
                return original(*args, **kwargs)
            finally:
                if after:
                    event(after)

        setattr(owner, attr, wrapper)

    _around(os, "fdatasync", "sync0", "sync1")
    try:
        import aiohttp.web_protocol as _web_protocol
        import pysyncobj.syncobj as _syncobj
        import pysyncobj.transport as _transport
    except ImportError:  # not a node's interpreter: its syncs are traced, nothing else
        pass
    else:
        _receive = _syncobj.SyncObj._SyncObj__onMessageReceived
        _send = _transport.TCPTransport.send

        def _on_message(self: object, node: object, message: object) -> object:
            event(f"recv {message.get('type') if isinstance(message, dict) else '?'}")
            return _receive(self, node, message)

        def _send_message(self: object, node: object, message: object) -> object:
            event(f"send {message.get('type') if isinstance(message, dict) else '?'}")
            return _send(self, node, message)

        _syncobj.SyncObj._SyncObj__onMessageReceived = _on_message
        _transport.TCPTransport.send = _send_message
        _around(_syncobj.SyncObj, "_applyCommand", "propose")
        _around(_syncobj.SyncObj, "_SyncObj__doApplyCommand", "apply0", "apply1")
        _around(_web_protocol.RequestHandler, "connection_made", "http conn")
