"""Wait on a condition with a deadline, never on a fixed sleep."""

from __future__ import annotations

import asyncio
import time
from typing import Callable, Generator, TypeVar

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
    looks = _looks(probe, timeout, what, describe)
    while True:
        try:
            next(looks)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        time.sleep(interval)


async def until(
    probe: Callable[[], T],
    timeout: float,
    *,
    interval: float = 0.02,
    what: str = "condition",
    describe: Callable[[], object] | None = None,
) -> T:
    """``wait_until`` inside a coroutine: the loop runs between looks."""
    looks = _looks(probe, timeout, what, describe)
    while True:
        try:
            next(looks)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        await asyncio.sleep(interval)


def _looks(probe: Callable[[], T], timeout: float, what: str,
           describe: Callable[[], object] | None) -> Generator[None, None, T]:
    """Look at ``probe`` until it is truthy (the generator's return value) or the deadline (WaitTimeout);
    it yields between looks, for the caller to wait its own way."""
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
        yield


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
