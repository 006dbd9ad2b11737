"""A real API server (subprocess, no built-in controllers) + our manager in-process with short
timings + a fake kubelet, per test."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from controlplane import manager
from controlplane.client import KubeClient
from controlplane.controllers.config import ControllerConfig
from controlplane.controllers.testing.fake_kubelet import FakeKubelet
from controlplane.testing.server import ServerHandle, start_server

FAST = ControllerConfig(
    node_monitor_grace=2.0,
    node_monitor_period=0.5,
    default_toleration_seconds=1,
    lease_duration=2.0,
    renew_deadline=1.5,
    retry_period=0.3,
    queue_max_delay=2.0,
)


@dataclasses.dataclass
class Cluster:
    server: ServerHandle
    client: KubeClient
    kubelet: FakeKubelet
    tasks: list[tuple[asyncio.Event, asyncio.Task[None]]] = dataclasses.field(default_factory=list)

    def start_manager(self, config: ControllerConfig = FAST, **kw: Any) -> asyncio.Event:
        stop = asyncio.Event()
        task = asyncio.create_task(manager.run(self.server.kubeconfig, stop=stop, config=config, **kw))
        self.tasks.append((stop, task))
        return stop

    async def stop_managers(self) -> None:
        for stop, task in self.tasks:
            stop.set()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(task, 10)
        self.tasks.clear()


async def eventually(check: Callable[[], Awaitable[Any]], *, timeout: float = 20.0, what: str = "") -> Any:
    """Polls `check` until it returns a truthy value (returned) or raises AssertionError at the end."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while loop.time() < deadline:
        try:
            last = await check()
            if last:
                return last
        except AssertionError as err:
            last = err
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or check}: last={last!r}")


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    server = start_server(tmp_path, controllers=False, timeout=60)
    client = KubeClient.from_kubeconfig(server.kubeconfig)
    kubelet = FakeKubelet(client)
    c = Cluster(server, client, kubelet)
    try:
        await kubelet.start(heartbeat=0.3)
        yield c
    finally:
        await c.stop_managers()
        await kubelet.stop()
        await client.close()
        server.stop()
