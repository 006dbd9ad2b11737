"""The Node object and its heartbeats: registration (capacity/allocatable from the machine and its
cgroup limits, addresses, nodeInfo, podCIDR, kubelet port), the Lease in `kube-node-lease` renewed
every `lease_period` seconds, and status conditions (Ready goes False when the runtime stops answering).

Machine facts are read once by `machine_facts()`; `node_status()` and `lease_object()` are pure."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psutil

from controlplane.client.errors import AlreadyExists, ApiError, NotFound
from controlplane.resources import LEASES, NAMESPACES, NODES
from noded.errors import NodedError
from noded.interfaces import ApiClient, RuntimeClient

log = logging.getLogger(__name__)

LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION = 40
KUBELET_VERSION = "v1.32.0-tinykube"
MAX_PODS = 110
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}
_UNLIMITED = 1 << 62


@dataclass(frozen=True)
class MachineFacts:
    cpus: int
    memory_bytes: int
    storage_bytes: int
    hostname: str
    machine_id: str
    boot_id: str
    kernel: str
    os_image: str
    arch: str


def _read(path: str, default: str = "") -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def _cgroup_memory_limit() -> int:
    """The memory limit of noded's own cgroup (v1 or v2), or 'unlimited'."""
    for path in ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory.max"):
        value = _read(path)
        if value.isdigit():
            return int(value)
    return _UNLIMITED


