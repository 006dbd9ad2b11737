"""`RuntimeClient` over gRPC: CRI `runtime.v1` on the unix socket given by `--cri-endpoint`
(`unix:///run/tinykube/cri.sock`); works against tinykube's `cri` and any CRI runtime (containerd).
This is the only module that sees protobuf; gRPC status codes become noded errors here."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import grpc
from grpc import aio

from cri.api import api_pb2 as pb
from cri.api import api_pb2_grpc as pb_grpc
from noded.errors import RuntimeError_, RuntimeNotFound, RuntimeUnavailable
from noded.interfaces import RuntimeClient
from noded.types import (
    Container,
    ContainerConfig,
    ContainerState,
    ContainerStats,
    ExecResult,
    RuntimeVersion,
    Sandbox,
    SandboxConfig,
    SandboxState,
)

API_VERSION = "v1"
_PROTOCOLS = {"TCP": 0, "UDP": 1, "SCTP": 2}


def grpc_target(endpoint: str) -> str:
    """`unix:///x.sock` and `/x.sock` → gRPC's `unix:/x.sock` form."""
    if endpoint.startswith("unix://"):
        return "unix:" + endpoint[len("unix://") :]
    if endpoint.startswith("/"):
        return "unix:" + endpoint
    return endpoint


def _sandbox_pb(config: SandboxConfig) -> Any:
    return pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(
            name=config.name, uid=config.uid, namespace=config.namespace, attempt=config.attempt
        ),
        hostname=config.hostname,
        log_directory=config.log_directory,
        port_mappings=[
            pb.PortMapping(
                protocol=_PROTOCOLS.get(p.protocol, 0), container_port=p.container_port, host_port=p.host_port
            )
            for p in config.port_mappings
        ],
        labels=config.labels,
        annotations=config.annotations,
        linux=pb.LinuxPodSandboxConfig(
            cgroup_parent=config.cgroup_parent,
            security_context=pb.LinuxSandboxSecurityContext(
                namespace_options=pb.NamespaceOption(network=2 if config.host_network else 0)
            ),
        ),
    )


def _container_pb(config: ContainerConfig) -> Any:
    r = config.resources
    return pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=config.name, attempt=config.attempt),
        image=pb.ImageSpec(image=config.image),
        command=list(config.command),
        args=list(config.args),
        working_dir=config.working_dir,
        envs=[pb.KeyValue(key=k, value=v) for k, v in config.env],
        mounts=[
            pb.Mount(container_path=m.container_path, host_path=m.host_path, readonly=m.readonly) for m in config.mounts
        ],
        labels=config.labels,
        annotations=config.annotations,
        log_path=config.log_path,
        stdin=config.stdin,
        tty=config.tty,
        linux=pb.LinuxContainerConfig(
            resources=pb.LinuxContainerResources(
                cpu_period=r.cpu_period,
                cpu_quota=r.cpu_quota,
                cpu_shares=r.cpu_shares,
                memory_limit_in_bytes=r.memory_limit_in_bytes,
            )
        ),
    )


def _sandbox(s: Any, ips: tuple[str, ...] = ()) -> Sandbox:
    return Sandbox(
        id=s.id,
        name=s.metadata.name,
        namespace=s.metadata.namespace,
        uid=s.metadata.uid,
        attempt=s.metadata.attempt,
        state=SandboxState(s.state),
        created_at=s.created_at,
        labels=dict(s.labels),
        annotations=dict(s.annotations),
        ips=ips,
    )


