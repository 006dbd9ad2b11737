"""A real `tinykube cri` daemon per test, in the test's own network namespace (the CNI bridge lives
there), with pods under the test's scratch cgroup, driven through a real gRPC client."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from cri.api import api_pb2, api_pb2_grpc
from cri.images.store import ImageStore
from cri.testing.daemon import CriHandle, start_cri


@pytest.fixture(scope="session")
def cri_image_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Built once: the busybox and pause images every test's daemon shares read-only."""
    root = str(tmp_path_factory.mktemp("cri-images") / "images")
    ImageStore(root).ensure_builtin()
    return root


@dataclass
class Cri:
    tmp: Path
    cgroup_name: str
    netns: str
    image_root: str
    conf_dir: Path
    flags: dict[str, Any] = field(default_factory=dict)
    handle: CriHandle | None = None
    rt: Any = None
    img: Any = None
    channel: Any = None

    def start(self) -> None:
        self.handle = start_cri(
            self.tmp,
            netns=self.netns,
            image_root=self.image_root,
            cni_conf_dir=str(self.conf_dir),
            cni_bin_dir=["/usr/lib/cni"],
            no_builtin_images=True,
            **self.flags,
        )
        self.channel = grpc.insecure_channel(f"unix:{self.handle.socket}")
        self.rt = api_pb2_grpc.RuntimeServiceStub(self.channel)
        self.img = api_pb2_grpc.ImageServiceStub(self.channel)

    def kill(self) -> None:
        assert self.handle is not None
        self.channel.close()
        self.handle.kill()

    def stop(self) -> None:
        if self.channel is not None:
            self.channel.close()
        if self.handle is not None:
            self.handle.stop()

    # ---- helpers --------------------------------------------------------------------------------

    def sandbox_config(self, name: str = "pod", *, pid: int = api_pb2.CONTAINER, **kw: Any) -> Any:
        linux = kw.pop("linux", None) or api_pb2.LinuxPodSandboxConfig(
            cgroup_parent=f"/{self.cgroup_name}/pod-{name}",
            security_context=api_pb2.LinuxSandboxSecurityContext(namespace_options=api_pb2.NamespaceOption(pid=pid)),
        )
        return api_pb2.PodSandboxConfig(
            metadata=api_pb2.PodSandboxMetadata(name=name, namespace="default", uid=f"uid-{name}"),
            hostname=kw.pop("hostname", name),
            log_directory=str(self.tmp / "logs" / name),
            linux=linux,
            **kw,
        )

    def run_pod(self, name: str = "pod", **kw: Any) -> tuple[str, Any]:
        config = self.sandbox_config(name, **kw)
        sid = self.rt.RunPodSandbox(api_pb2.RunPodSandboxRequest(config=config)).pod_sandbox_id
        return sid, config

    def create(self, sid: str, sb_config: Any, command: list[str], name: str = "c", **kw: Any) -> str:
        config = api_pb2.ContainerConfig(
            metadata=api_pb2.ContainerMetadata(name=name),
            image=api_pb2.ImageSpec(image=kw.pop("image", "busybox")),
            command=command,
            log_path=f"{name}/0.log",
            **kw,
        )
        req = api_pb2.CreateContainerRequest(pod_sandbox_id=sid, config=config, sandbox_config=sb_config)
        return str(self.rt.CreateContainer(req).container_id)

    def run(self, sid: str, sb_config: Any, command: list[str], name: str = "c", **kw: Any) -> str:
        cid = self.create(sid, sb_config, command, name, **kw)
        self.rt.StartContainer(api_pb2.StartContainerRequest(container_id=cid))
        return cid

    def status(self, cid: str) -> Any:
        return self.rt.ContainerStatus(api_pb2.ContainerStatusRequest(container_id=cid)).status

    def pod_status(self, sid: str) -> Any:
        return self.rt.PodSandboxStatus(api_pb2.PodSandboxStatusRequest(pod_sandbox_id=sid, verbose=True))

    def wait_exited(self, cid: str, timeout: float = 10) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            st = self.status(cid)
            if st.state == api_pb2.CONTAINER_EXITED:
                return st
            assert time.monotonic() < deadline, f"container {cid} still {st.state}"
            time.sleep(0.02)

    def exec(self, cid: str, *cmd: str, timeout: int = 10) -> Any:
        return self.rt.ExecSync(api_pb2.ExecSyncRequest(container_id=cid, cmd=list(cmd), timeout=timeout))

    def sh(self, cid: str, script: str) -> str:
        r = self.exec(cid, "sh", "-c", script)
        assert r.exit_code == 0, (r.stdout, r.stderr)
        return str(r.stdout.decode())

    def log_lines(self, pod: str, name: str = "c") -> list[str]:
        path = self.tmp / "logs" / pod / name / "0.log"
        return path.read_text().splitlines() if path.exists() else []

    def cgroup_dir(self, controller: str, *parts: str) -> str:
        return os.path.join("/sys/fs/cgroup", controller, self.cgroup_name, *parts)

    def remove_all(self) -> None:
        for sb in self.rt.ListPodSandbox(api_pb2.ListPodSandboxRequest()).items:
            self.rt.RemovePodSandbox(api_pb2.RemovePodSandboxRequest(pod_sandbox_id=sb.id))


def write_conflist(conf_dir: Path, ipam_dir: Path, *, plugin: str = "bridge") -> None:
    conf_dir.mkdir(parents=True, exist_ok=True)
    doc = {
        "cniVersion": "1.0.0",
        "name": "crit",
        "plugins": [
            {
                "type": plugin,
                "bridge": "crit0",
                "isGateway": True,
                "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.123.0.0/24"}]], "dataDir": str(ipam_dir)},
            }
        ],
    }
    (conf_dir / "10-crit.conflist").write_text(json.dumps(doc))


@pytest.fixture
def cri_factory(tmp_path: Path, cgroup: Any, netns: Any, cri_image_root: str) -> Iterator[Any]:
    made: list[Cri] = []

    def make(**flags: Any) -> Cri:
        conf = tmp_path / "net.d"
        write_conflist(conf, tmp_path / "ipam")
        c = Cri(tmp_path, cgroup.name, netns.path, cri_image_root, conf, flags)
        c.start()
        made.append(c)
        return c

    try:
        yield make
    finally:
        for c in made:
            try:
                if c.handle is not None and c.handle.proc.poll() is None:
                    c.remove_all()
            finally:
                c.stop()


@pytest.fixture
def cri(cri_factory: Any) -> Cri:
    return cri_factory()  # type: ignore[no-any-return]
