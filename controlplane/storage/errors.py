"""Storage errors, raised by every backend and mapped to HTTP Status only in the API server.

StorageError
├── KeyNotFound        the key does not exist (or is deleted)
├── KeyExists          create of a key that exists
├── RevisionConflict   the key's mod_revision is not the expected one (optimistic concurrency)
├── Compacted          the requested revision was compacted away (watch/list too old → 410)
├── Unsupported        the backend cannot honour an option; raised up front, never half-way
└── BackendUnavailable the store cannot be reached or has been closed
"""

from __future__ import annotations


class StorageError(Exception):
    """Root of all storage errors."""


class KeyNotFound(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}")
        self.key = key


class KeyExists(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key exists: {key}")
        self.key = key


class RevisionConflict(StorageError):
    def __init__(self, key: str, expected: int, actual: int) -> None:
        super().__init__(f"revision conflict on {key}: expected {expected}, found {actual}")
        self.key = key
        self.expected = expected
        self.actual = actual


class Compacted(StorageError):
    def __init__(self, requested: int, compact_revision: int) -> None:
        super().__init__(f"revision {requested} is compacted (oldest available: {compact_revision})")
        self.requested = requested
        self.compact_revision = compact_revision


class Unsupported(StorageError):
    def __init__(self, field: str) -> None:
        super().__init__(f"unsupported by this backend: {field}")
        self.field = field


class BackendUnavailable(StorageError):
    """The store is closed or unreachable."""
