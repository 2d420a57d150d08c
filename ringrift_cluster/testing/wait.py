"""Wait on a condition with a deadline, never on a fixed sleep."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """The condition did not hold in time; the message shows what was last seen."""


def wait_until(
    probe: Callable[[], T],
    timeout: float,
    *,
    interval: float = 0.1,
    what: str = "condition",
    describe: Callable[[], object] | None = None,
) -> T:
    """Call ``probe`` until it returns something truthy; return that value.

    On timeout raise WaitTimeout with ``describe()`` (or the last probe value) so a failure shows
    what the cluster looked like.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            last = probe()
        except Exception as e:  # a probe that fails now may succeed later (node still starting)
            last = f"{type(e).__name__}: {e}"
        else:
            if last:
                return last  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            seen = describe() if describe is not None else last
            raise WaitTimeout(f"{what}: not true after {timeout:.1f}s; last seen: {seen}")
        time.sleep(interval)


def stays_true(
    probe: Callable[[], object],
    duration: float,
    *,
    interval: float = 0.1,
    what: str = "condition",
    describe: Callable[[], object] | None = None,
) -> None:
    """Check ``probe`` over ``duration`` seconds and fail at the first moment it is false:
    for what must NOT happen (a false death, a flap), which no single look can prove."""
    deadline = time.monotonic() + duration
    while True:
        if not probe():
            seen = describe() if describe is not None else None
            raise WaitTimeout(f"{what}: stopped holding; seen: {seen}")
        if time.monotonic() >= deadline:
            return
        time.sleep(interval)
