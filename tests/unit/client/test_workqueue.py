from __future__ import annotations

import asyncio

import pytest

from controlplane.client import RateLimitedQueue, ShutDown
from controlplane.client.metrics import render


async def test_duplicate_adds_are_deduplicated() -> None:
    q = RateLimitedQueue("t")
    for key in ("a", "b", "a", "a"):
        q.add(key)
    assert q.depth == 2
    assert [await q.get(), await q.get()] == ["a", "b"]


async def test_key_added_while_processing_is_requeued_once_done() -> None:
    q = RateLimitedQueue("t")
    q.add("a")
    key = await q.get()
    q.add("a")
    assert q.depth == 0, "a key being processed is never handed to a second worker"
    q.done(key)
    assert q.depth == 1
    assert await q.get() == "a"


async def test_rate_limited_backoff_grows_exponentially_until_forget() -> None:
    q = RateLimitedQueue("t", base_delay=0.01, max_delay=0.05)
    delays = []
    for _ in range(5):
        delays.append(q.backoff("k"))
        q.add_rate_limited("k")
    assert delays == [0.01, 0.02, 0.04, 0.05, 0.05]
    assert q.num_requeues("k") == 5
    assert q.stats.retries == 5
    q.forget("k")
    assert q.backoff("k") == 0.01


async def test_add_after_delivers_once_delay_passed() -> None:
    q = RateLimitedQueue("t")
    q.add_after("k", 0.05)
    assert q.depth == 0
    assert await asyncio.wait_for(q.get(), 1) == "k"


async def test_shutdown_wakes_waiting_getters() -> None:
    q = RateLimitedQueue("t")
    waiter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.shutdown()
    with pytest.raises(ShutDown):
        await asyncio.wait_for(waiter, 1)


async def test_metrics_render_depth_and_retries_in_prometheus_text() -> None:
    q = RateLimitedQueue('dep"loy')
    q.add("x")
    q.add_rate_limited("y")
    text = render([q])
    assert "# TYPE workqueue_depth gauge" in text
    assert 'workqueue_depth{name="dep\\"loy"} 1' in text
    assert 'workqueue_retries_total{name="dep\\"loy"} 1' in text
    q.shutdown()
