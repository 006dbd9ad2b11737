"""The Backend contract, run against every in-process implementation (memory and SQLite)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from controlplane.storage import (
    Backend,
    Compacted,
    EventType,
    KeyExists,
    KeyNotFound,
    RevisionConflict,
    StoreEvent,
)
from controlplane.storage.memory import MemoryBackend
from controlplane.storage.sqlite import SQLiteBackend


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    backend: Backend = MemoryBackend() if request.param == "memory" else SQLiteBackend(tmp_path / "s.db")
    await backend.start()
    yield backend
    await backend.close()


async def test_revisions_increase_with_every_write_and_track_create_and_mod(store: Backend) -> None:
    r1 = await store.create("/a/1", b"x")
    r2 = await store.update("/a/1", b"y")
    r3 = await store.create("/a/2", b"z")
    assert r1 < r2 < r3 == await store.current_revision()
    got = await store.get("/a/1")
    assert got.kv is not None
    assert (got.kv.value, got.kv.create_revision, got.kv.mod_revision) == (b"y", r1, r2)


async def test_create_of_existing_key_raises_key_exists(store: Backend) -> None:
    await store.create("/k", b"1")
    with pytest.raises(KeyExists):
        await store.create("/k", b"2")


async def test_update_with_stale_revision_raises_conflict_and_changes_nothing(store: Backend) -> None:
    r1 = await store.create("/k", b"1")
    await store.update("/k", b"2", expected_revision=r1)
    with pytest.raises(RevisionConflict):
        await store.update("/k", b"3", expected_revision=r1)
    got = await store.get("/k")
    assert got.kv is not None
    assert got.kv.value == b"2"


async def test_update_and_delete_of_missing_key_raise_not_found(store: Backend) -> None:
    with pytest.raises(KeyNotFound):
        await store.update("/missing", b"x")
    with pytest.raises(KeyNotFound):
        await store.delete("/missing")


async def test_deleted_key_can_be_created_again_with_a_new_create_revision(store: Backend) -> None:
    r1 = await store.create("/k", b"1")
    await store.delete("/k")
    assert (await store.get("/k")).kv is None
    r3 = await store.create("/k", b"2")
    got = await store.get("/k")
    assert got.kv is not None
    assert got.kv.create_revision == r3 != r1


async def test_list_is_prefix_scoped_ordered_and_pages_with_limit(store: Backend) -> None:
    for name in ("c", "a", "b"):
        await store.create(f"/p/{name}", name.encode())
    await store.create("/q/a", b"other")
    first = await store.list("/p/", limit=2)
    assert [kv.key for kv in first.kvs] == ["/p/a", "/p/b"]
    assert first.more
    rest = await store.list("/p/", start_after=first.kvs[-1].key, limit=2)
    assert [kv.key for kv in rest.kvs] == ["/p/c"]
    assert not rest.more
    assert (await store.count("/p/")).count == 3


async def test_list_at_an_old_revision_sees_the_old_state(store: Backend) -> None:
    await store.create("/p/a", b"1")
    at = await store.create("/p/b", b"1")
    await store.update("/p/a", b"2")
    await store.delete("/p/b")
    await store.create("/p/c", b"1")
    old = await store.list("/p/", revision=at)
    assert [(kv.key, kv.value) for kv in old.kvs] == [("/p/a", b"1"), ("/p/b", b"1")]


async def _collect(it: AsyncIterator[StoreEvent], n: int) -> list[StoreEvent]:
    out = []
    async for ev in it:
        out.append(ev)
        if len(out) == n:
            break
    return out


async def test_watch_from_revision_replays_history_then_follows_live_changes(store: Backend) -> None:
    r1 = await store.create("/w/a", b"1")
    await store.update("/w/a", b"2")
    await store.create("/other", b"x")
    task = asyncio.create_task(_collect(store.watch("/w/", start_revision=r1), 4))
    await asyncio.sleep(0.05)
    await store.delete("/w/a")
    await store.create("/w/b", b"3")
    events = await asyncio.wait_for(task, 5)
    assert [(e.type, e.kv.key) for e in events] == [
        (EventType.CREATED, "/w/a"),
        (EventType.UPDATED, "/w/a"),
        (EventType.DELETED, "/w/a"),
        (EventType.CREATED, "/w/b"),
    ]
    assert events[2].kv.value == b"2"  # a delete carries the last value
    revs = [e.kv.mod_revision for e in events]
    assert revs == sorted(revs)


async def test_watch_from_a_compacted_revision_raises_compacted(store: Backend) -> None:
    r1 = await store.create("/k", b"1")
    await store.update("/k", b"2")
    r3 = await store.update("/k", b"3")
    await store.compact(r3)
    with pytest.raises(Compacted):
        await _collect(store.watch("/k", start_revision=r1), 1)
    with pytest.raises(Compacted):
        await store.list("/", revision=r1)
    got = await store.get("/k")
    assert got.kv is not None
    assert got.kv.value == b"3"


async def test_concurrent_creates_of_one_key_have_exactly_one_winner(store: Backend) -> None:
    results = await asyncio.gather(*(store.create("/race", str(i).encode()) for i in range(20)), return_exceptions=True)
    assert sum(1 for r in results if isinstance(r, int)) == 1
    assert all(isinstance(r, (int, KeyExists)) for r in results)


async def test_sqlite_state_survives_reopen(tmp_path: Path) -> None:
    first = SQLiteBackend(tmp_path / "db")
    await first.start()
    await first.create("/k", b"1")
    rev = await first.update("/k", b"2")
    await first.close()
    second = SQLiteBackend(tmp_path / "db")
    await second.start()
    try:
        got = await second.get("/k")
        assert got.kv is not None
        assert (got.kv.value, got.kv.mod_revision) == (b"2", rev)
        assert await second.create("/k2", b"x") > rev
    finally:
        await second.close()
