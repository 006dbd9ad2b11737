"""The API server's in-memory cache of every object, fed by one watch on the store.

Lists, gets and watches are served from here (like the kube-apiserver's watch cache), so the store
only sees writes. Each object is decoded once and encoded once per revision (`Entry.raw`), which
lets a list of thousands of objects be assembled by joining bytes. A bounded window of recent
events lets watches resume from a resourceVersion; older versions get 410 Gone."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from controlplane.apiserver.errors import Gone
from controlplane.storage import Backend, EventType, StorageError, StoreEvent

log = logging.getLogger(__name__)

ROOT = "/registry/"


@dataclass(slots=True)
class Entry:
    key: str
    obj: dict[str, Any]  # shared: never mutate; copy before changing
    raw: bytes
    revision: int


@dataclass(slots=True)
class CacheEvent:
    type: str  # ADDED, MODIFIED, DELETED (watch.EventType names)
    entry: Entry
    prev: Entry | None


def resource_prefix(key: str) -> str:
    """`/registry/<group>/<plural>/` of an object key."""
    parts = key.split("/", 4)
    return "/".join(parts[:4]) + "/"


def decode(key: str, value: bytes, revision: int) -> Entry:
    try:
        obj = orjson.loads(value)
        obj.setdefault("metadata", {})["resourceVersion"] = str(revision)
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        # Not ours (another writer in a shared etcd) or damaged: keep the key visible, not the cache down.
        log.error("undecodable value at %s (revision %d)", key, revision)
        obj = {"metadata": {"name": key.rsplit("/", 1)[-1], "resourceVersion": str(revision)}}
    return Entry(key, obj, orjson.dumps(obj), revision)


@dataclass(eq=False)
class Watcher:
    prefix: str
    queue: asyncio.Queue[CacheEvent | None] = field(default_factory=asyncio.Queue)
    overflowed: bool = False


class WatchCache:
    def __init__(self, backend: Backend, *, window: int = 200_000, watcher_queue_limit: int = 100_000) -> None:
        self._backend = backend
        self._by_resource: dict[str, dict[str, Entry]] = collections.defaultdict(dict)
        self._events: collections.deque[CacheEvent] = collections.deque(maxlen=window)
        self._window_start = 0  # every event with revision > this is in _events
        self._watchers: set[Watcher] = set()
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = 0
        self._queue_limit = watcher_queue_limit
        self.revision = 0
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def start(self) -> None:
        await self._fill()
        self._task = asyncio.create_task(self._follow(), name="watch-cache")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for w in self._watchers:
            w.queue.put_nowait(None)

    async def _fill(self) -> None:
        result = await self._backend.list(ROOT)
        self._by_resource.clear()
        for kv in result.kvs:
            entry = decode(kv.key, kv.value, kv.mod_revision)
            self._by_resource[resource_prefix(kv.key)][kv.key] = entry
        self._events.clear()
        self.revision = self._window_start = result.revision
        self._wake_waiters()
        self.ready.set()

    async def _follow(self) -> None:
        while True:
            try:
                async for ev in self._backend.watch(ROOT, start_revision=self.revision + 1):
                    self._apply(ev)
                log.warning("store watch ended; relisting")
            except asyncio.CancelledError:
                raise
            except Exception:  # whatever the store raised, a cache that stops following is worse
                log.exception("store watch failed; relisting")
            # Rebuild from a fresh list; watchers must start over (their clients relist on the close).
            for w in list(self._watchers):
                w.queue.put_nowait(None)
            self._watchers.clear()
            delay = 0.5
            while True:
                await asyncio.sleep(delay)
                try:
                    await self._fill()
                    break
                except StorageError as err:
                    log.warning("relisting the store failed (%s); retrying", err)
                    delay = min(delay * 2, 10.0)

    def _apply(self, ev: StoreEvent) -> None:
        kv = ev.kv
        objects = self._by_resource[resource_prefix(kv.key)]
        prev = objects.get(kv.key)
        entry = decode(kv.key, kv.value, kv.mod_revision)
        if ev.type is EventType.DELETED:
            objects.pop(kv.key, None)
            cev = CacheEvent("DELETED", entry, prev)
        else:
            objects[kv.key] = entry
            cev = CacheEvent("ADDED" if prev is None else "MODIFIED", entry, prev)
        if len(self._events) == self._events.maxlen:
            self._window_start = self._events[0].entry.revision
        self._events.append(cev)
        self.revision = kv.mod_revision
        for w in self._watchers:
            if kv.key.startswith(w.prefix) and not w.overflowed:
                if w.queue.qsize() >= self._queue_limit:
                    w.overflowed = True  # a consumer this slow must relist; close its stream
                    w.queue.put_nowait(None)
                else:
                    w.queue.put_nowait(cev)
        self._wake_waiters()

    def _wake_waiters(self) -> None:
        while self._waiters and self._waiters[0][0] <= self.revision:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)

    async def wait_for(self, revision: int, timeout: float = 5.0) -> None:
        """Wait until the cache has applied `revision`, so a client reads its own writes."""
        if self.revision >= revision:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._waiters, (revision, self._seq, fut))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(fut, timeout)

    def get(self, key: str) -> Entry | None:
        return self._by_resource.get(resource_prefix(key), {}).get(key)

    def list(self, prefix: str, predicate: Callable[[Entry], bool] | None = None) -> list[Entry]:
        """Entries whose key starts with `prefix` (a resource prefix or a namespace within one), key order."""
        objects = self._by_resource.get(resource_prefix(prefix + "x"), {})
        entries: Iterable[Entry]
        if prefix.count("/") <= 4:
            entries = objects.values()
        else:
            entries = (e for k, e in objects.items() if k.startswith(prefix))
        out = [e for e in entries if predicate is None or predicate(e)]
        out.sort(key=lambda e: e.key)
        return out

    def watch(self, prefix: str, from_revision: int) -> Watcher:
        """Events under `prefix` after `from_revision` (0: only new ones); 410 Gone if it is too old."""
        w = Watcher(prefix)
        if from_revision:
            if from_revision < self._window_start:
                raise Gone(f"too old resource version: {from_revision} ({self._window_start})")
            for ev in self._events:
                if ev.entry.revision > from_revision and ev.entry.key.startswith(prefix):
                    w.queue.put_nowait(ev)
        self._watchers.add(w)
        return w

    def unwatch(self, w: Watcher) -> None:
        self._watchers.discard(w)
