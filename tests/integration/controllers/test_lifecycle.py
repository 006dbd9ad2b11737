from __future__ import annotations

import asyncio
from typing import Any

from controlplane.client import NotFound
from controlplane.controllers.testing.fake_kubelet import stamp
from controlplane.resources import CONFIGMAPS, NAMESPACES, NODES, PODS, REPLICASETS, RESOURCEQUOTAS, SERVICEACCOUNTS
from tests.integration.controllers.conftest import Cluster, eventually
from tests.integration.controllers.test_workloads import template


def rs_body(name: str, replicas: int, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": template({"app": name}),
            **spec,
        },
    }


async def test_silent_node_goes_unknown_gets_tainted_and_its_pods_move(cluster: Cluster) -> None:
    c = cluster.client
    await cluster.kubelet.add_node("n1")
    cluster.start_manager()
    await c.create(REPLICASETS, rs_body("mover", 2), "default")

    async def on(node: str) -> bool:
        pods = (await c.list(PODS, "default", label_selector="app=mover"))["items"]
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        return len(live) == 2 and all(
            p["spec"].get("nodeName") == node and p["status"].get("phase") == "Running" for p in live
        )

    await eventually(lambda: on("n1"), what="pods on n1")
    await cluster.kubelet.add_node("n2")
    cluster.kubelet.silent.add("n1")  # n1 stops renewing its Lease

    async def unknown() -> dict[str, Any] | None:
        node = await c.get(NODES, "n1")
        ready = next(cd for cd in node["status"]["conditions"] if cd["type"] == "Ready")
        taints = {(t["key"], t["effect"]) for t in node["spec"].get("taints") or []}
        if ready["status"] == "Unknown" and ("node.kubernetes.io/unreachable", "NoExecute") in taints:
            return node
        return None

    node = await eventually(unknown, timeout=15, what="n1 Unknown + unreachable taint")
    assert ("node.kubernetes.io/unreachable", "NoSchedule") in {(t["key"], t["effect"]) for t in node["spec"]["taints"]}

    async def n1_pods_not_ready() -> bool:
        pods = [
            p
            for p in (await c.list(PODS, "default", label_selector="app=mover"))["items"]
            if p["spec"].get("nodeName") == "n1"
        ]
        return bool(pods) and all(
            cd["status"] == "False" for p in pods for cd in p["status"]["conditions"] if cd["type"] == "Ready"
        )

    await eventually(n1_pods_not_ready, what="pods on the lost node marked not ready")
    # Default toleration (1 s in tests) runs out: pods evicted, the ReplicaSet replaces them on n2.
    await eventually(lambda: on("n2"), timeout=20, what="replacements on n2")
    n2 = await c.get(NODES, "n2")
    assert not n2["spec"].get("taints"), "a heartbeating node stays untainted"
    # n1 comes back: heartbeats resume, the kubelet reports Ready, the taints go.
    cluster.kubelet.silent.discard("n1")
    await asyncio.sleep(1.0)  # Lease renewals resume first, then the kubelet reports its own Ready
    n1 = await c.get(NODES, "n1")
    for cd in n1["status"]["conditions"]:
        if cd["type"] == "Ready":
            cd.update(status="True", reason="KubeletReady", lastHeartbeatTime=stamp())
    await c.update(NODES, n1, subresource="status")

    async def untainted() -> bool:
        return not (await c.get(NODES, "n1"))["spec"].get("taints")

    await eventually(untainted, what="taints removed after recovery")


async def test_namespace_deletion_removes_contents_then_the_namespace(cluster: Cluster) -> None:
    c = cluster.client
    await cluster.kubelet.add_node("n1")
    cluster.start_manager()
    await c.create(NAMESPACES, {"metadata": {"name": "doomed"}})

    async def has_default_sa() -> bool:
        try:
            await c.get(SERVICEACCOUNTS, "default", "doomed")
        except NotFound:
            return False
        return True

    await eventually(has_default_sa, what="default ServiceAccount")
    await c.create(CONFIGMAPS, {"metadata": {"name": "cfg"}, "data": {"a": "b"}}, "doomed")
    await c.create(REPLICASETS, rs_body("work", 2), "doomed")

    async def running() -> bool:
        pods = (await c.list(PODS, "doomed"))["items"]
        return len(pods) == 2 and all(p["status"].get("phase") == "Running" for p in pods)

    await eventually(running, what="pods running in the namespace")
    await c.delete(NAMESPACES, "doomed")

    async def gone() -> bool:
        try:
            await c.get(NAMESPACES, "doomed")
        except NotFound:
            return True
        return False

    await eventually(gone, timeout=30, what="namespace removed")
    assert (await c.list(PODS, "doomed"))["items"] == []
    assert (await c.list(CONFIGMAPS, "doomed"))["items"] == []


async def test_resource_quota_status_reports_usage(cluster: Cluster) -> None:
    c = cluster.client
    await cluster.kubelet.add_node("n1")
    cluster.start_manager(controllers=["scheduler", "replicaset", "resourcequota"])
    await c.create(
        RESOURCEQUOTAS, {"metadata": {"name": "q"}, "spec": {"hard": {"pods": "5", "configmaps": "3"}}}, "default"
    )
    await c.create(REPLICASETS, rs_body("quota", 2), "default")
    await c.create(CONFIGMAPS, {"metadata": {"name": "one"}}, "default")

    async def reported() -> bool:
        st = (await c.get(RESOURCEQUOTAS, "q", "default")).get("status") or {}
        return st.get("used") == {"pods": "2", "configmaps": "1"} and st.get("hard") == {"pods": "5", "configmaps": "3"}

    await eventually(reported, what="quota status")
