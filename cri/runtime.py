"""The runtime facade the gRPC servicer calls: orders sandbox and container operations, serializes
operations on the same object, and keeps Stop/Remove idempotent as the CRI asks."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cri.container import Containers, ExecResult, Observed
from cri.sandbox import Deps, Sandboxes
from cri.state import SandboxState, check_sandbox
from cri.store import ContainerRecord, SandboxRecord, sandbox_config


class KeyedLocks:
    """One lock per object id, so a slow StopContainer blocks only calls on that container."""

    def __init__(self) -> None:
        self._guard = threading.Lock()  # guards _locks
        self._locks: dict[str, threading.RLock] = {}

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(key, threading.RLock())
        with lock:
            yield


class Runtime:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.sandboxes = Sandboxes(deps)
        self.containers = Containers(deps, self.sandboxes)
        self.locks = KeyedLocks()

    # ---- sandboxes ------------------------------------------------------------------------------

    def run_sandbox(self, config: Any, runtime_handler: str = "") -> str:
        return self.sandboxes.run(config, runtime_handler)

    def stop_sandbox(self, sandbox_id: str) -> None:
        with self.locks.hold(sandbox_id):
            rec = self.deps.store.sandboxes.get(sandbox_id)
            if rec is None:
                return
            for c in self.containers.of_sandbox(sandbox_id):
                with self.locks.hold(c.id):
                    self.containers.stop(c.id, 0)
            self.sandboxes.stop(rec, sandbox_config(rec))

    def remove_sandbox(self, sandbox_id: str) -> None:
        with self.locks.hold(sandbox_id):
            rec = self.deps.store.sandboxes.get(sandbox_id)
            if rec is None:
                return
            self.stop_sandbox(sandbox_id)
            for c in self.containers.of_sandbox(sandbox_id):
                with self.locks.hold(c.id):
                    self.containers.remove(c.id)
            self.sandboxes.remove(rec)

    def sandbox(self, sandbox_id: str) -> tuple[SandboxRecord, SandboxState]:
        rec = self.sandboxes.get(sandbox_id)
        return rec, self.sandboxes.state(rec)

    def list_sandboxes(self) -> list[tuple[SandboxRecord, SandboxState]]:
        with self.deps.store.lock:
            recs = list(self.deps.store.sandboxes.values())
        return [(r, self.sandboxes.state(r)) for r in recs if r.pid]

    # ---- containers -----------------------------------------------------------------------------

    def create_container(self, sandbox_id: str, config: Any) -> str:
        with self.locks.hold(sandbox_id):
            return self.containers.create(sandbox_id, config)

    def start_container(self, container_id: str) -> None:
        with self.locks.hold(container_id):
            self.containers.start(container_id)

    def stop_container(self, container_id: str, timeout: float) -> None:
        with self.locks.hold(container_id):
            self.containers.stop(container_id, timeout)

    def remove_container(self, container_id: str) -> None:
        with self.locks.hold(container_id):
            self.containers.remove(container_id)

    def container(self, container_id: str) -> tuple[ContainerRecord, Observed]:
        rec = self.containers.get(container_id)
        return rec, self.containers.observe(rec)

    def list_containers(self) -> list[tuple[ContainerRecord, Observed]]:
        with self.deps.store.lock:
            recs = list(self.deps.store.containers.values())
        return [(r, self.containers.observe(r)) for r in recs]

    def exec_sync(self, container_id: str, cmd: list[str], timeout: float) -> ExecResult:
        return self.containers.exec_sync(container_id, cmd, timeout)

    def port_connect(self, sandbox_id: str, port: int) -> socket.socket:
        """A connected TCP socket to the pod's 127.0.0.1:<port> (PortForward)."""
        rec = self.sandboxes.get(sandbox_id)
        check_sandbox(sandbox_id, self.sandboxes.state(rec), "port-forward to")
        reply = self.deps.launcher.request("connect", {"netns": self.sandboxes.netns_path(rec), "port": port})
        [fd] = reply["fds"]
        return socket.socket(fileno=fd)
