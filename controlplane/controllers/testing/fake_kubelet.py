"""A stand-in for noded in controller tests (and for anyone needing running pods without real
nodes): registers fake Nodes and renews their Leases, marks pods bound to them Running and Ready with
an IP, and finishes the deletion of terminating pods. Talks to a real API server only."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from datetime import UTC, datetime
from typing import Any

from controlplane.client import AlreadyExists, ApiError, Informer, KubeClient, NotFound
from controlplane.resources import LEASES, NAMESPACES, NODES, PODS


def stamp(ts: float | None = None) -> str:
    return datetime.fromtimestamp(ts or time.time(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro(ts: float | None = None) -> str:
    return datetime.fromtimestamp(ts or time.time(), UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def node_body(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "8Gi",
    labels: dict[str, str] | None = None,
    taints: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {"taints": taints or []},
        "status": {
            "capacity": {"cpu": cpu, "memory": memory, "pods": "110"},
            "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "ok",
                    "lastHeartbeatTime": stamp(),
                    "lastTransitionTime": stamp(),
                }
            ],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        },
    }


class FakeKubelet:
    def __init__(self, client: KubeClient, *, ready: bool = True) -> None:
        self.client = client
        self.ready = ready  # pods become Ready when True
        self.nodes: set[str] = set()
        self.silent: set[str] = set()
        self.not_ready_pods: set[str] = set()
        self._ips = itertools.count(2)
        self._informer = Informer(client, PODS, watch_timeout=30)
        self._tasks: list[asyncio.Task[None]] = []
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def add_node(self, name: str, **kw: Any) -> None:
        body = node_body(name, **kw)
        status = body.pop("status")
        created = await self.client.create(NODES, body)
        created["status"] = status
        await self.client.update(NODES, created, subresource="status")
        self.nodes.add(name)
        await self._renew(name)

    async def _renew(self, name: str) -> None:
        with contextlib.suppress(ApiError):
            await self.client.create(NAMESPACES, {"metadata": {"name": "kube-node-lease"}})
        spec = {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": micro()}
        try:
            lease = await self.client.get(LEASES, name, "kube-node-lease")
            lease["spec"] = spec
            await self.client.update(LEASES, lease)
        except NotFound:
            # The heartbeat task may create it at the same moment: either one is fine.
            with contextlib.suppress(AlreadyExists):
                await self.client.create(
                    LEASES,
                    {"metadata": {"name": name, "namespace": "kube-node-lease"}, "spec": spec},
                    "kube-node-lease",
                )

    async def start(self, heartbeat: float = 0.5) -> None:
        self._informer.add_handler(self._queue.put_nowait, lambda _o, n: self._queue.put_nowait(n), None)
        await self._informer.start()
        self._tasks.append(asyncio.create_task(self._work()))
        self._tasks.append(asyncio.create_task(self._beat(heartbeat)))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._informer.stop()

    async def _beat(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            for name in list(self.nodes - self.silent):
                with contextlib.suppress(ApiError):
                    await self._renew(name)

    async def _work(self) -> None:
        while True:
            pod = await self._queue.get()
            with contextlib.suppress(ApiError):
                await self._handle(pod)

    async def _handle(self, pod: dict[str, Any]) -> None:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        node = spec.get("nodeName")
        if node not in self.nodes or node in self.silent:
            return
        if meta.get("deletionTimestamp"):
            await self.client.delete(PODS, meta["name"], meta["namespace"], grace_period_seconds=0)
            return
        status = pod.get("status") or {}
        if status.get("phase") in ("Succeeded", "Failed"):
            return  # finished pods stay finished
        want_ready = self.ready and meta["name"] not in self.not_ready_pods
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
        if status.get("phase") == "Running" and ready and (ready.get("status") == "True") == want_ready:
            return
        now = stamp()
        pod["status"] = {
            **status,
            "phase": "Running",
            "podIP": status.get("podIP") or f"10.244.{next(self._ips) // 250}.{next(self._ips) % 250 + 1}",
            "hostIP": "127.0.0.1",
            "startTime": status.get("startTime") or now,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                {"type": "Ready", "status": "True" if want_ready else "False", "lastTransitionTime": now},
            ],
        }
        await self.client.update(PODS, pod, subresource="status")

    async def set_pod_ready(self, ns: str, name: str, ready: bool) -> None:
        if ready:
            self.not_ready_pods.discard(name)
        else:
            self.not_ready_pods.add(name)
        await self._handle(await self.client.get(PODS, name, ns))
