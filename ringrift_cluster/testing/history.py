"""What a cluster did during a fault run: :class:`Recorder` polls every running node's
``GET /status`` in the background (all nodes of a round in parallel) and keeps a compact history.

The checks over it are pure functions in :mod:`ringrift_cluster.testing.checks` (re-exported
here), so they work for any membership / consensus mode that fills the common ``/status`` fields:
``role``, ``leader_id``, ``leader_term``, ``lease_expires`` (wall clock, or None when the mode has
no leases) and ``peers{id: {state, is_alive}}``.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, Mapping, Protocol

from .checks.deaths import false_deaths
from .checks.leadership import has_majority_leader, leader_violations, max_window, role_mismatches, unavailability
from .checks.rounds import Exemption, Round, View


class Observable(Protocol):
    nodes: Mapping[str, Any]

    def status(self, node_id: str, timeout: float = 1.0) -> dict[str, Any] | None: ...


class Recorder:
    """Poll every running node's status in the background; keep the rounds.

    A round asks every running node at once and waits at most ``round_s``: a node that does not
    answer by then (paused, overloaded, starting) is ``None`` in that round and is not asked
    again until its pending request finishes (a stuck node costs a round at most ``round_s``, once
    per request timeout). A node silent in one round is waited for again as soon as it is asked
    again: otherwise a node that was not up when recording began would stay ``None`` for good.
    """

    def __init__(self, cluster: Observable, *, interval: float = 0.15, round_s: float = 0.5,
                 request_timeout: float = 1.0) -> None:
        self.cluster = cluster
        self.interval = interval
        self.round_s = round_s
        self.request_timeout = request_timeout
        self.rounds: list[Round] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="history-recorder", daemon=True)
        self._pool = ThreadPoolExecutor(max_workers=max(2, 2 * len(cluster.nodes)), thread_name_prefix="history-poll")
        self._pending: dict[str, Future[Any]] = {}
        self._lock = threading.Lock()
        self.errors: list[str] = []  # rounds that raised (a malformed answer, a bug): counted, not fatal
        self.died: str | None = None  # why the thread ended early, if it did
        self.began: float | None = None
        self.stopped: float | None = None
        self._was_alive_at_stop: bool | None = None

    def __enter__(self) -> "Recorder":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.began = time.time()
        self._thread.start()

    def stop(self) -> None:
        if self._was_alive_at_stop is None:
            self._was_alive_at_stop = self._thread.is_alive()
            self.stopped = time.time()
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def snapshot(self) -> list[Round]:
        with self._lock:
            return list(self.rounds)

    def latest(self) -> Round | None:
        with self._lock:
            return self.rounds[-1] if self.rounds else None

    def health(self, *, max_errors: int = 3, floor: float = 0.5) -> list[str]:
        """What makes this history too thin to judge by: the thread died before :meth:`stop`,
        rounds raised more than ``max_errors`` times, or fewer rounds (or rounds with any answer)
        than ``floor`` times what the interval and round timeout allow over the recorded span (a
        sampler that fell silent would otherwise let every check pass over nothing)."""
        out = []
        if self.died is not None or self._was_alive_at_stop is False:
            out.append(f"the history recorder stopped early: {self.died or 'thread not alive at stop'}")
        if len(self.errors) > max_errors:
            out.append(f"the history recorder failed {len(self.errors)} rounds, first: {self.errors[0]}")
        if self.began is not None:
            span = (self.stopped or time.time()) - self.began
            need = int(span / (self.interval + self.round_s) * floor)
            answered = sum(1 for r in self.rounds if any(v is not None for v in r.views.values()))
            if len(self.rounds) < need:
                out.append(f"the history recorder has {len(self.rounds)} rounds over {span:.1f}s, "
                           f"fewer than the floor {need}")
            elif answered < need:
                out.append(f"only {answered} of the recorder's {len(self.rounds)} rounds over {span:.1f}s got any "
                           f"answer, fewer than the floor {need}")
        return out

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._round()
                except Exception as e:  # noqa: BLE001 - counted, and judged by health()
                    with self._lock:
                        self.errors.append(f"{type(e).__name__}: {e}")
                self._stop.wait(self.interval)
        except BaseException as e:  # noqa: BLE001 - recorded: health() reports it
            self.died = f"{type(e).__name__}: {e}"
            raise

    def _round(self) -> None:
        ids = [n for n, node in self.cluster.nodes.items() if getattr(node, "running", True)]
        started = time.time()
        asked = {}
        for n in ids:
            if n in self._pending and not self._pending[n].done():
                continue  # still stuck on an earlier round's request
            asked[n] = self._pending[n] = self._pool.submit(self.cluster.status, n, self.request_timeout)
        wait(list(asked.values()), timeout=self.round_s)
        ended = time.time()
        views: dict[str, View | None] = {}
        for n in ids:
            future = asked.get(n)
            answer = future.result() if future is not None and future.done() and not future.exception() else None
            views[n] = View.of(n, answer) if isinstance(answer, dict) else None
        with self._lock:
            self.rounds.append(Round(started, ended, views))


__all__ = ["Exemption", "Recorder", "Round", "View", "false_deaths", "has_majority_leader", "leader_violations",
           "max_window", "role_mismatches", "unavailability"]
