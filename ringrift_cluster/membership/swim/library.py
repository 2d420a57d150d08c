"""swim-p2p's configuration dict and its log records, as we hand them over (no state here)."""

from __future__ import annotations

import logging
import time
from typing import Any

from ...config import SwimSettings


def library_config(s: SwimSettings) -> dict[str, Any]:
    """Every key swim-p2p 1.2.6 reads, set explicitly (no library default, no SWIM_* variable).

    Measured facts behind the mapping: ``PING_TIMEOUT``, ``HEARTBEAT_INTERVAL`` and
    ``SYNC_INTERVAL`` are read by nothing in the protocol; the failure detector uses
    ``PING_TIMEOUT_BASE/MIN/MAX`` and the sync loops ``FULL_SYNC_INTERVAL`` (a full sync at that
    period, an incremental one every tenth of it).

    With ``bounded_gossip`` the load per node must not grow with N: fan-out pinned
    (``GOSSIP_FANOUT_FACTOR`` 0, else it grows with log2 N), no push-pull riding on heartbeats
    (it trusts a heartbeat's version, and its "incremental" syncs are full transfers on first
    contact) and no library sync loop: the engine runs anti-entropy itself on a schedule that
    grows with N (``gossip.push_pull_interval``).
    """
    bounded = s.bounded_gossip
    return {
        "PING_TIMEOUT": s.ping_timeout_s,
        "PING_TIMEOUT_BASE": s.ping_timeout_s,
        "PING_TIMEOUT_MIN": s.ping_timeout_s,
        "PING_TIMEOUT_MAX": s.ping_timeout_s,
        "ADAPTIVE_TIMEOUT_FACTOR": 2.0,
        "RTT_SMOOTHING_FACTOR": 0.1,
        "PING_RETRIES": s.ping_retries,
        "INDIRECT_PROBE_COUNT": s.indirect_probes,
        "PROTOCOL_PERIOD": s.protocol_period_s,
        "HEARTBEAT_INTERVAL": s.protocol_period_s,
        "GOSSIP_FANOUT": s.gossip_fanout,
        "GOSSIP_FANOUT_FACTOR": 0 if bounded else 0.5,
        "SUSPECT_TIMEOUT": s.suspicion_timeout_s,
        "ADAPTIVE_TIMING_ENABLED": False,
        "PROTOCOL_PERIOD_MIN": s.protocol_period_s,
        "PROTOCOL_PERIOD_MAX": s.protocol_period_s,
        "PROTOCOL_PERIOD_ADJUSTMENT_FACTOR": 0.1,
        "PUSH_PULL_SYNC_ENABLED": not bounded,
        "PUSH_PULL_SYNC_PROBABILITY": 0.0 if bounded else 0.2,
        "SYNC_INTERVAL": s.sync_interval_s,
        "FULL_SYNC_INTERVAL": s.sync_interval_s,
        "SYNC_FANOUT": 2,
        "SYNC_TIMEOUT": 5.0,
        "SYNC_REQUEST_TIMEOUT": 5.0,
        "UDP_MAX_SIZE": s.packet_budget_bytes if bounded else 65507,  # inert: our transport enforces it
        "TCP_BUFFER_SIZE": 65536,
        "TCP_MAX_CONNECTIONS": 100,
        "TCP_CONNECTION_TIMEOUT": max(s.ping_timeout_s, 1.0),
        "RATE_LIMITING_ENABLED": False,
        "MAX_OUTBOUND_RATE": 0,
        "MAX_INBOUND_RATE": 0,
        "BANDWIDTH_WINDOW_SIZE": 3600,
        "METRICS_ENABLED": False,  # we count messages and bytes in our transport
        "METRICS_REPORT_INTERVAL": 60.0,
        "LOG_LEVEL": "WARNING",
        "LOG_FILE": "",
        "JSON_LOGGING": False,
        "LIFEGUARD_ENABLED": s.lifeguard,
        "MIN_AWARENESS": 0,
        "MAX_AWARENESS": 8,
        "PROBE_RATE_MIN": 0.2,
        "PROBE_RATE_MAX": 2.0,
        "PORT_VALIDATION_ENABLED": False,  # we bound the port exclusively already
        "PORT_VALIDATION_TIMEOUT": 1.0,
    }


class LibraryLogBridge(logging.Handler):
    """swim-p2p's std-logging records, WARNING and up, forwarded to our logger at most once per
    call site per ``every_s`` (the library logs every failed ping at WARNING/ERROR)."""

    def __init__(self, log: Any, every_s: float = 60.0) -> None:
        super().__init__(logging.WARNING)
        self._log = log
        self._every_s = every_s
        self._last: dict[tuple[str, int], float] = {}
        self._suppressed: dict[tuple[str, int], int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        key = (record.pathname, record.lineno)
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._every_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        try:
            self._log.warning("swim_library_log", library_logger=record.name, library_level=record.levelname,
                              message=message[:300], suppressed_since_last=suppressed)
        except Exception:
            pass


_bridge_installed = False


def install_library_log_bridge(log: Any) -> None:
    """Route the library's ``swim.*`` loggers through the bridge (once per process)."""
    global _bridge_installed
    if _bridge_installed:
        return
    _bridge_installed = True
    library = logging.getLogger("swim")
    library.setLevel(logging.WARNING)
    library.propagate = False
    library.addHandler(LibraryLogBridge(log))
