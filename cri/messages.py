"""CRI messages built from our records (the only place that knows both shapes)."""

from __future__ import annotations

import os
import time
from typing import Any

from cri.api import api_pb2
from cri.cgroups import CgroupStats
from cri.container import Observed
from cri.state import ContainerState, SandboxState
from cri.store import ContainerRecord, SandboxRecord, container_config, sandbox_config


def sandbox_metadata(rec: SandboxRecord) -> Any:
    return api_pb2.PodSandboxMetadata(name=rec.name, uid=rec.uid, namespace=rec.namespace, attempt=rec.attempt)


def sandbox_state(state: SandboxState) -> int:
    return int(api_pb2.SANDBOX_READY if state == SandboxState.READY else api_pb2.SANDBOX_NOTREADY)


CONTAINER_STATES = {
    ContainerState.CREATED: api_pb2.CONTAINER_CREATED,
    ContainerState.RUNNING: api_pb2.CONTAINER_RUNNING,
    ContainerState.EXITED: api_pb2.CONTAINER_EXITED,
    ContainerState.UNKNOWN: api_pb2.CONTAINER_UNKNOWN,
}
_MODES = {"POD": api_pb2.POD, "CONTAINER": api_pb2.CONTAINER, "NODE": api_pb2.NODE, "TARGET": api_pb2.TARGET}


def sandbox_status(rec: SandboxRecord, state: SandboxState) -> Any:
    config = sandbox_config(rec)
    ips = rec.ips
    return api_pb2.PodSandboxStatus(
        id=rec.id,
        metadata=sandbox_metadata(rec),
        state=sandbox_state(state),
        created_at=rec.created_at,
        network=api_pb2.PodSandboxNetworkStatus(
            ip=ips[0] if ips else "", additional_ips=[api_pb2.PodIP(ip=ip) for ip in ips[1:]]
        ),
        linux=api_pb2.LinuxPodSandboxStatus(
            namespaces=api_pb2.Namespace(
                options=api_pb2.NamespaceOption(
                    network=_MODES[rec.modes.get("net", "POD")],
                    pid=_MODES[rec.modes.get("pid", "POD")],
                    ipc=_MODES[rec.modes.get("ipc", "POD")],
                )
            )
        ),
        labels=dict(config.labels),
        annotations=dict(config.annotations),
        runtime_handler=rec.runtime_handler,
    )


def container_status(rec: ContainerRecord, seen: Observed) -> Any:
    config = container_config(rec)
    res = rec.resources
    return api_pb2.ContainerStatus(
        id=rec.id,
        metadata=api_pb2.ContainerMetadata(name=rec.name, attempt=rec.attempt),
        state=CONTAINER_STATES[seen.state],
        created_at=rec.created_at,
        started_at=seen.started_at,
        finished_at=seen.finished_at,
        exit_code=seen.exit_code,
        image=api_pb2.ImageSpec(image=rec.image),
        image_ref=rec.image_ref,
        image_id=rec.image_id,
        reason=seen.reason,
        message=seen.message,
        labels=dict(config.labels),
        annotations=dict(config.annotations),
        mounts=list(config.mounts),
        log_path=rec.log_path,
        resources=api_pb2.ContainerResources(
            linux=api_pb2.LinuxContainerResources(
                cpu_period=res.get("cpu_period", 0),
                cpu_quota=res.get("cpu_quota", 0),
                cpu_shares=res.get("cpu_shares", 0),
                memory_limit_in_bytes=res.get("memory_limit", 0),
                memory_swap_limit_in_bytes=res.get("memory_swap_limit", 0),
                cpuset_cpus=res.get("cpuset_cpus", ""),
                cpuset_mems=res.get("cpuset_mems", ""),
                unified=res.get("unified", {}),
            )
        ),
        user=api_pb2.ContainerUser(
            linux=api_pb2.LinuxContainerUser(
                uid=rec.launch["process"]["uid"],
                gid=rec.launch["process"]["gid"],
                supplemental_groups=rec.launch["process"]["groups"],
            )
        ),
    )


def container(rec: ContainerRecord, seen: Observed) -> Any:
    config = container_config(rec)
    return api_pb2.Container(
        id=rec.id,
        pod_sandbox_id=rec.sandbox_id,
        metadata=api_pb2.ContainerMetadata(name=rec.name, attempt=rec.attempt),
        image=api_pb2.ImageSpec(image=rec.image),
        image_ref=rec.image_ref,
        image_id=rec.image_id,
        state=CONTAINER_STATES[seen.state],
        created_at=rec.created_at,
        labels=dict(config.labels),
        annotations=dict(config.annotations),
    )


def uint(value: int) -> Any:
    return api_pb2.UInt64Value(value=max(value, 0))


def container_stats(rec: ContainerRecord, stats: CgroupStats) -> Any:
    config = container_config(rec)
    now = time.time_ns()
    available = max(stats.memory_limit - stats.memory_working_set, 0) if stats.memory_limit else 0
    return api_pb2.ContainerStats(
        attributes=api_pb2.ContainerAttributes(
            id=rec.id,
            metadata=api_pb2.ContainerMetadata(name=rec.name, attempt=rec.attempt),
            labels=dict(config.labels),
            annotations=dict(config.annotations),
        ),
        cpu=api_pb2.CpuUsage(timestamp=now, usage_core_nano_seconds=uint(stats.cpu_usage_ns)),
        memory=api_pb2.MemoryUsage(
            timestamp=now,
            working_set_bytes=uint(stats.memory_working_set),
            available_bytes=uint(available),
            usage_bytes=uint(stats.memory_usage),
            rss_bytes=uint(stats.memory_rss),
            page_faults=uint(stats.page_faults),
            major_page_faults=uint(stats.major_page_faults),
        ),
        writable_layer=api_pb2.FilesystemUsage(
            timestamp=now,
            fs_id=api_pb2.FilesystemIdentifier(mountpoint=os.path.dirname(rec.launch["upper_dir"])),
            used_bytes=uint(_du(rec.launch["upper_dir"])),
        ),
    )


def _du(path: str) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
    return total


def image_message(image: Any) -> Any:
    user = image.config.user.partition(":")[0]
    return api_pb2.Image(
        id=image.id,
        repo_tags=list(image.repo_tags),
        repo_digests=list(image.repo_digests),
        size=image.size,
        uid=api_pb2.Int64Value(value=int(user)) if user.isdigit() else None,
        username="" if user.isdigit() else user,
        spec=api_pb2.ImageSpec(image=image.id),
        pinned=image.pinned,
    )
