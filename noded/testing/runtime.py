"""A stateful in-memory CRI runtime: sandboxes and containers with real state transitions, so the pod
worker's decisions (start, restart, back off, kill) are tested without root or processes.

Tests steer it: `on_start` decides whether a starting container exits at once (and with which code),
`exit_container` ends a running one, `exec_handler` answers ExecSync (exec probes), streaming URLs
(Exec/Attach/PortForward) point at `stream_base` with their options as query, and `calls` records
every mutating call in order.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from noded.errors import RuntimeNotFound
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

StartHook = Callable[[ContainerConfig], int | None]
ExecHandler = Callable[[Container, Sequence[str]], ExecResult]


def _now() -> int:
    return time.time_ns()


def _matches(labels: dict[str, str], selector: dict[str, str] | None) -> bool:
    return not selector or all(labels.get(k) == v for k, v in selector.items())


@dataclass
class FakeRuntime:
    on_start: StartHook = lambda _config: None
    exec_handler: ExecHandler = lambda _c, _cmd: ExecResult(b"", b"", 0)
    images: set[str] = field(default_factory=set)
    sandboxes: dict[str, Sandbox] = field(default_factory=dict)
    containers: dict[str, Container] = field(default_factory=dict)
    configs: dict[str, ContainerConfig] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    stop_timeouts: dict[str, int] = field(default_factory=dict)
    stream_base: str = "http://fake"  # where Exec/Attach/PortForward URLs point (a test's WebSocket server)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def _next(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):04d}"

    # -- test controls ---------------------------------------------------------------------------
    def exit_container(self, container_id: str, exit_code: int, reason: str = "") -> None:
        """The container's process ended on its own."""
        c = self.containers[container_id]
        reason = reason or ("Completed" if exit_code == 0 else "Error")
        self.containers[container_id] = replace(
            c, state=ContainerState.EXITED, exit_code=exit_code, finished_at=_now(), reason=reason
        )

    def running(self, name: str | None = None) -> list[Container]:
        return [
            c
            for c in self.containers.values()
            if c.state == ContainerState.RUNNING and (name is None or c.name == name)
        ]

    def kill_sandbox(self, sandbox_id: str) -> None:
        """The sandbox died (e.g. its pause process was killed): it becomes NOTREADY."""
        self.sandboxes[sandbox_id] = replace(self.sandboxes[sandbox_id], state=SandboxState.NOTREADY)

    # -- RuntimeClient ---------------------------------------------------------------------------
    async def version(self) -> RuntimeVersion:
        return RuntimeVersion("fake", "0.0.1", "v1")

    async def run_pod_sandbox(self, config: SandboxConfig) -> str:
        sid = self._next("sb")
        n = len(self.sandboxes) + 2
        self.sandboxes[sid] = Sandbox(
            id=sid,
            name=config.name,
            namespace=config.namespace,
            uid=config.uid,
            attempt=config.attempt,
            state=SandboxState.READY,
            created_at=_now(),
            labels=dict(config.labels),
            annotations=dict(config.annotations),
            ips=(f"10.88.{n // 250}.{n % 250}",),
        )
        self.calls.append(("run_pod_sandbox", sid))
        return sid

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        if sandbox_id not in self.sandboxes:
            return
        for c in list(self.containers.values()):
            if c.sandbox_id == sandbox_id and c.state == ContainerState.RUNNING:
                self.exit_container(c.id, 137, "Killed")
        self.kill_sandbox(sandbox_id)
        self.calls.append(("stop_pod_sandbox", sandbox_id))

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        await self.stop_pod_sandbox(sandbox_id)
        for c in list(self.containers.values()):
            if c.sandbox_id == sandbox_id:
                del self.containers[c.id]
        self.sandboxes.pop(sandbox_id, None)
        self.calls.append(("remove_pod_sandbox", sandbox_id))

    async def pod_sandbox_status(self, sandbox_id: str) -> Sandbox:
        try:
            return self.sandboxes[sandbox_id]
        except KeyError as err:
            raise RuntimeNotFound(sandbox_id) from err

    async def list_pod_sandbox(self, labels: dict[str, str] | None = None) -> list[Sandbox]:
        return [s for s in self.sandboxes.values() if _matches(s.labels, labels)]

    async def create_container(self, sandbox_id: str, config: ContainerConfig, sandbox: SandboxConfig) -> str:
        sb = self.sandboxes.get(sandbox_id)
        if sb is None or sb.state != SandboxState.READY:
            raise RuntimeNotFound(f"sandbox {sandbox_id} not ready")
        cid = self._next("c")
        self.containers[cid] = Container(
            id=cid,
            sandbox_id=sandbox_id,
            name=config.name,
            attempt=config.attempt,
            image=config.image,
            state=ContainerState.CREATED,
            created_at=_now(),
            labels=dict(config.labels),
            annotations=dict(config.annotations),
            log_path=config.log_path,
            image_ref=f"sha256:{config.image}",
        )
        self.configs[cid] = config
        self.calls.append(("create_container", cid))
        return cid

    async def start_container(self, container_id: str) -> None:
        c = self.containers[container_id]
        self.containers[container_id] = replace(c, state=ContainerState.RUNNING, started_at=_now())
        self.calls.append(("start_container", container_id))
        code = self.on_start(self.configs[container_id])
        if code is not None:
            self.exit_container(container_id, code)

    async def stop_container(self, container_id: str, timeout: int) -> None:
        c = self.containers.get(container_id)
        if c is None:
            return
        self.stop_timeouts[container_id] = timeout
        if c.state == ContainerState.RUNNING:
            self.exit_container(container_id, 137, "Killed")
        self.calls.append(("stop_container", container_id))

    async def remove_container(self, container_id: str) -> None:
        self.containers.pop(container_id, None)
        self.calls.append(("remove_container", container_id))

    async def list_containers(
        self, *, sandbox_id: str | None = None, labels: dict[str, str] | None = None
    ) -> list[Container]:
        return [
            c
            for c in self.containers.values()
            if (sandbox_id is None or c.sandbox_id == sandbox_id) and _matches(c.labels, labels)
        ]

    async def container_status(self, container_id: str) -> Container:
        try:
            return self.containers[container_id]
        except KeyError as err:
            raise RuntimeNotFound(container_id) from err

    async def exec_sync(self, container_id: str, cmd: Sequence[str], timeout: int) -> ExecResult:
        c = await self.container_status(container_id)
        self.calls.append(("exec_sync", container_id))
        return self.exec_handler(c, cmd)

    async def exec_url(
        self, container_id: str, cmd: Sequence[str], *, tty: bool, stdin: bool, stdout: bool = True, stderr: bool = True
    ) -> str:
        await self.container_status(container_id)
        self.calls.append(("exec", container_id))
        return f"{self.stream_base}/exec/{container_id}?tty={int(tty)}&stdin={int(stdin)}"

    async def attach_url(
        self, container_id: str, *, tty: bool, stdin: bool, stdout: bool = True, stderr: bool = True
    ) -> str:
        await self.container_status(container_id)
        self.calls.append(("attach", container_id))
        return f"{self.stream_base}/attach/{container_id}?tty={int(tty)}&stdin={int(stdin)}"

    async def portforward_url(self, sandbox_id: str, ports: Sequence[int]) -> str:
        if sandbox_id not in self.sandboxes:
            raise RuntimeNotFound(sandbox_id)
        self.calls.append(("portforward", sandbox_id))
        return f"{self.stream_base}/portforward/{sandbox_id}"

    async def list_container_stats(self) -> list[ContainerStats]:
        out = []
        for c in self.containers.values():
            if c.state == ContainerState.RUNNING:
                sb = self.sandboxes[c.sandbox_id]
                out.append(ContainerStats(c.id, c.name, sb.uid, _now(), 1_000_000, 4 << 20))
        return out

    async def image_present(self, image: str) -> bool:
        return image in self.images

    async def pull_image(self, image: str) -> str:
        self.images.add(image)
        self.calls.append(("pull_image", image))
        return f"sha256:{image}"


_: RuntimeClient = FakeRuntime()
