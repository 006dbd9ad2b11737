"""`/metrics` in-process: request counts by verb/resource/code and the work queues of controllers in
the same process, in the Prometheus text format."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from controlplane.apiserver.cache import WatchCache
from controlplane.apiserver.handlers import ApiHandlers
from controlplane.apiserver.registry import Registry
from controlplane.apiserver.tables import TableMaker
from controlplane.client import metrics as queue_metrics
from controlplane.client.workqueue import RateLimitedQueue
from controlplane.storage.memory import MemoryBackend


@pytest.fixture
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    backend = MemoryBackend()
    await backend.start()
    cache = WatchCache(backend)
    await cache.start()
    handlers = ApiHandlers(Registry(backend, cache), server_address="127.0.0.1:0", tables=TableMaker())
    handlers.ready = True
    async with TestClient(TestServer(handlers.app())) as c:
        yield c
    await cache.stop()
    await backend.close()


async def test_metrics_count_requests_by_verb_resource_and_code(client: TestClient[Any, Any]) -> None:
    async with client.get("/api/v1/namespaces/default/configmaps") as r:
        assert r.status == 200
    for _ in range(2):
        async with client.get("/api/v1/namespaces/default/configmaps/missing") as r:
            assert r.status == 404
    async with client.get("/metrics") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await r.text()
    assert 'apiserver_request_total{verb="LIST",resource="configmaps",code="200"} 1' in text
    assert 'apiserver_request_total{verb="GET",resource="configmaps",code="404"} 2' in text
    assert "# TYPE apiserver_request_total counter" in text


async def test_metrics_include_work_queues_of_controllers_in_the_process(client: TestClient[Any, Any]) -> None:
    queue = queue_metrics.register(RateLimitedQueue("metrics-test-queue"))
    queue.add("ns/a")
    queue.add("ns/b")
    async with client.get("/metrics") as r:
        text = await r.text()
    assert 'workqueue_depth{name="metrics-test-queue"} 2' in text
    assert 'workqueue_adds_total{name="metrics-test-queue"} 2' in text
    queue.shutdown()


async def test_short_requests_are_timed_and_watches_are_not(client: TestClient[Any, Any]) -> None:
    async with client.get("/api/v1/namespaces/default/configmaps") as r:
        assert r.status == 200
    async with client.get("/api/v1/namespaces/default/configmaps", params={"watch": "1", "timeoutSeconds": "1"}) as r:
        await r.read()
    async with client.get("/metrics") as r:
        text = await r.text()
    assert 'apiserver_request_duration_seconds_count{verb="LIST",resource="configmaps"} 1' in text
    assert 'apiserver_request_total{verb="WATCH",resource="configmaps",code="200"} 1' in text
    assert 'apiserver_request_duration_seconds_count{verb="WATCH"' not in text
