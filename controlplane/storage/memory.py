"""In-memory backend: the test double for `Backend`, with full history so that historical lists,
watches from a revision and compaction behave like the real stores."""

from __future__ import annotations

import bisect
from collections.abc import AsyncIterator

from controlplane.storage.hub import WatchHub
from controlplane.storage.interface import (
    Backend,
    BackendUnavailable,
    Compacted,
    CountResult,
    EventType,
    GetResult,
    KeyExists,
    KeyNotFound,
    KeyValue,
    ListResult,
    RevisionConflict,
    StoreEvent,
)

_Events = list[StoreEvent]


class MemoryBackend:
    def __init__(self) -> None:
        self._revision = 0
        self._compacted = 0
        self._latest: dict[str, KeyValue] = {}
        self._events: list[StoreEvent] = []  # every change after the compaction point, in order
        self._hub = WatchHub()
        self._closed = False

    async def start(self) -> None:
        self._closed = False

    async def close(self) -> None:
        self._closed = True
        self._hub.close()

    def _check_open(self) -> None:
        if self._closed:
            raise BackendUnavailable("memory backend closed")

    async def current_revision(self) -> int:
        return self._revision

    async def get(self, key: str) -> GetResult:
        self._check_open()
        return GetResult(self._revision, self._latest.get(key))

    def _commit(self, ev: StoreEvent) -> int:
        self._revision = ev.kv.mod_revision
        if ev.type is EventType.DELETED:
            del self._latest[ev.kv.key]
        else:
            self._latest[ev.kv.key] = ev.kv
        self._events.append(ev)
        self._hub.publish([ev])
        return self._revision

    def _existing(self, key: str, expected_revision: int | None) -> KeyValue:
        old = self._latest.get(key)
        if old is None:
            raise KeyNotFound(key)
        if expected_revision is not None and expected_revision != old.mod_revision:
            raise RevisionConflict(key, expected_revision, old.mod_revision)
        return old

    async def create(self, key: str, value: bytes) -> int:
        self._check_open()
        if key in self._latest:
            raise KeyExists(key)
        rev = self._revision + 1
        return self._commit(StoreEvent(EventType.CREATED, KeyValue(key, value, rev, rev)))

    async def update(self, key: str, value: bytes, *, expected_revision: int | None = None) -> int:
        self._check_open()
        old = self._existing(key, expected_revision)
        kv = KeyValue(key, value, old.create_revision, self._revision + 1)
        return self._commit(StoreEvent(EventType.UPDATED, kv, old))

    async def delete(self, key: str, *, expected_revision: int | None = None) -> int:
        self._check_open()
        old = self._existing(key, expected_revision)
        kv = KeyValue(key, old.value, old.create_revision, self._revision + 1)
        return self._commit(StoreEvent(EventType.DELETED, kv, old))

    def _state_at(self, revision: int) -> dict[str, KeyValue]:
        if revision == 0 or revision >= self._revision:
            return self._latest
        if revision < self._compacted:
            raise Compacted(revision, self._compacted)
        state = dict(self._latest)
        for ev in reversed(self._events):  # undo changes newer than `revision`
            if ev.kv.mod_revision <= revision:
                break
            if ev.prev is None:
                state.pop(ev.kv.key, None)
            else:
                state[ev.kv.key] = ev.prev
        return state

    async def list(self, prefix: str, *, revision: int = 0, start_after: str = "", limit: int = 0) -> ListResult:
        self._check_open()
        state = self._state_at(revision)
        keys = sorted(k for k in state if k.startswith(prefix) and k > start_after)
        more = bool(limit) and len(keys) > limit
        if limit:
            keys = keys[:limit]
        return ListResult(revision or self._revision, [state[k] for k in keys], more)

    async def count(self, prefix: str) -> CountResult:
        self._check_open()
        return CountResult(self._revision, sum(1 for k in self._latest if k.startswith(prefix)))

    async def _backlog(self, prefix: str, start_revision: int) -> _Events:
        if start_revision < self._compacted:
            raise Compacted(start_revision, self._compacted)
        revs = [ev.kv.mod_revision for ev in self._events]
        start = bisect.bisect_left(revs, start_revision)
        return [ev for ev in self._events[start:] if ev.kv.key.startswith(prefix)]

    def watch(self, prefix: str, *, start_revision: int = 0) -> AsyncIterator[StoreEvent]:
        self._check_open()
        return self._hub.watch(prefix, start_revision, self._backlog)

    async def compact(self, revision: int) -> int:
        revision = min(revision, self._revision)
        if revision > self._compacted:
            self._events = [ev for ev in self._events if ev.kv.mod_revision >= revision]
            self._compacted = revision
        return self._compacted


_: type[Backend] = MemoryBackend
