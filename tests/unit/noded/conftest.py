from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from controlplane.resources import PODS
from noded.backoff import Backoff
from noded.events import EventRecorder
from noded.manager import PodManager
from noded.testing import FakeApi, FakeRuntime, RecordingMounter
from noded.volumes import PodVolumes
from noded.worker import NodeContext

NODE = "node-a"


def make_pod(name: str = "web", **spec: Any) -> dict[str, Any]:
    containers = spec.pop("containers", [{"name": "main", "image": "busybox"}])
    return {
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": NODE, "containers": containers, **spec},
    }


@dataclass
class Node:
    api: FakeApi
    runtime: FakeRuntime
    ctx: NodeContext
    manager: PodManager
    mounter: RecordingMounter

    async def create(self, pod: dict[str, Any]) -> dict[str, Any]:
        created = await self.api.create(PODS, pod, "default")
        self.manager.pod_changed(created)
        return created

    def pod(self, name: str) -> dict[str, Any]:
        obj = self.api.stored(PODS, name, "default")
        assert obj is not None
        return obj

    async def wait(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("condition not reached in time")
            await asyncio.sleep(0.01)

    async def relist_forever(self) -> None:
        while True:
            await self.manager.relist()
            await asyncio.sleep(0.02)


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    api, runtime, mounter = FakeApi(), FakeRuntime(), RecordingMounter()
    runtime.images.add("busybox")
    ctx = NodeContext(
        api=api,
        runtime=runtime,
        node_name=NODE,
        volumes=PodVolumes(api, str(tmp_path / "root"), mounter, cluster_ca=b"CA"),
        events=EventRecorder(api, NODE),
        log_root=str(tmp_path / "logs"),
        host_ip="192.0.2.10",
        backoff=Backoff(initial=0.2, cap=0.8),
        resync=0.05,
        probe_time_scale=0.01,
    )
    manager = PodManager(ctx)
    n = Node(api, runtime, ctx, manager, mounter)
    pleg = asyncio.create_task(n.relist_forever())
    yield n
    pleg.cancel()
    await manager.stop()
    await ctx.events.flush()
