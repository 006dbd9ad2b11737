from __future__ import annotations

from typing import Any

from controlplane.resources import DAEMONSETS, JOBS, PODS
from tests.integration.controllers.conftest import Cluster, eventually
from tests.integration.controllers.test_workloads import template

NS = "default"


async def daemon_pods(c: Any, app: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await c.list(PODS, NS, label_selector=f"app={app}"))["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


async def test_daemonset_runs_one_pod_per_eligible_node_and_rolls_updates(cluster: Cluster) -> None:
    c = cluster.client
    await cluster.kubelet.add_node("n1")
    await cluster.kubelet.add_node("n2")
    await cluster.kubelet.add_node("gpu", taints=[{"key": "gpu", "effect": "NoSchedule"}])
    cluster.start_manager()
    ds = {
        "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": template({"app": "agent"})},
    }
    await c.create(DAEMONSETS, ds, NS)

    async def placed(nodes: set[str], image: str = "busybox") -> bool:
        pods = await daemon_pods(c, "agent")
        st = (await c.get(DAEMONSETS, "agent", NS)).get("status") or {}
        return (
            {p["spec"].get("nodeName") for p in pods} == nodes
            and len(pods) == len(nodes)
            and all(
                p["spec"]["containers"][0]["image"] == image and p["status"].get("phase") == "Running" for p in pods
            )
            and st.get("numberReady") == len(nodes)
            and st.get("updatedNumberScheduled") == len(nodes)
        )

    await eventually(lambda: placed({"n1", "n2"}), what="one pod on each untainted node")
    await cluster.kubelet.add_node("n3")
    await eventually(lambda: placed({"n1", "n2", "n3"}), what="a pod on the new node")
    await c.patch(
        DAEMONSETS,
        "agent",
        {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox:v2"}]}}}},
        NS,
    )
    await eventually(lambda: placed({"n1", "n2", "n3"}, "busybox:v2"), timeout=30, what="rolled to v2")
    st = (await c.get(DAEMONSETS, "agent", NS))["status"]
    assert st["desiredNumberScheduled"] == 3
    assert st["numberMisscheduled"] == 0


async def test_job_runs_to_completions_with_parallelism_and_fails_after_backoff_limit(cluster: Cluster) -> None:
    c = cluster.client
    await cluster.kubelet.add_node("n1")
    cluster.start_manager()
    tmpl = template({"app": "batch"})
    tmpl["spec"]["restartPolicy"] = "Never"
    await c.create(
        JOBS, {"metadata": {"name": "batch"}, "spec": {"completions": 3, "parallelism": 2, "template": tmpl}}, NS
    )
    finished: set[str] = set()

    async def finish_running(ph: str) -> None:
        for p in await daemon_pods(c, "batch"):
            if p["status"].get("phase") == "Running" and p["metadata"]["name"] not in finished:
                p["status"]["phase"] = ph
                await c.update(PODS, p, subresource="status")
                finished.add(p["metadata"]["name"])

    async def complete() -> bool:
        await finish_running("Succeeded")
        st = (await c.get(JOBS, "batch", NS)).get("status") or {}
        assert st.get("active", 0) <= 2, "parallelism 2"
        return any(cd["type"] == "Complete" and cd["status"] == "True" for cd in st.get("conditions") or [])

    await eventually(complete, what="job complete")
    st = (await c.get(JOBS, "batch", NS))["status"]
    assert st["succeeded"] == 3
    assert st["completionTime"]

    tmpl2 = template({"app": "doomed"})
    tmpl2["spec"]["restartPolicy"] = "Never"
    await c.create(JOBS, {"metadata": {"name": "doomed"}, "spec": {"backoffLimit": 1, "template": tmpl2}}, NS)

    async def failed() -> bool:
        for p in await daemon_pods(c, "doomed"):
            if p["status"].get("phase") == "Running" and p["metadata"]["name"] not in finished:
                p["status"]["phase"] = "Failed"
                await c.update(PODS, p, subresource="status")
                finished.add(p["metadata"]["name"])
        st = (await c.get(JOBS, "doomed", NS)).get("status") or {}
        return any(
            cd["type"] == "Failed" and cd["reason"] == "BackoffLimitExceeded" for cd in st.get("conditions") or []
        )

    await eventually(failed, what="job failed after backoffLimit")
    assert (await c.get(JOBS, "doomed", NS))["status"]["failed"] == 2
