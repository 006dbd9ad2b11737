"""Fan-out of committed store events to watchers, shared by the in-process backends.

Each watcher gets its own unbounded queue: the only long-lived watcher is the API server's cache,
which drains continuously, so back-pressure would only stall commits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from controlplane.storage.interface import StoreEvent


@dataclass(eq=False)
class _Subscriber:
    prefix: str
    queue: asyncio.Queue[StoreEvent | None] = field(default_factory=asyncio.Queue)


class WatchHub:
    def __init__(self) -> None:
        self._subscribers: set[_Subscriber] = set()  # touched only on the event loop thread

    def publish(self, events: Sequence[StoreEvent]) -> None:
        for sub in self._subscribers:
            for ev in events:
                if ev.kv.key.startswith(sub.prefix):
                    sub.queue.put_nowait(ev)

    def close(self) -> None:
        for sub in self._subscribers:
            sub.queue.put_nowait(None)

    async def watch(
        self,
        prefix: str,
        start_revision: int,
        backlog: Callable[[str, int], Awaitable[list[StoreEvent]]],
    ) -> AsyncIterator[StoreEvent]:
        """Subscribe first, then replay the backlog, then follow live events without duplicates."""
        sub = _Subscriber(prefix)
        self._subscribers.add(sub)
        try:
            last = 0
            if start_revision > 0:
                for ev in await backlog(prefix, start_revision):
                    last = ev.kv.mod_revision
                    yield ev
            while True:
                item = await sub.queue.get()
                if item is None:
                    return
                if item.kv.mod_revision <= last or (start_revision and item.kv.mod_revision < start_revision):
                    continue
                yield item
        finally:
            self._subscribers.discard(sub)
