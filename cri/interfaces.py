"""What the runtime needs from the kernel's process table, the pod network and the image store;
real implementations here or in their packages, stateful fakes in `cri/testing/fakes.py`."""

from __future__ import annotations

import contextlib
import os
import select
import time
from collections.abc import Mapping
from typing import Any, Protocol

from cri import linux


class Processes(Protocol):
    def alive(self, pid: int, start_time: int) -> bool:
        """True if `pid` still names the process that started at `start_time`."""
        ...

    def kill(self, pid: int, sig: int) -> None:
        """Send a signal; a process that is already gone is not an error."""
        ...

    def wait_exit(self, pid: int, timeout: float) -> bool:
        """Wait (not as its parent) until `pid` exits; False on timeout."""
        ...


class Network(Protocol):
    def attach(
        self, sandbox_id: str, netns: str, *, args: Mapping[str, str], port_mappings: list[dict[str, Any]]
    ) -> list[str]:
        """Add the sandbox to the pod network; returns its IPs (first = primary)."""
        ...

    def detach(
        self, sandbox_id: str, netns: str, *, args: Mapping[str, str], port_mappings: list[dict[str, Any]]
    ) -> None: ...

    def status(self) -> tuple[bool, str]:
        """(ready, message) for the runtime's NetworkReady condition."""
        ...


class ImageSource(Protocol):
    """The slice of `cri.images.store.ImageStore` the runtime uses to build a container."""

    def layers(self, ref: str) -> list[str]: ...

    def config(self, ref: str) -> Any: ...

    def status(self, ref: str) -> Any: ...


class HostProcesses:
    def alive(self, pid: int, start_time: int) -> bool:
        return pid > 0 and linux.process_start_time(pid) == start_time

    def kill(self, pid: int, sig: int) -> None:
        if pid > 0:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def wait_exit(self, pid: int, timeout: float) -> bool:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return True
        try:
            ready, _, _ = select.select([fd], [], [], max(timeout, 0))
            if ready:
                return True
        finally:
            os.close(fd)
        return linux.process_start_time(pid) is None


def wait_for(predicate: Any, timeout: float, interval: float = 0.005) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
