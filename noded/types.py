"""What noded tells the container runtime and what it hears back, in snake_case dataclasses.

These mirror the CRI `runtime.v1` messages noded uses (field names from the CRI api.proto), so the pod
worker, the status logic and the fake runtime never see protobuf; only `noded.cri_client` converts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

# Labels the runtime stores on every sandbox/container: after a restart noded rebuilds which pod and
# container each one belongs to from these alone (the kubelet uses the same keys).
LABEL_POD_NAME = "io.kubernetes.pod.name"
LABEL_POD_NAMESPACE = "io.kubernetes.pod.namespace"
LABEL_POD_UID = "io.kubernetes.pod.uid"
LABEL_CONTAINER_NAME = "io.kubernetes.container.name"
LABEL_MANAGED = "io.tinykube.managed"
# Annotation holding the container's kind ("init" or "app"), so init containers are told apart.
ANNOTATION_CONTAINER_KIND = "io.tinykube.container.kind"
ANNOTATION_TERMINATION_GRACE = "io.kubernetes.pod.terminationGracePeriod"


class SandboxState(enum.IntEnum):
    READY = 0
    NOTREADY = 1


class ContainerState(enum.IntEnum):
    CREATED = 0
    RUNNING = 1
    EXITED = 2
    UNKNOWN = 3


@dataclass(frozen=True)
class Mount:
    container_path: str
    host_path: str
    readonly: bool = False


@dataclass(frozen=True)
class LinuxResources:
    """CRI LinuxContainerResources: the cgroup knobs a container's requests/limits become."""

    cpu_period: int = 0
    cpu_quota: int = 0
    cpu_shares: int = 0
    memory_limit_in_bytes: int = 0


@dataclass(frozen=True)
class PortMapping:
    container_port: int
    host_port: int = 0
    protocol: str = "TCP"


@dataclass(frozen=True)
class SandboxConfig:
    name: str
    namespace: str
    uid: str
    attempt: int
    hostname: str
    log_directory: str
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    port_mappings: tuple[PortMapping, ...] = ()
    cgroup_parent: str = ""
    host_network: bool = False


@dataclass(frozen=True)
class ContainerConfig:
    name: str
    attempt: int
    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    working_dir: str = ""
    env: tuple[tuple[str, str], ...] = ()
    mounts: tuple[Mount, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    log_path: str = ""
    stdin: bool = False
    tty: bool = False
    resources: LinuxResources = field(default_factory=LinuxResources)


@dataclass(frozen=True)
class Sandbox:
    """One pod sandbox as ListPodSandbox/PodSandboxStatus report it."""

    id: str
    name: str
    namespace: str
    uid: str
    attempt: int
    state: SandboxState
    created_at: int  # ns since the epoch
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    ips: tuple[str, ...] = ()


@dataclass(frozen=True)
class Container:
    """One container as ContainerStatus reports it (ListContainers fills what it knows)."""

    id: str
    sandbox_id: str
    name: str
    attempt: int
    image: str
    state: ContainerState
    created_at: int = 0
    started_at: int = 0
    finished_at: int = 0
    exit_code: int = 0
    reason: str = ""
    message: str = ""
    image_ref: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    log_path: str = ""


@dataclass(frozen=True)
class ExecResult:
    stdout: bytes
    stderr: bytes
    exit_code: int


@dataclass(frozen=True)
class ContainerStats:
    id: str
    name: str
    pod_uid: str
    timestamp: int
    cpu_usage_core_nanoseconds: int
    memory_working_set_bytes: int


@dataclass(frozen=True)
class RuntimeVersion:
    runtime_name: str
    runtime_version: str
    runtime_api_version: str
