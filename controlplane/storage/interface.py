"""The one interface every store implements (memory, SQLite, etcd).

A store is a flat key space of opaque byte values with one global, monotonically increasing
revision (like etcd's): every successful write gets a new revision, and each key remembers the
revision it was created at and last modified at. The API server keeps its objects as JSON under
keys `/registry/...`, does optimistic concurrency with `expected_revision`, and serves lists and
watches from its own cache fed by `watch()` — so `list()` is only used to fill that cache.

Contract details every backend honours (the shared tests in tests/unit/apiserver check them):
- `create` fails with KeyExists if the key exists; `update`/`delete` fail with KeyNotFound if it does
  not and with RevisionConflict if `expected_revision` is given and differs from its mod_revision.
- A write is durable before its coroutine returns (acknowledged writes survive `kill -9`).
- `watch(prefix, start_revision=R)` yields every change with revision >= R in revision order, then
  follows new changes; R older than the compaction point raises Compacted; R == 0 means "from now".
- DELETED events carry the last value of the key; their `kv.mod_revision` is the delete's revision.
- Options a backend cannot honour raise Unsupported(field) before doing anything.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from controlplane.storage.errors import (
    BackendUnavailable,
    Compacted,
    KeyExists,
    KeyNotFound,
    RevisionConflict,
    StorageError,
    Unsupported,
)

__all__ = [
    "Backend",
    "BackendUnavailable",
    "Compacted",
    "CountResult",
    "EventType",
    "GetResult",
    "KeyExists",
    "KeyNotFound",
    "KeyValue",
    "ListResult",
    "RevisionConflict",
    "StorageError",
    "StoreEvent",
    "Unsupported",
]


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int


class EventType(enum.Enum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    DELETED = "DELETED"


@dataclass(frozen=True, slots=True)
class StoreEvent:
    type: EventType
    kv: KeyValue  # for DELETED: the last value, with mod_revision = the delete's revision
    prev: KeyValue | None = None  # the value before this change, when the backend knows it


@dataclass(frozen=True, slots=True)
class GetResult:
    revision: int  # the store's revision when the read happened
    kv: KeyValue | None


@dataclass(frozen=True, slots=True)
class ListResult:
    revision: int  # the revision the list is consistent at
    kvs: list[KeyValue]
    more: bool  # True when `limit` cut the result short; continue with start_after=kvs[-1].key


@dataclass(frozen=True, slots=True)
class CountResult:
    revision: int
    count: int


class Backend(Protocol):
    """An async key-value store with global revisions. Implementations: storage.memory.MemoryBackend
    (the test double), storage.sqlite.SQLiteBackend (default), storage.etcd.EtcdBackend."""

    async def start(self) -> None:
        """Open connections / files; called once before any other method."""

    async def close(self) -> None:
        """Release everything; pending watches end."""

    async def current_revision(self) -> int: ...

    async def get(self, key: str) -> GetResult: ...

    async def create(self, key: str, value: bytes) -> int:
        """Store a new key; returns the revision of the write."""

    async def update(self, key: str, value: bytes, *, expected_revision: int | None = None) -> int:
        """Replace a key's value; returns the revision of the write."""

    async def delete(self, key: str, *, expected_revision: int | None = None) -> int:
        """Delete a key; returns the revision of the delete."""

    async def list(self, prefix: str, *, revision: int = 0, start_after: str = "", limit: int = 0) -> ListResult:
        """Keys under `prefix` in key order, at `revision` (0 = latest), after `start_after`, at most
        `limit` (0 = all)."""

    async def count(self, prefix: str) -> CountResult: ...

    def watch(self, prefix: str, *, start_revision: int = 0) -> AsyncIterator[StoreEvent]:
        """Changes under `prefix` from `start_revision` (0 = only new ones), in revision order."""

    async def compact(self, revision: int) -> int:
        """Forget history older than `revision`; returns the new compaction point."""
