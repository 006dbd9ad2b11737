"""SQLite backend (the default store), kine-style: every write appends a row and the row id is the
revision, so history (for watches from a revision and consistent lists) falls out of the table.

One writer thread owns the connection and batches whatever operations are queued into a single
transaction (one fsync per batch, WAL mode, synchronous=FULL): a write's coroutine resumes only after
its batch committed, so acknowledged writes survive `kill -9`. The latest value of every key is
kept in memory (the `_latest` index, owned by the writer thread) so create/update checks need no
SELECT; reads of history go through the same thread, which keeps every read consistent with the
committed revision."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    StorageError,
    StoreEvent,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS kv_name_id ON kv (name, id);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
"""

_MAX_BATCH = 2000
_Events = list[StoreEvent]


def _prefix_end(prefix: str) -> str:
    """The smallest string greater than every string starting with `prefix`."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1) if prefix else "\U0010ffff"


@dataclass
class _Op:
    fn: Callable[[_Txn], Any]
    future: asyncio.Future[Any]
    is_write: bool


@dataclass
class _Txn:
    """What one batch sees and produces; `overlay` holds this batch's changes to `_latest` until commit."""

    db: sqlite3.Connection
    latest: dict[str, KeyValue]
    revision: int
    overlay: dict[str, KeyValue | None] = field(default_factory=dict)
    events: list[StoreEvent] = field(default_factory=list)

    def current(self, key: str) -> KeyValue | None:
        if key in self.overlay:
            return self.overlay[key]
        return self.latest.get(key)


