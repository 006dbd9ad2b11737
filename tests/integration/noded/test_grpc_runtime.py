"""noded's gRPC `RuntimeClient` against the real `tinykube cri` daemon (in the test's netns, pods under
the test's scratch cgroup), and a pod worker driving real containers through it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from controlplane.resources import PODS
from cri.images.store import ImageStore
from cri.testing.daemon import CriHandle, start_cri
from noded.backoff import Backoff
from noded.cri_client import GrpcRuntime
from noded.events import EventRecorder
from noded.logs import read_log
from noded.manager import PodManager
from noded.testing import FakeApi
from noded.types import ContainerConfig, ContainerState, SandboxConfig, SandboxState
from noded.volumes import PodVolumes, SystemMounter
from noded.worker import NodeContext


@pytest.fixture(scope="session")
def image_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = str(tmp_path_factory.mktemp("noded-images") / "images")
    ImageStore(root).ensure_builtin()
    return root


@pytest.fixture
def cri(tmp_path: Path, netns: Any, cgroup: Any, image_root: str) -> Iterator[tuple[CriHandle, str]]:
    conf = tmp_path / "net.d"
    conf.mkdir()
    ranges = [[{"subnet": "10.124.0.0/24"}]]
    ipam = {"type": "host-local", "ranges": ranges, "dataDir": str(tmp_path / "ipam")}
    plugin = {"type": "bridge", "bridge": "tkn0", "isGateway": True, "ipam": ipam}
    (conf / "10-t.conflist").write_text(json.dumps({"cniVersion": "1.0.0", "name": "t", "plugins": [plugin]}))
    handle = start_cri(
        tmp_path,
        netns=netns.path,
        image_root=image_root,
        cni_conf_dir=str(conf),
        cni_bin_dir=["/usr/lib/cni"],
        no_builtin_images=True,
        cgroup_root=cgroup.name,
    )
    try:
        yield handle, cgroup.name
    finally:
        handle.stop()


@pytest.fixture
async def runtime(cri: tuple[CriHandle, str]) -> AsyncIterator[GrpcRuntime]:
    rt = GrpcRuntime(f"unix://{cri[0].socket}")
    try:
        yield rt
    finally:
        for s in await rt.list_pod_sandbox():
            await rt.remove_pod_sandbox(s.id)
        await rt.close()


async def test_grpc_runtime_runs_execs_stops_and_removes_a_container(runtime: GrpcRuntime, tmp_path: Path) -> None:
    version = await runtime.version()
    assert version.runtime_api_version.startswith("v1")
    sb_config = SandboxConfig(
        name="p", namespace="ns", uid="uid-1", attempt=0, hostname="p", log_directory=str(tmp_path / "logs"),
        labels={"io.kubernetes.pod.uid": "uid-1"},
    )  # fmt: skip
    sid = await runtime.run_pod_sandbox(sb_config)
    status = await runtime.pod_sandbox_status(sid)
    assert status.state == SandboxState.READY
    assert status.ips
    assert status.ips[0].startswith("10.124.0.")
    assert status.uid == "uid-1"

    config = ContainerConfig(
        name="main", attempt=0, image="busybox", command=("sh", "-c", "echo hi; exec sleep 30"),
        labels={"io.kubernetes.pod.uid": "uid-1", "io.kubernetes.container.name": "main"}, log_path="main/0.log",
    )  # fmt: skip
    assert await runtime.image_present("busybox")
    cid = await runtime.create_container(sid, config, sb_config)
    await runtime.start_container(cid)
    (listed,) = await runtime.list_containers(labels={"io.kubernetes.container.name": "main"})
    assert (listed.id, listed.sandbox_id, listed.state) == (cid, sid, ContainerState.RUNNING)
    result = await runtime.exec_sync(cid, ["sh", "-c", "echo out; echo err >&2; exit 5"], 10)
    assert (result.stdout, result.stderr, result.exit_code) == (b"out\n", b"err\n", 5)
    assert any(s.id == cid for s in await runtime.list_container_stats())

    deadline = time.monotonic() + 5
    while b"hi" not in read_log(str(tmp_path / "logs" / "main" / "0.log"), tail_lines=None, timestamps=False)[0]:
        assert time.monotonic() < deadline, "log line never written"
        await asyncio.sleep(0.05)

    await runtime.stop_container(cid, 1)
    stopped = await runtime.container_status(cid)
    assert stopped.state == ContainerState.EXITED
    assert stopped.finished_at >= stopped.started_at > 0
    await runtime.remove_container(cid)
    await runtime.stop_pod_sandbox(sid)
    await runtime.remove_pod_sandbox(sid)
    assert await runtime.list_pod_sandbox() == []
    await runtime.remove_pod_sandbox(sid)  # idempotent by the CRI spec


async def test_pod_worker_runs_a_real_pod_to_ready_and_tears_it_down(runtime: GrpcRuntime, tmp_path: Path) -> None:
    api = FakeApi()
    ctx = NodeContext(
        api=api, runtime=runtime, node_name="n1", volumes=PodVolumes(api, str(tmp_path / "root"), SystemMounter()),
        events=EventRecorder(api, "n1"), log_root=str(tmp_path / "logs"), backoff=Backoff(0.5, 2), resync=0.2,
    )  # fmt: skip
    manager = PodManager(ctx)
    probe = {"exec": {"command": ["test", "-f", "/tmp/ready"]}, "periodSeconds": 1}
    pod = await api.create(
        PODS,
        {
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "nodeName": "n1",
                "terminationGracePeriodSeconds": 2,
                "initContainers": [{"name": "init", "image": "busybox", "command": ["touch", "/tmp/x"]}],
                "containers": [
                    {
                        "name": "main",
                        "image": "busybox",
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["sh", "-c", "touch /tmp/ready; exec sleep 60"],
                        "readinessProbe": probe,
                    }
                ],
            },
        },
    )
    manager.pod_changed(pod)

    def ready() -> bool:
        stored = api.stored(PODS, "web", "default") or {}
        conditions = (stored.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    deadline = time.monotonic() + 30
    while not ready():
        assert time.monotonic() < deadline, api.stored(PODS, "web", "default")
        await asyncio.sleep(0.1)
    stored = api.stored(PODS, "web", "default")
    assert stored is not None
    assert stored["status"]["podIP"].startswith("10.124.0.")

    deleting = await api.delete(PODS, "web", "default")
    assert deleting is not None
    manager.pod_changed(deleting)
    while api.stored(PODS, "web", "default") is not None:
        assert time.monotonic() < deadline + 30
        await asyncio.sleep(0.1)
    assert await runtime.list_pod_sandbox() == []
    assert await runtime.list_containers() == []
    await manager.stop()