def _cgroup_cpu_limit() -> float:
    quota, period = _read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), _read("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
    if quota.lstrip("-").isdigit() and period.isdigit() and int(quota) > 0:
        return int(quota) / int(period)
    v2 = _read("/sys/fs/cgroup/cpu.max").split()
    if len(v2) == 2 and v2[0].isdigit():
        return int(v2[0]) / int(v2[1])
    return float("inf")


def machine_facts(root: str) -> MachineFacts:
    cpus = psutil.cpu_count() or 1
    cpus = max(1, min(cpus, int(_cgroup_cpu_limit()) if _cgroup_cpu_limit() != float("inf") else cpus))
    memory = min(psutil.virtual_memory().total, _cgroup_memory_limit())
    os.makedirs(root, exist_ok=True)
    os_image = "Linux"
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            os_image = line.split("=", 1)[1].strip('"')
    return MachineFacts(
        cpus=cpus,
        memory_bytes=memory,
        storage_bytes=psutil.disk_usage(root).total,
        hostname=socket.gethostname(),
        machine_id=_read("/etc/machine-id", "unknown"),
        boot_id=_read("/proc/sys/kernel/random/boot_id", "unknown"),
        kernel=platform.release(),
        os_image=os_image,
        arch=_ARCH.get(platform.machine(), platform.machine()),
    )


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    """MicroTime, the format of Lease `renewTime`."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class NodeConfig:
    name: str
    pod_cidr: str
    node_ip: str
    port: int
    lease_period: float = 10.0
    status_period: float = 30.0


def capacity(facts: MachineFacts) -> dict[str, str]:
    return {
        "cpu": str(facts.cpus),
        "memory": f"{facts.memory_bytes // 1024}Ki",
        "ephemeral-storage": f"{facts.storage_bytes // 1024}Ki",
        "pods": str(MAX_PODS),
    }


def node_object(config: NodeConfig, facts: MachineFacts) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": config.name,
            "labels": {
                "kubernetes.io/hostname": config.name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": facts.arch,
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": facts.arch,
            },
        },
        "spec": {"podCIDR": config.pod_cidr, "podCIDRs": [config.pod_cidr]} if config.pod_cidr else {},
    }


def node_status(
    config: NodeConfig,
    facts: MachineFacts,
    *,
    runtime_version: str,
    runtime_ok: bool,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole Node status: conditions keep their lastTransitionTime while unchanged."""
    now = now_rfc3339()
    old = {c["type"]: c for c in (previous or {}).get("conditions") or []}

    def cond(kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
        prev = old.get(kind)
        since = prev["lastTransitionTime"] if prev and prev.get("status") == status else now
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now,
            "lastTransitionTime": since,
        }

    ready = (
        cond("Ready", "True", "KubeletReady", "noded is posting ready status")
        if runtime_ok
        else cond("Ready", "False", "KubeletNotReady", "container runtime is down")
    )
    cap = capacity(facts)
    addresses = [{"type": "Hostname", "address": config.name}]
    if config.node_ip:
        addresses.insert(0, {"type": "InternalIP", "address": config.node_ip})
    return {
        "capacity": cap,
        "allocatable": dict(cap),
        "conditions": [
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "noded has sufficient memory available"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "noded has no disk pressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "noded has sufficient PID available"),
            ready,
        ],
        "addresses": addresses,
        "daemonEndpoints": {"kubeletEndpoint": {"Port": config.port}},
        "nodeInfo": {
            "machineID": facts.machine_id,
            "systemUUID": facts.machine_id,
            "bootID": facts.boot_id,
            "kernelVersion": facts.kernel,
            "osImage": facts.os_image,
            "containerRuntimeVersion": runtime_version,
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": KUBELET_VERSION,
            "operatingSystem": "linux",
            "architecture": facts.arch,
        },
    }


def lease_object(node_name: str, node_uid: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": node_name, "namespace": LEASE_NAMESPACE}
    if node_uid:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": node_uid}]
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": meta,
        "spec": {"holderIdentity": node_name, "leaseDurationSeconds": LEASE_DURATION, "renewTime": now_micro()},
    }


class NodeAgent:
    """Keeps the Node and its Lease fresh."""

    def __init__(self, api: ApiClient, runtime: RuntimeClient, config: NodeConfig, facts: MachineFacts) -> None:
        self.api = api
        self.runtime = runtime
        self.config = config
        self.facts = facts
        self.uid = ""
        self.status: dict[str, Any] = {}

    async def _runtime_version(self) -> tuple[str, bool]:
        try:
            v = await self.runtime.version()
        except NodedError as err:
            log.warning("container runtime not answering: %s", err)
            return "unknown://", False
        return f"{v.runtime_name}://{v.runtime_version}", True

    async def register(self) -> dict[str, Any]:
        """Create the Node (or adopt an existing one of that name) and post its full status."""
        obj = node_object(self.config, self.facts)
        try:
            node = await self.api.create(NODES, obj)
        except AlreadyExists:
            node = await self.api.patch(NODES, self.config.name, {"metadata": obj["metadata"], "spec": obj["spec"]})
        self.uid = node["metadata"].get("uid", "")
        await self.update_status(previous=node.get("status"))
        with contextlib.suppress(AlreadyExists, ApiError):
            await self.api.create(NAMESPACES, {"metadata": {"name": LEASE_NAMESPACE}})
        await self.renew_lease()
        return node

    async def update_status(self, previous: dict[str, Any] | None = None) -> None:
        version, ok = await self._runtime_version()
        self.status = node_status(
            self.config, self.facts, runtime_version=version, runtime_ok=ok, previous=previous or self.status
        )
        await self.api.patch(NODES, self.config.name, {"status": self.status}, subresource="status")

    async def renew_lease(self) -> None:
        lease = lease_object(self.config.name, self.uid)
        try:
            await self.api.patch(LEASES, self.config.name, {"spec": lease["spec"]}, LEASE_NAMESPACE)
        except NotFound:
            await self.api.create(LEASES, lease, LEASE_NAMESPACE)

    async def run(self, stop: asyncio.Event) -> None:
        """Heartbeat loop: the Lease every `lease_period`, the status every `status_period`."""
        last_status = asyncio.get_running_loop().time()
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.lease_period):
                    await stop.wait()
            if stop.is_set():
                return
            try:
                await self.renew_lease()
                now = asyncio.get_running_loop().time()
                if now - last_status >= self.config.status_period:
                    await self.update_status()
                    last_status = now
            except (ApiError, OSError) as err:
                log.warning("node heartbeat failed: %s", err)
