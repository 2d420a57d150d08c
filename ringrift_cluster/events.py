"""Fan-out of backend events to any number of async subscribers."""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

T = TypeVar("T")


class Subscription(Generic[T]):
    """An async iterator over the events published after it was created."""

    def __init__(self, hub: "EventHub[T]", maxsize: int) -> None:
        self._hub = hub
        self.queue: asyncio.Queue[T | None] = asyncio.Queue(maxsize)

    def __aiter__(self) -> "Subscription[T]":
        return self

    async def __anext__(self) -> T:
        event = await self.queue.get()
        if event is None:
            self.close()
            raise StopAsyncIteration
        return event

    def drain_nowait(self) -> tuple[list[T], bool]:
        """The events queued now, without waiting, and whether the hub has closed (after which
        this subscription is closed and yields nothing more)."""
        out: list[T] = []
        while not self.queue.empty():
            event = self.queue.get_nowait()
            if event is None:
                self.close()
                return out, True
            out.append(event)
        return out, False

    def close(self) -> None:
        self._hub._subscriptions.discard(self)


class EventHub(Generic[T]):
    """Publishes events to subscribers; each subscriber has its own bounded queue.

    ``publish`` never blocks: a subscriber that falls ``maxsize`` events behind loses the oldest
    ones (``dropped`` counts them), so a slow consumer cannot stall a backend. Subscribing
    registers at once, so no event published after ``subscribe()`` returns is missed.
    """

    def __init__(self, maxsize: int = 1024) -> None:
        self._maxsize = maxsize
        self._subscriptions: set[Subscription[T]] = set()
        self.dropped = 0

    def subscribe(self) -> Subscription[T]:
        subscription: Subscription[T] = Subscription(self, self._maxsize)
        self._subscriptions.add(subscription)
        return subscription

    def publish(self, event: T) -> None:
        for subscription in list(self._subscriptions):
            self._put(subscription.queue, event)

    def close(self) -> None:
        """End every subscription: their iterators finish after the events already queued."""
        for subscription in list(self._subscriptions):
            self._put(subscription.queue, None)

    def _put(self, queue: "asyncio.Queue[T | None]", item: "T | None") -> None:
        if queue.full():
            queue.get_nowait()
            self.dropped += 1
        queue.put_nowait(item)
