"""A rate-limited work queue of object keys, the spine of every level-triggered controller.

Semantics (the same contract client-go's workqueue documents):
- a key is queued at most once (adding it again while queued is a no-op);
- a key is handed to at most one worker at a time; adding it while it is being processed marks it
  dirty and it is re-queued when the worker calls `done`;
- `add_rate_limited` re-adds after a per-key exponential back-off (base·2^failures, capped);
  `forget` resets the key's failure count after a successful reconcile.
Depth, adds and retries are counted for `/metrics` (see `controlplane.client.metrics`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass


class ShutDown(Exception):
    """`get()` on a queue that was shut down and drained."""


@dataclass
class QueueStats:
    adds: int = 0
    retries: int = 0


class RateLimitedQueue:
    def __init__(self, name: str, *, base_delay: float = 0.005, max_delay: float = 60.0) -> None:
        self.name = name
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.stats = QueueStats()
        # All guarded by running on one event loop (no awaits between reads and writes).
        self._queue: deque[str] = deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._failures: dict[str, int] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._wakeup = asyncio.Event()
        self._shutdown = False

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def depth(self) -> int:
        return len(self._queue)

    def add(self, key: str) -> None:
        if self._shutdown or key in self._dirty:
            return
        self.stats.adds += 1
        self._dirty.add(key)
        if key in self._processing:
            return  # re-queued by done()
        self._queue.append(key)
        self._wakeup.set()

    def add_after(self, key: str, delay: float) -> None:
        """Add once `delay` seconds have passed; an earlier pending timer for the key wins."""
        if self._shutdown:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        old = self._timers.get(key)
        if old is not None:
            if old.when() <= loop.time() + delay:
                return
            old.cancel()
        self._timers[key] = loop.call_later(delay, self._fire, key)

    def _fire(self, key: str) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def backoff(self, key: str) -> float:
        """The delay the next `add_rate_limited(key)` will use."""
        return float(min(self.max_delay, self.base_delay * (2 ** self._failures.get(key, 0))))

    def add_rate_limited(self, key: str) -> None:
        delay = self.backoff(key)
        self._failures[key] = self._failures.get(key, 0) + 1
        self.stats.retries += 1
        self.add_after(key, delay)

    def num_requeues(self, key: str) -> int:
        return self._failures.get(key, 0)

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    async def get(self) -> str:
        """The next key, now owned by the caller until `done(key)`. Raises `ShutDown` when drained."""
        while not self._queue:
            if self._shutdown:
                raise ShutDown(self.name)
            self._wakeup.clear()
            await self._wakeup.wait()
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._wakeup.set()

    def shutdown(self) -> None:
        self._shutdown = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._wakeup.set()