class SQLiteBackend:
    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        # Operations go to the writer thread in lists: one hand-over per event-loop turn, not one per
        # operation (waking a thread costs more than the SQL of a small write).
        self._ops: queue.SimpleQueue[list[_Op] | None] = queue.SimpleQueue()
        self._pending: list[_Op] = []  # submitted this loop turn, not yet handed over (loop thread only)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._hub = WatchHub()
        self._latest: dict[str, KeyValue] = {}  # owned by the writer thread
        self._revision = 0  # last committed revision; written by the writer thread
        self._compacted = 0
        self._closed = True

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        ready: asyncio.Future[None] = self._loop.create_future()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="sqlite-writer", daemon=True)
        self._closed = False
        self._thread.start()
        await ready

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._hand_over()
        self._ops.put(None)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        self._hub.close()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
        row = db.execute("SELECT v FROM meta WHERE k = 'compact'").fetchone()
        self._compacted = int(row[0]) if row else 0
        row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'kv'").fetchone()
        self._revision = int(row[0]) if row else 0
        rows = db.execute(
            "SELECT k.name, k.value, k.create_revision, k.id FROM kv k "
            "JOIN (SELECT MAX(id) AS id FROM kv GROUP BY name) m ON k.id = m.id WHERE k.deleted = 0"
        )
        self._latest = {name: KeyValue(name, bytes(value), crev or rev, rev) for name, value, crev, rev in rows}
        return db

    def _run(self, ready: asyncio.Future[None]) -> None:
        assert self._loop is not None
        loop = self._loop
        try:
            db = self._open()
        except Exception as err:  # reported to start()'s caller
            loop.call_soon_threadsafe(ready.set_exception, BackendUnavailable(f"cannot open {self._path}: {err}"))
            return
        loop.call_soon_threadsafe(ready.set_result, None)
        try:
            while True:
                first = self._ops.get()
                if first is None:
                    break
                batch = list(first)
                stop = False
                while len(batch) < _MAX_BATCH:
                    try:
                        nxt = self._ops.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stop = True
                        break
                    batch.extend(nxt)
                self._run_batch(db, batch)
                if stop:
                    break
        finally:
            db.close()
            self._fail_pending()

    def _fail_pending(self) -> None:
        assert self._loop is not None
        while True:
            try:
                ops = self._ops.get_nowait()
            except queue.Empty:
                return
            for op in ops or []:
                self._resolve(op.future, None, BackendUnavailable("sqlite backend closed"))

    def _resolve(self, fut: asyncio.Future[Any], result: Any, err: BaseException | None) -> None:
        def done() -> None:
            if fut.done():
                return
            if err is not None:
                fut.set_exception(err)
            else:
                fut.set_result(result)

        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # loop closed during shutdown
            self._loop.call_soon_threadsafe(done)

    def _run_batch(self, db: sqlite3.Connection, batch: list[_Op]) -> None:
        txn = _Txn(db, self._latest, self._revision)
        results: list[tuple[_Op, Any, BaseException | None]] = []
        writes = any(op.is_write for op in batch)
        try:
            db.execute("BEGIN IMMEDIATE" if writes else "BEGIN")
            for op in batch:
                db.execute("SAVEPOINT op")
                try:
                    results.append((op, op.fn(txn), None))
                except StorageError as err:
                    db.execute("ROLLBACK TO op")
                    results.append((op, None, err))
                db.execute("RELEASE op")
            db.execute("COMMIT")
        except sqlite3.Error as err:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            for op in batch:
                self._resolve(op.future, None, BackendUnavailable(f"sqlite: {err}"))
            return
        for key, kv in txn.overlay.items():
            if kv is None:
                self._latest.pop(key, None)
            else:
                self._latest[key] = kv
        self._revision = txn.revision
        events = txn.events
        assert self._loop is not None

        def finish() -> None:
            # Publish before resolving so a writer that then reads its own watch sees the event.
            if events:
                self._hub.publish(events)
            for op, result, err in results:
                if op.future.done():
                    continue
                if err is not None:
                    op.future.set_exception(err)
                else:
                    op.future.set_result(result)

        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(finish)

    async def _submit(self, fn: Callable[[_Txn], Any], *, is_write: bool) -> Any:
        if self._closed or self._loop is None:
            raise BackendUnavailable("sqlite backend closed")
        fut: asyncio.Future[Any] = self._loop.create_future()
        if not self._pending:
            self._loop.call_soon(self._hand_over)
        self._pending.append(_Op(fn, fut, is_write))
        return await fut

    def _hand_over(self) -> None:
        ops, self._pending = self._pending, []
        if ops:
            self._ops.put(ops)

    # -- writes (run on the writer thread) -------------------------------------------------------

    @staticmethod
    def _append(txn: _Txn, etype: EventType, key: str, value: bytes, prev: KeyValue | None) -> int:
        """Append one row; create_revision 0 in the table means "this row created the key"."""
        cur = txn.db.execute(
            "INSERT INTO kv (name, deleted, create_revision, prev_revision, value) VALUES (?, ?, ?, ?, ?)",
            (
                key,
                1 if etype is EventType.DELETED else 0,
                prev.create_revision if prev else 0,
                prev.mod_revision if prev else 0,
                value,
            ),
        )
        rev = int(cur.lastrowid or 0)
        kv = KeyValue(key, value, prev.create_revision if prev else rev, rev)
        txn.overlay[key] = None if etype is EventType.DELETED else kv
        txn.events.append(StoreEvent(etype, kv, prev))
        txn.revision = rev
        return rev

    @staticmethod
    def _checked(txn: _Txn, key: str, expected_revision: int | None) -> KeyValue:
        old = txn.current(key)
        if old is None:
            raise KeyNotFound(key)
        if expected_revision is not None and expected_revision != old.mod_revision:
            raise RevisionConflict(key, expected_revision, old.mod_revision)
        return old

    async def create(self, key: str, value: bytes) -> int:
        def fn(txn: _Txn) -> int:
            if txn.current(key) is not None:
                raise KeyExists(key)
            return self._append(txn, EventType.CREATED, key, value, None)

        rev: int = await self._submit(fn, is_write=True)
        return rev

    async def update(self, key: str, value: bytes, *, expected_revision: int | None = None) -> int:
        def fn(txn: _Txn) -> int:
            old = self._checked(txn, key, expected_revision)
            return self._append(txn, EventType.UPDATED, key, value, old)

        rev: int = await self._submit(fn, is_write=True)
        return rev

    async def delete(self, key: str, *, expected_revision: int | None = None) -> int:
        def fn(txn: _Txn) -> int:
            old = self._checked(txn, key, expected_revision)
            return self._append(txn, EventType.DELETED, key, old.value, old)

        rev: int = await self._submit(fn, is_write=True)
        return rev

    async def compact(self, revision: int) -> int:
        def fn(txn: _Txn) -> int:
            target = min(revision, txn.revision)
            if target <= self._compacted:
                return self._compacted
            # Keep the newest row of every live key; drop superseded rows and old delete markers.
            txn.db.execute(
                "DELETE FROM kv WHERE id < ? AND (deleted = 1 OR id NOT IN (SELECT MAX(id) FROM kv GROUP BY name))",
                (target,),
            )
            txn.db.execute("INSERT OR REPLACE INTO meta (k, v) VALUES ('compact', ?)", (target,))
            self._compacted = target
            return target

        rev: int = await self._submit(fn, is_write=True)
        return rev

    # -- reads -----------------------------------------------------------------------------------

    async def current_revision(self) -> int:
        def fn(txn: _Txn) -> int:
            return txn.revision

        rev: int = await self._submit(fn, is_write=False)
        return rev

    async def get(self, key: str) -> GetResult:
        def fn(txn: _Txn) -> GetResult:
            return GetResult(txn.revision, txn.current(key))

        result: GetResult = await self._submit(fn, is_write=False)
        return result

    async def list(self, prefix: str, *, revision: int = 0, start_after: str = "", limit: int = 0) -> ListResult:
        def fn(txn: _Txn) -> ListResult:
            at = revision or txn.revision
            if at < self._compacted:
                raise Compacted(at, self._compacted)
            if at >= txn.revision:
                keys = sorted(k for k in txn.latest if k.startswith(prefix) and k > start_after)
                more = bool(limit) and len(keys) > limit
                keys = keys[:limit] if limit else keys
                return ListResult(txn.revision, [txn.latest[k] for k in keys], more)
            lo = max(prefix, start_after + "\0") if start_after else prefix
            rows = txn.db.execute(
                "SELECT k.name, k.value, k.create_revision, k.id FROM kv k JOIN ("
                " SELECT MAX(id) AS id FROM kv WHERE name >= ? AND name < ? AND id <= ? GROUP BY name"
                ") m ON k.id = m.id WHERE k.deleted = 0 ORDER BY k.name LIMIT ?",
                (lo, _prefix_end(prefix), at, limit + 1 if limit else -1),
            ).fetchall()
            kvs = [KeyValue(n, bytes(v), c or r, r) for n, v, c, r in rows]
            more = bool(limit) and len(kvs) > limit
            return ListResult(at, kvs[:limit] if limit else kvs, more)

        result: ListResult = await self._submit(fn, is_write=False)
        return result

    async def count(self, prefix: str) -> CountResult:
        def fn(txn: _Txn) -> CountResult:
            return CountResult(txn.revision, sum(1 for k in txn.latest if k.startswith(prefix)))

        result: CountResult = await self._submit(fn, is_write=False)
        return result

    async def _backlog(self, prefix: str, start_revision: int) -> _Events:
        def fn(txn: _Txn) -> _Events:
            if start_revision < self._compacted:
                raise Compacted(start_revision, self._compacted)
            rows = txn.db.execute(
                "SELECT name, deleted, create_revision, value, id FROM kv "
                "WHERE id >= ? AND name >= ? AND name < ? ORDER BY id",
                (start_revision, prefix, _prefix_end(prefix)),
            ).fetchall()
            out = []
            for name, deleted, crev, value, rev in rows:
                etype = EventType.DELETED if deleted else (EventType.UPDATED if crev else EventType.CREATED)
                out.append(StoreEvent(etype, KeyValue(name, bytes(value), crev or rev, rev)))
            return out

        result: _Events = await self._submit(fn, is_write=False)
        return result

    def watch(self, prefix: str, *, start_revision: int = 0) -> AsyncIterator[StoreEvent]:
        if self._closed:
            raise BackendUnavailable("sqlite backend closed")
        return self._hub.watch(prefix, start_revision, self._backlog)


_: type[Backend] = SQLiteBackend
