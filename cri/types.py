"""What the daemon asks the launcher to start (JSON-able dataclasses, one per kind of process).

The daemon turns CRI requests into these after validating them (`cri/validate.py`), so the launcher
children never see protobufs and never make decisions: they just carry the spec out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class MountSpec:
    source: str
    target: str
    readonly: bool = False
    propagation: str = "private"  # private | rslave | rshared


@dataclass
class ProcessSpec:
    """The process to exec and the identity/privileges it runs with."""

    args: list[str]
    env: list[str] = field(default_factory=list)
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    groups: list[int] = field(default_factory=list)
    caps: list[str] = field(default_factory=list)
    ambient_caps: list[str] = field(default_factory=list)
    no_new_privs: bool = False
    seccomp: bool = False


@dataclass
class SandboxLaunch:
    """A pause-holder: new net/ipc/uts namespaces (and pid, if the pod shares one) plus its cgroup."""

    id: str
    hostname: str = ""
    new_net: bool = True
    new_ipc: bool = True
    new_uts: bool = True
    new_pid: bool = True
    cgroup_procs: list[str] = field(default_factory=list)
    pause_binary: str = ""
    sysctls: dict[str, str] = field(default_factory=dict)


@dataclass
class ContainerLaunch:
    """A container's first process, supervised by a monitor that logs and records its exit.

    `namespaces` maps net/ipc/uts/pid to a /proc/<pid>/ns/<kind> path to join, `"new"` (pid only: a
    namespace of its own) or `""` (stay in the node's).
    """

    id: str
    state_dir: str
    log_path: str
    namespaces: dict[str, str]
    cgroup_procs: list[str]
    oom_file: str
    rootfs: str
    lower_dirs: list[str]
    upper_dir: str
    work_dir: str
    process: ProcessSpec
    mounts: list[MountSpec] = field(default_factory=list)
    masked_paths: list[str] = field(default_factory=list)
    readonly_paths: list[str] = field(default_factory=list)
    readonly_rootfs: bool = False
    privileged: bool = False
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False


@dataclass
class ExecLaunch:
    """A process started inside a running container's namespaces and cgroup (ExecSync)."""

    container_pid: int
    cgroup_procs: list[str]
    process: ProcessSpec
    tty: bool = False


def to_wire(obj: Any) -> dict[str, Any]:
    return asdict(obj)


def process_from_wire(d: dict[str, Any]) -> ProcessSpec:
    return ProcessSpec(**d)


def container_from_wire(d: dict[str, Any]) -> ContainerLaunch:
    d = dict(d)
    d["process"] = process_from_wire(d["process"])
    d["mounts"] = [MountSpec(**m) for m in d["mounts"]]
    return ContainerLaunch(**d)


def exec_from_wire(d: dict[str, Any]) -> ExecLaunch:
    d = dict(d)
    d["process"] = process_from_wire(d["process"])
    return ExecLaunch(**d)
