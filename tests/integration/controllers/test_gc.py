from __future__ import annotations

import asyncio
from typing import Any

from controlplane.client import Conflict, NotFound
from controlplane.resources import CONFIGMAPS, DEPLOYMENTS, PODS, REPLICASETS
from tests.integration.controllers.conftest import Cluster, eventually
from tests.integration.controllers.test_workloads import deployment

NS = "default"


async def delete(c: Any, res: Any, name: str, policy: str) -> None:
    """DELETE, retried on Conflict: the server refuses a deletion that races a status write."""
    for _ in range(20):
        try:
            await c.delete(res, name, NS, propagation_policy=policy)
            return
        except Conflict:
            await asyncio.sleep(0.05)
    raise AssertionError(f"delete {name} kept conflicting")


async def exists(c: Any, res: Any, name: str) -> bool:
    try:
        await c.get(res, name, NS)
    except NotFound:
        return False
    return True


async def rolled_out(cluster: Cluster, name: str, n: int) -> None:
    async def ready() -> bool:
        st = (await cluster.client.get(DEPLOYMENTS, name, NS)).get("status") or {}
        return st.get("availableReplicas") == n

    await eventually(ready, what=f"{name} available")


async def pods_of(c: Any, app: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await c.list(PODS, NS, label_selector=f"app={app}"))["items"]
    return items


async def test_background_deletion_removes_replicasets_and_pods(cluster: Cluster) -> None:
    c = cluster.client
    await cluster.kubelet.add_node("n1")
    cluster.start_manager()
    await c.create(DEPLOYMENTS, deployment("bg", 2), NS)
    await rolled_out(cluster, "bg", 2)
    await delete(c, DEPLOYMENTS, "bg", "Background")

    async def all_gone() -> bool:
        return not (await c.list(REPLICASETS, NS))["items"] and not await pods_of(c, "bg")

    await eventually(all_gone, what="dependents collected")


async def test_foreground_deletion_keeps_owner_until_dependents_are_gone(cluster: Cluster) -> None:
    c = cluster.client
    await cluster.kubelet.add_node("n1")
    cluster.start_manager()
    await c.create(DEPLOYMENTS, deployment("fg", 2), NS)
    await rolled_out(cluster, "fg", 2)
    await delete(c, DEPLOYMENTS, "fg", "Foreground")
    d = await c.get(DEPLOYMENTS, "fg", NS)
    assert d["metadata"].get("deletionTimestamp")
    assert "foregroundDeletion" in d["metadata"].get("finalizers", [])

    async def owner_gone() -> bool:
        return not await exists(c, DEPLOYMENTS, "fg")

    await eventually(owner_gone, what="owner removed last")
    assert not (await c.list(REPLICASETS, NS))["items"]
    assert not await pods_of(c, "fg")


async def test_orphan_deletion_leaves_dependents_without_owner_references(cluster: Cluster) -> None:
    c = cluster.client
    await cluster.kubelet.add_node("n1")
    cluster.start_manager(controllers=["scheduler", "replicaset", "deployment", "garbagecollector"])
    await c.create(DEPLOYMENTS, deployment("or", 1), NS)
    await rolled_out(cluster, "or", 1)
    await delete(c, DEPLOYMENTS, "or", "Orphan")

    async def owner_gone() -> bool:
        return not await exists(c, DEPLOYMENTS, "or")

    await eventually(owner_gone, what="owner removed")
    await asyncio.sleep(0.5)
    (rs,) = (await c.list(REPLICASETS, NS))["items"]
    assert not rs["metadata"].get("ownerReferences")
    assert len(await pods_of(c, "or")) == 1


async def test_dependent_of_a_missing_owner_is_collected(cluster: Cluster) -> None:
    c = cluster.client
    cluster.start_manager(controllers=["garbagecollector"])
    owner = await c.create(CONFIGMAPS, {"metadata": {"name": "owner"}}, NS)
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    await c.create(CONFIGMAPS, {"metadata": {"name": "child", "ownerReferences": [ref]}}, NS)
    stale = {**ref, "uid": "00000000-dead-beef-0000-000000000000", "name": "gone"}
    await c.create(CONFIGMAPS, {"metadata": {"name": "orphaned", "ownerReferences": [stale]}}, NS)

    async def orphan_collected() -> bool:
        return not await exists(c, CONFIGMAPS, "orphaned")

    await eventually(orphan_collected, what="orphaned dependent deleted")
    assert await exists(c, CONFIGMAPS, "child"), "a dependent with a live owner stays"
    await c.delete(CONFIGMAPS, "owner", NS)

    async def child_collected() -> bool:
        return not await exists(c, CONFIGMAPS, "child")

    await eventually(child_collected, what="child deleted after its owner")
