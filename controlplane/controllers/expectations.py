"""Waiting until our own writes show up in an informer cache.

A controller that created three pods must not create them again because the next reconcile ran
before the watch delivered them. Instead of client-go's counters, the reconcile that wrote waits
(bounded) until the cache reflects the write; the key is re-queued meanwhile by the handlers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from controlplane.client import Informer


async def wait_cache(informer: Informer, ready: Callable[[], bool], *, timeout: float = 5.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not ready():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def created_seen(informer: Informer, keys: list[str]) -> Callable[[], bool]:
    return lambda: all(informer.get(k) is not None for k in keys)


def deleted_seen(informer: Informer, keys: list[str]) -> Callable[[], bool]:
    def check() -> bool:
        for k in keys:
            obj = informer.get(k)
            if obj is not None and not (obj.get("metadata") or {}).get("deletionTimestamp"):
                return False
        return True

    return check