class GrpcRuntime:
    def __init__(self, endpoint: str, *, timeout: float = 30.0) -> None:
        self._channel = aio.insecure_channel(grpc_target(endpoint))
        self._rt = pb_grpc.RuntimeServiceStub(self._channel)
        self._img = pb_grpc.ImageServiceStub(self._channel)
        self._timeout = timeout

    async def close(self) -> None:
        await self._channel.close()

    async def _call(self, method: Any, request: Any, timeout: float | None = None) -> Any:
        try:
            return await method(request, timeout=timeout or self._timeout)
        except aio.AioRpcError as err:
            code = err.code()
            msg = f"{code.name}: {err.details()}"
            if code == grpc.StatusCode.NOT_FOUND:
                raise RuntimeNotFound(msg) from err
            if code == grpc.StatusCode.UNAVAILABLE:
                raise RuntimeUnavailable(msg) from err
            raise RuntimeError_(msg) from err

    async def version(self) -> RuntimeVersion:
        r = await self._call(self._rt.Version, pb.VersionRequest(version=API_VERSION))
        return RuntimeVersion(r.runtime_name, r.runtime_version, r.runtime_api_version)

    async def run_pod_sandbox(self, config: SandboxConfig) -> str:
        r = await self._call(self._rt.RunPodSandbox, pb.RunPodSandboxRequest(config=_sandbox_pb(config)), 120)
        return str(r.pod_sandbox_id)

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        with contextlib.suppress(RuntimeNotFound):  # already gone: stop is idempotent by the CRI spec
            await self._call(self._rt.StopPodSandbox, pb.StopPodSandboxRequest(pod_sandbox_id=sandbox_id), 120)

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        with contextlib.suppress(RuntimeNotFound):
            await self._call(self._rt.RemovePodSandbox, pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id), 120)

    async def pod_sandbox_status(self, sandbox_id: str) -> Sandbox:
        r = await self._call(self._rt.PodSandboxStatus, pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id))
        s = r.status
        ips = tuple(ip for ip in [s.network.ip, *(x.ip for x in s.network.additional_ips)] if ip)
        return _sandbox(s, ips)

    async def list_pod_sandbox(self, labels: dict[str, str] | None = None) -> list[Sandbox]:
        req = pb.ListPodSandboxRequest(filter=pb.PodSandboxFilter(label_selector=labels or {}))
        r = await self._call(self._rt.ListPodSandbox, req)
        return [_sandbox(s) for s in r.items]

    async def create_container(self, sandbox_id: str, config: ContainerConfig, sandbox: SandboxConfig) -> str:
        req = pb.CreateContainerRequest(
            pod_sandbox_id=sandbox_id, config=_container_pb(config), sandbox_config=_sandbox_pb(sandbox)
        )
        r = await self._call(self._rt.CreateContainer, req, 120)
        return str(r.container_id)

    async def start_container(self, container_id: str) -> None:
        await self._call(self._rt.StartContainer, pb.StartContainerRequest(container_id=container_id), 120)

    async def stop_container(self, container_id: str, timeout: int) -> None:
        with contextlib.suppress(RuntimeNotFound):
            await self._call(
                self._rt.StopContainer,
                pb.StopContainerRequest(container_id=container_id, timeout=timeout),
                timeout + self._timeout,
            )

    async def remove_container(self, container_id: str) -> None:
        with contextlib.suppress(RuntimeNotFound):
            await self._call(self._rt.RemoveContainer, pb.RemoveContainerRequest(container_id=container_id))

    async def list_containers(
        self, *, sandbox_id: str | None = None, labels: dict[str, str] | None = None
    ) -> list[Container]:
        req = pb.ListContainersRequest(
            filter=pb.ContainerFilter(pod_sandbox_id=sandbox_id or "", label_selector=labels or {})
        )
        r = await self._call(self._rt.ListContainers, req)
        return [
            Container(
                id=c.id,
                sandbox_id=c.pod_sandbox_id,
                name=c.metadata.name,
                attempt=c.metadata.attempt,
                image=c.image.image,
                state=ContainerState(c.state),
                created_at=c.created_at,
                image_ref=c.image_ref,
                labels=dict(c.labels),
                annotations=dict(c.annotations),
            )
            for c in r.containers
        ]

    async def container_status(self, container_id: str) -> Container:
        r = await self._call(self._rt.ContainerStatus, pb.ContainerStatusRequest(container_id=container_id))
        s = r.status
        return Container(
            id=s.id,
            sandbox_id="",  # ContainerStatus does not carry it; callers take it from ListContainers
            name=s.metadata.name,
            attempt=s.metadata.attempt,
            image=s.image.image,
            state=ContainerState(s.state),
            created_at=s.created_at,
            started_at=s.started_at,
            finished_at=s.finished_at,
            exit_code=s.exit_code,
            reason=s.reason,
            message=s.message,
            image_ref=s.image_ref,
            labels=dict(s.labels),
            annotations=dict(s.annotations),
            log_path=s.log_path,
        )

    async def exec_sync(self, container_id: str, cmd: Sequence[str], timeout: int) -> ExecResult:
        req = pb.ExecSyncRequest(container_id=container_id, cmd=list(cmd), timeout=timeout)
        r = await self._call(self._rt.ExecSync, req, timeout + self._timeout)
        return ExecResult(bytes(r.stdout), bytes(r.stderr), int(r.exit_code))

    async def exec_url(
        self, container_id: str, cmd: Sequence[str], *, tty: bool, stdin: bool, stdout: bool = True, stderr: bool = True
    ) -> str:
        req = pb.ExecRequest(
            container_id=container_id, cmd=list(cmd), tty=tty, stdin=stdin, stdout=stdout, stderr=stderr and not tty
        )
        r = await self._call(self._rt.Exec, req)
        return str(r.url)

    async def attach_url(
        self, container_id: str, *, tty: bool, stdin: bool, stdout: bool = True, stderr: bool = True
    ) -> str:
        req = pb.AttachRequest(
            container_id=container_id, tty=tty, stdin=stdin, stdout=stdout, stderr=stderr and not tty
        )
        r = await self._call(self._rt.Attach, req)
        return str(r.url)

    async def portforward_url(self, sandbox_id: str, ports: Sequence[int]) -> str:
        r = await self._call(self._rt.PortForward, pb.PortForwardRequest(pod_sandbox_id=sandbox_id, port=list(ports)))
        return str(r.url)

    async def list_container_stats(self) -> list[ContainerStats]:
        r = await self._call(self._rt.ListContainerStats, pb.ListContainerStatsRequest())
        return [
            ContainerStats(
                id=s.attributes.id,
                name=s.attributes.metadata.name,
                pod_uid=s.attributes.labels.get("io.kubernetes.pod.uid", ""),
                timestamp=s.cpu.timestamp,
                cpu_usage_core_nanoseconds=s.cpu.usage_core_nano_seconds.value,
                memory_working_set_bytes=s.memory.working_set_bytes.value,
            )
            for s in r.stats
        ]

    async def image_present(self, image: str) -> bool:
        r = await self._call(self._img.ImageStatus, pb.ImageStatusRequest(image=pb.ImageSpec(image=image)))
        return bool(r.image.id)

    async def pull_image(self, image: str) -> str:
        r = await self._call(self._img.PullImage, pb.PullImageRequest(image=pb.ImageSpec(image=image)), 600)
        return str(r.image_ref)


def _conforms(runtime: GrpcRuntime) -> RuntimeClient:
    return runtime
