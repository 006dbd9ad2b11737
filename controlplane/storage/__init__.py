"""Key-value stores behind one `Backend` interface (see interface.py)."""

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
    StorageError,
    StoreEvent,
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
