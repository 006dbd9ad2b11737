"""`kill -9` of the server in the middle of a concurrent write load loses no acknowledged write."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import aiohttp

from controlplane.testing.server import start_server
from tests.integration.apiserver.helpers import admin_session

CM = "/api/v1/namespaces/default/configmaps"


async def _writer(http: aiohttp.ClientSession, worker: int, acked: list[str], stop: asyncio.Event) -> None:
    i = 0
    while not stop.is_set():
        name = f"w{worker}-{i}"
        i += 1
        try:
            async with http.post(CM, json={"metadata": {"name": name}, "data": {"i": str(i)}}) as resp:
                if resp.status == 201:
                    acked.append(name)
        except (aiohttp.ClientError, OSError):
            return  # the server died: whatever was in flight was not acknowledged


async def test_kill_9_during_concurrent_creates_loses_no_acknowledged_write(tmp_path: Path) -> None:
    srv = start_server(tmp_path, controllers=False)
    acked: list[str] = []
    try:
        async with admin_session(srv) as http:
            stop = asyncio.Event()
            writers = [asyncio.create_task(_writer(http, w, acked, stop)) for w in range(20)]
            while len(acked) < 300:
                await asyncio.sleep(0.05)
            srv.kill()  # SIGKILL while the writers are still sending
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.gather(*writers, return_exceptions=True), 10)
        await asyncio.sleep(0.25)
        srv.start()
        async with admin_session(srv) as http, http.get(CM) as resp:
            stored = {item["metadata"]["name"] for item in (await resp.json())["items"]}
        await asyncio.sleep(0.25)
    finally:
        srv.stop()
    missing = [name for name in acked if name not in stored]
    assert len(acked) >= 300
    assert missing == []
