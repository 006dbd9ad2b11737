"""Watch streams over HTTP, in-process (aiohttp's test server, memory store, no authentication):
initial state, bookmarks on an idle stream, and 410 Gone as an ERROR event for a compacted version."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from controlplane.apiserver import watch
from controlplane.apiserver.cache import WatchCache
from controlplane.apiserver.handlers import ApiHandlers
from controlplane.apiserver.registry import Registry
from controlplane.apiserver.tables import TableMaker
from controlplane.resources import CONFIGMAPS
from controlplane.storage.memory import MemoryBackend

CM = "/api/v1/namespaces/default/configmaps"


@pytest.fixture
async def api(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[TestClient[Any, Any], Registry]]:
    parse = watch.WatchParams.parse
    monkeypatch.setattr(
        watch.WatchParams, "parse", staticmethod(lambda q: dataclasses.replace(parse(q), bookmark_interval=0.1))
    )
    backend = MemoryBackend()
    await backend.start()
    cache = WatchCache(backend, window=4)
    await cache.start()
    reg = Registry(backend, cache)
    handlers = ApiHandlers(reg, server_address="127.0.0.1:0", tables=TableMaker())
    handlers.ready = True
    async with TestClient(TestServer(handlers.app())) as client:
        yield client, reg
    handlers.stop_watches()
    await cache.stop()
    await backend.close()


async def _lines(resp: Any, n: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(n):
        line = await asyncio.wait_for(resp.content.readline(), 5)
        out.append(json.loads(line))
    return out


async def test_idle_watch_gets_bookmarks_and_initial_events_end_marker(
    api: tuple[TestClient[Any, Any], Registry],
) -> None:
    client, reg = api
    await reg.create(CONFIGMAPS, "default", {"metadata": {"name": "a"}})
    params = {"watch": "1", "allowWatchBookmarks": "true", "sendInitialEvents": "true"}
    async with client.get(CM, params=params) as resp:
        added, end, idle = await _lines(resp, 3)
    assert (added["type"], added["object"]["metadata"]["name"]) == ("ADDED", "a")
    assert end["type"] == "BOOKMARK"
    assert end["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert idle["type"] == "BOOKMARK"
    assert int(idle["object"]["metadata"]["resourceVersion"]) >= int(added["object"]["metadata"]["resourceVersion"])


async def test_watch_from_a_version_older_than_the_window_is_an_error_event_410(
    api: tuple[TestClient[Any, Any], Registry],
) -> None:
    client, reg = api
    first = await reg.create(CONFIGMAPS, "default", {"metadata": {"name": "old"}})
    for i in range(6):
        await reg.create(CONFIGMAPS, "default", {"metadata": {"name": f"n{i}"}})
    params = {"watch": "1", "resourceVersion": first["metadata"]["resourceVersion"]}
    async with client.get(CM, params=params) as resp:
        assert resp.status == 200
        (event,) = await _lines(resp, 1)
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410
    assert event["object"]["reason"] == "Expired"
