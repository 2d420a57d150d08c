"""A slow node: its process stopped for part of every period (SIGSTOP, then SIGCONT), as a CPU
quota throttles a process or a busy host starves it. Every stall is far shorter than failure
detection, so the node is slow, never silent long enough to be dead."""

from __future__ import annotations

import signal
import threading
from typing import Callable


class Throttle:
    """Stop ``send``'s target for ``share`` of every ``period_s`` until :meth:`stop`."""

    def __init__(self, send: Callable[[int], None], *, share: float = 0.6, period_s: float = 0.3) -> None:
        if not 0.0 < share < 1.0:
            raise ValueError(f"share must be in (0, 1), got {share}")
        self.send, self.share, self.period_s = send, share, period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="throttle", daemon=True)
        self.cycles = 0

    def start(self) -> "Throttle":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.send(signal.SIGCONT)  # whatever phase it stopped in, the process runs again

    def _run(self) -> None:
        stopped, running = self.period_s * self.share, self.period_s * (1 - self.share)
        while not self._stop.is_set():
            self.send(signal.SIGSTOP)
            try:
                self._stop.wait(stopped)
            finally:
                self.send(signal.SIGCONT)
            self.cycles += 1
            self._stop.wait(running)


__all__ = ["Throttle"]
