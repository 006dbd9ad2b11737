"""EtcdBackend against Debian's etcd (3.4) started by the test on loopback ports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from controlplane.storage import Compacted, EventType, KeyExists, KeyNotFound, RevisionConflict
from controlplane.storage.etcd import EtcdBackend
from tests.integration.etcd.conftest import free_port


@pytest.fixture
async def store(etcd_url: str) -> AsyncIterator[EtcdBackend]:
    backend = EtcdBackend([etcd_url])
    await backend.start()
    try:
        yield backend
    finally:
        await backend.close()


def _prefix(request: pytest.FixtureRequest) -> str:
    return f"/registry/{request.node.name}/"


async def test_create_get_update_delete_follow_revisions_and_preconditions(
    store: EtcdBackend, request: pytest.FixtureRequest
) -> None:
    key = _prefix(request) + "a"
    rev1 = await store.create(key, b"one")
    with pytest.raises(KeyExists):
        await store.create(key, b"again")
    got = await store.get(key)
    assert got.kv is not None
    assert (got.kv.value, got.kv.create_revision, got.kv.mod_revision) == (b"one", rev1, rev1)

    rev2 = await store.update(key, b"two", expected_revision=rev1)
    assert rev2 > rev1
    with pytest.raises(RevisionConflict) as conflict:
        await store.update(key, b"stale", expected_revision=rev1)
    assert conflict.value.actual == rev2
    rev3 = await store.update(key, b"three")  # no precondition
    rev4 = await store.delete(key, expected_revision=rev3)
    assert rev4 > rev3
    assert (await store.get(key)).kv is None
    with pytest.raises(KeyNotFound):
        await store.update(key, b"x")
    with pytest.raises(KeyNotFound):
        await store.delete(key)


async def test_list_pages_in_key_order_and_reads_the_past(store: EtcdBackend, request: pytest.FixtureRequest) -> None:
    prefix = _prefix(request)
    revs = [await store.create(f"{prefix}{name}", name.encode()) for name in ("c", "a", "b", "d")]
    await store.create(prefix.rstrip("/") + "x/outside", b"not under the prefix")

    first = await store.list(prefix, limit=2)
    assert [kv.key for kv in first.kvs] == [prefix + "a", prefix + "b"]
    assert first.more
    rest = await store.list(prefix, start_after=first.kvs[-1].key, revision=first.revision)
    assert [kv.key for kv in rest.kvs] == [prefix + "c", prefix + "d"]
    assert not rest.more

    past = await store.list(prefix, revision=revs[1])
    assert [kv.key for kv in past.kvs] == [prefix + "a", prefix + "c"]
    assert (await store.count(prefix)).count == 4


async def test_watch_replays_from_a_revision_and_deleted_events_carry_the_last_value(
    store: EtcdBackend, request: pytest.FixtureRequest
) -> None:
    prefix = _prefix(request)
    start = await store.create(prefix + "k", b"v1")
    await store.update(prefix + "k", b"v2")
    deleted_at = await store.delete(prefix + "k")

    seen = []
    async with asyncio.timeout(10):
        async for ev in store.watch(prefix, start_revision=start):
            seen.append(ev)
            if len(seen) == 3:
                break
    assert [e.type for e in seen] == [EventType.CREATED, EventType.UPDATED, EventType.DELETED]
    assert seen[1].prev is not None
    assert seen[1].prev.value == b"v1"
    assert (seen[2].kv.value, seen[2].kv.mod_revision) == (b"v2", deleted_at)


async def test_watch_from_now_sees_only_new_changes(store: EtcdBackend, request: pytest.FixtureRequest) -> None:
    prefix = _prefix(request)
    await store.create(prefix + "old", b"x")
    events = store.watch(prefix)
    first = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0.3)  # let the watch register before writing
    rev = await store.create(prefix + "new", b"y")
    async with asyncio.timeout(10):
        ev = await first
    assert (ev.kv.key, ev.kv.mod_revision, ev.type) == (prefix + "new", rev, EventType.CREATED)
    await events.aclose()  # type: ignore[attr-defined]


async def test_compacted_revisions_raise_compacted(store: EtcdBackend, request: pytest.FixtureRequest) -> None:
    prefix = _prefix(request)
    early = await store.create(prefix + "a", b"1")
    await store.update(prefix + "a", b"2")
    later = await store.update(prefix + "a", b"3")
    assert await store.compact(later) == later
    with pytest.raises(Compacted):
        await store.list(prefix, revision=early)
    events = store.watch(prefix, start_revision=early)
    with pytest.raises(Compacted):
        await asyncio.wait_for(anext(events), 10)


async def test_a_dead_first_endpoint_fails_over_to_the_next(etcd_url: str, request: pytest.FixtureRequest) -> None:
    backend = EtcdBackend([f"http://127.0.0.1:{free_port()}", etcd_url], connect_timeout=10)
    await backend.start()
    try:
        rev = await backend.create(_prefix(request) + "k", b"v")
        assert rev == (await backend.get(_prefix(request) + "k")).kv.mod_revision  # type: ignore[union-attr]
    finally:
        await backend.close()


async def test_concurrent_writes_get_distinct_revisions_and_one_winner_per_key(
    store: EtcdBackend, request: pytest.FixtureRequest
) -> None:
    prefix = _prefix(request)
    revisions = await asyncio.gather(*(store.create(f"{prefix}{i:04d}", b"v") for i in range(200)))
    assert len(set(revisions)) == 200
    results = await asyncio.gather(
        *(store.create(prefix + "contested", b"x") for _ in range(20)), return_exceptions=True
    )
    assert sum(isinstance(r, int) for r in results) == 1
    assert all(isinstance(r, KeyExists) for r in results if not isinstance(r, int))
    assert (await store.count(prefix)).count == 201
