"""Stateful fakes of what the runtime touches, for unit tests without root: a launcher that
"forks" into a table, an in-memory cgroup tree, a CNI network with an attachment table, a process
table and an image source. Each can be told to fail at a named step."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cri.cgroups import CgroupManager, CgroupStats, Resources
from cri.errors import RuntimeFailure
from cri.interfaces import ImageSource, Network, Processes
from cri.launcher import Launcher


class FakeProcesses:
    def __init__(self) -> None:
        self.live: dict[int, int] = {}  # pid → start time
        self._pids = itertools.count(1000)

    def spawn(self) -> tuple[int, int]:
        pid = next(self._pids)
        self.live[pid] = pid * 10
        return pid, pid * 10

    def alive(self, pid: int, start_time: int) -> bool:
        return self.live.get(pid) == start_time

    def kill(self, pid: int, sig: int) -> None:
        self.live.pop(pid, None)

    def wait_exit(self, pid: int, timeout: float) -> bool:
        return pid not in self.live


class FakeLauncher:
    def __init__(self, processes: FakeProcesses) -> None:
        self.processes = processes
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.fail_ops: set[str] = set()

    def request(self, op: str, payload: dict[str, Any], fds: Sequence[int] = ()) -> dict[str, Any]:
        self.requests.append((op, payload))
        if op in self.fail_ops:
            raise RuntimeFailure(f"injected launcher failure for {op}")
        pid, start = self.processes.spawn()
        return {"ok": True, "pid": pid, "start_time": start}

    def close(self) -> None:
        pass


@dataclass
class FakeCgroups:
    version: int = 2
    tree: dict[str, Resources] = field(default_factory=dict)
    fail_create_call: int = -1  # fail the Nth create() (0-based); -1: never
    fail_resources: bool = False
    creates: int = 0

    def create(self, path: str) -> bool:
        self.creates += 1
        if self.creates - 1 == self.fail_create_call:
            raise OSError(28, "injected cgroup failure")
        if path in self.tree:
            return False
        self.tree[path] = Resources()
        return True

    def remove(self, path: str) -> None:
        for p in [p for p in self.tree if p == path or p.startswith(path + "/")]:
            del self.tree[p]

    def procs_files(self, path: str) -> list[str]:
        return [f"/fake/{path}/cgroup.procs"]

    def oom_events_file(self, path: str) -> str:
        return f"/fake/{path}/memory.events"

    def pids(self, path: str) -> list[int]:
        return []

    def set_resources(self, path: str, res: Resources) -> None:
        if self.fail_resources:
            raise OSError(22, "injected: invalid argument")
        self.tree[path] = res

    def stats(self, path: str) -> CgroupStats:
        return CgroupStats()


@dataclass
class FakeNetwork:
    attached: dict[str, str] = field(default_factory=dict)  # sandbox id → netns
    fail_attach: bool = False
    next_ip: int = 2

    def attach(
        self, sandbox_id: str, netns: str, *, args: Mapping[str, str], port_mappings: list[dict[str, Any]]
    ) -> list[str]:
        if self.fail_attach:
            raise RuntimeFailure("injected CNI ADD failure")
        self.attached[sandbox_id] = netns
        self.next_ip += 1
        return [f"10.88.0.{self.next_ip}"]

    def detach(
        self, sandbox_id: str, netns: str, *, args: Mapping[str, str], port_mappings: list[dict[str, Any]]
    ) -> None:
        self.attached.pop(sandbox_id, None)

    def status(self) -> tuple[bool, str]:
        return True, ""


@dataclass(frozen=True)
class FakeImageConfig:
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ("sh",)
    env: tuple[str, ...] = ("PATH=/bin",)
    working_dir: str = ""
    user: str = ""


@dataclass(frozen=True)
class FakeImage:
    id: str


@dataclass
class FakeImages:
    layer_dirs: list[str] = field(default_factory=lambda: ["/fake/layer0"])
    known: dict[str, FakeImageConfig] = field(default_factory=lambda: {"busybox": FakeImageConfig()})

    def layers(self, ref: str) -> list[str]:
        return list(self.layer_dirs)

    def config(self, ref: str) -> FakeImageConfig:
        return self.known[ref]

    def status(self, ref: str) -> FakeImage | None:
        return FakeImage(id=f"sha256:{ref}") if ref in self.known else None


_p: Processes = FakeProcesses()
_l: Launcher = FakeLauncher(FakeProcesses())
_c: CgroupManager = FakeCgroups()
_n: Network = FakeNetwork()
_i: ImageSource = FakeImages()
