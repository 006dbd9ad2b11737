"""The two things noded talks to, as narrow Protocols: the container runtime (CRI) and the API server.

The pod worker and node logic are written against these, so they run in unit tests against the
stateful fakes in `noded.testing` and in production against `noded.cri_client.GrpcRuntime` and
`controlplane.client.KubeClient` (which satisfies `ApiClient` structurally).
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

from controlplane.resources import Resource
from noded.types import (
    Container,
    ContainerConfig,
    ContainerStats,
    ExecResult,
    RuntimeVersion,
    Sandbox,
    SandboxConfig,
)


class RuntimeClient(Protocol):
    """The subset of CRI `runtime.v1` RuntimeService + ImageService a node agent needs."""

    async def version(self) -> RuntimeVersion: ...

    async def run_pod_sandbox(self, config: SandboxConfig) -> str: ...

    async def stop_pod_sandbox(self, sandbox_id: str) -> None: ...

    async def remove_pod_sandbox(self, sandbox_id: str) -> None: ...

    async def pod_sandbox_status(self, sandbox_id: str) -> Sandbox: ...

    async def list_pod_sandbox(self, labels: dict[str, str] | None = None) -> list[Sandbox]: ...

    async def create_container(self, sandbox_id: str, config: ContainerConfig, sandbox: SandboxConfig) -> str: ...

    async def start_container(self, container_id: str) -> None: ...

    async def stop_container(self, container_id: str, timeout: int) -> None: ...

    async def remove_container(self, container_id: str) -> None: ...

    async def list_containers(
        self, *, sandbox_id: str | None = None, labels: dict[str, str] | None = None
    ) -> list[Container]: ...

    async def container_status(self, container_id: str) -> Container: ...

    async def exec_sync(self, container_id: str, cmd: Sequence[str], timeout: int) -> ExecResult: ...

    async def exec_url(
        self, container_id: str, cmd: Sequence[str], *, tty: bool, stdin: bool, stdout: bool = True, stderr: bool = True
    ) -> str: ...

    async def attach_url(
        self, container_id: str, *, tty: bool, stdin: bool, stdout: bool = True, stderr: bool = True
    ) -> str: ...

    async def portforward_url(self, sandbox_id: str, ports: Sequence[int]) -> str: ...

    async def list_container_stats(self) -> list[ContainerStats]: ...

    async def image_present(self, image: str) -> bool: ...

    async def pull_image(self, image: str) -> str: ...


class ApiClient(Protocol):
    """The subset of `controlplane.client.KubeClient` (contract 3) that noded calls."""

    async def get(self, res: Resource, name: str, namespace: str | None = None) -> dict[str, Any]: ...

    async def list(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
    ) -> dict[str, Any]: ...

    async def create(
        self, res: Resource, obj: dict[str, Any], namespace: str | None = None, *, subresource: str | None = None
    ) -> dict[str, Any]: ...

    async def patch(
        self,
        res: Resource,
        name: str,
        patch: dict[str, Any] | builtins.list[Any],
        namespace: str | None = None,
        *,
        patch_type: Any = "merge",
        subresource: str | None = None,
    ) -> dict[str, Any]: ...

    async def delete(
        self,
        res: Resource,
        name: str,
        namespace: str | None = None,
        *,
        propagation_policy: str | None = None,
        grace_period_seconds: int | None = None,
        preconditions: dict[str, str] | None = None,
    ) -> dict[str, Any] | None: ...

    def watch(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        allow_bookmarks: bool = True,
        timeout_seconds: int | None = None,
    ) -> AsyncIterator[Any]: ...
