from __future__ import annotations

import asyncio
import subprocess
from typing import Any

from controlplane.client import NotFound
from controlplane.client.metrics import render
from controlplane.controllers.replicaset import ReplicaSetController
from controlplane.resources import (
    DEPLOYMENTS,
    ENDPOINTS,
    ENDPOINTSLICES,
    EVENTS,
    LEASES,
    PODS,
    REPLICASETS,
    REPLICATIONCONTROLLERS,
    SERVICEACCOUNTS,
    SERVICES,
)
from tests.integration.controllers.conftest import Cluster, eventually

NS = "default"


def template(labels: dict[str, str], image: str = "busybox") -> dict[str, Any]:
    return {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "c", "image": image, "ports": [{"name": "http", "containerPort": 8080}]}]},
    }


def deployment(name: str, replicas: int, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": template({"app": name}),
            **spec,
        },
    }


async def active_pods(cluster: Cluster, **labels: str) -> list[dict[str, Any]]:
    sel = ",".join(f"{k}={v}" for k, v in labels.items())
    items = (await cluster.client.list(PODS, NS, label_selector=sel or None))["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def kubectl(cluster: Cluster, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", "--kubeconfig", cluster.server.kubeconfig, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


async def test_deployment_spreads_pods_and_publishes_endpoints(cluster: Cluster) -> None:
    for n in ("n1", "n2", "n3"):
        await cluster.kubelet.add_node(n)
    cluster.start_manager()
    c = cluster.client
    await c.create(DEPLOYMENTS, deployment("web", 3), NS)
    await c.create(
        SERVICES,
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "h", "port": 80, "targetPort": "http"}]},
        },
        NS,
    )

    async def available() -> bool:
        st = (await c.get(DEPLOYMENTS, "web", NS)).get("status") or {}
        return st.get("availableReplicas") == 3 and st.get("updatedReplicas") == 3

    await eventually(available, what="deployment available")
    pods = await active_pods(cluster, app="web")
    assert sorted(p["spec"]["nodeName"] for p in pods) == ["n1", "n2", "n3"], "one pod per node (spread)"
    assert all(p["metadata"]["labels"].get("pod-template-hash") for p in pods)

    async def slice_ready() -> list[dict[str, Any]]:
        slices = (await c.list(ENDPOINTSLICES, NS, label_selector="kubernetes.io/service-name=web"))["items"]
        eps = [e for s in slices for e in s.get("endpoints") or [] if e["conditions"]["ready"]]
        return eps if len(eps) == 3 else []

    eps = await eventually(slice_ready, what="3 ready endpoints")
    assert {e["nodeName"] for e in eps} == {"n1", "n2", "n3"}
    assert {e["targetRef"]["name"] for e in eps} == {p["metadata"]["name"] for p in pods}
    legacy = await c.get(ENDPOINTS, "web", NS)
    assert len(legacy["subsets"][0]["addresses"]) == 3
    assert legacy["subsets"][0]["ports"] == [{"name": "h", "protocol": "TCP", "port": 8080}]
    await c.get(SERVICEACCOUNTS, "default", NS)
    # kubectl's own view of the rollout agrees.
    out = kubectl(cluster, "rollout", "status", "deployment/web", "--timeout=20s")
    assert out.returncode == 0, out.stderr
    assert "successfully rolled out" in out.stdout


async def test_rolling_update_keeps_within_surge_and_unavailable_then_undo(cluster: Cluster) -> None:
    for n in ("n1", "n2"):
        await cluster.kubelet.add_node(n)
    cluster.start_manager()
    c = cluster.client
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    await c.create(DEPLOYMENTS, deployment("app", 4, strategy=strategy, minReadySeconds=1), NS)

    async def rolled(image: str) -> bool:
        d = await c.get(DEPLOYMENTS, "app", NS)
        st = d.get("status") or {}
        return (
            st.get("observedGeneration", 0) >= d["metadata"]["generation"]
            and st.get("updatedReplicas") == 4
            and st.get("replicas") == 4
            and st.get("availableReplicas") == 4
            and d["spec"]["template"]["spec"]["containers"][0]["image"] == image
        )

    await eventually(lambda: rolled("busybox"), what="first rollout")
    await c.patch(
        DEPLOYMENTS,
        "app",
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "c", "image": "busybox:v2", "ports": [{"name": "http", "containerPort": 8080}]}
                        ]
                    }
                }
            }
        },
        NS,
    )
    max_total, min_ready = 0, 10**6
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while loop.time() < deadline:
        pods = await active_pods(cluster, app="app")
        max_total = max(max_total, len(pods))
        ready = [
            p
            for p in pods
            if any(
                cd.get("type") == "Ready" and cd.get("status") == "True"
                for cd in (p.get("status") or {}).get("conditions") or []
            )
        ]
        min_ready = min(min_ready, len(ready))
        if await rolled("busybox:v2"):
            break
        await asyncio.sleep(0.05)
    assert await rolled("busybox:v2")
    assert max_total <= 5, "maxSurge=1 over 4 replicas"
    assert min_ready >= 4, "maxUnavailable=0"
    rss = {
        r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: r
        for r in (await c.list(REPLICASETS, NS))["items"]
    }
    assert sorted(rss) == ["1", "2"]
    assert rss["1"]["spec"]["replicas"] == 0
    assert rss["2"]["spec"]["replicas"] == 4
    d = await c.get(DEPLOYMENTS, "app", NS)
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"

    history = kubectl(cluster, "rollout", "history", "deployment/app")
    assert history.returncode == 0, history.stderr
    revisions = [ln.split()[0] for ln in history.stdout.splitlines() if ln[:1].isdigit()]
    assert revisions == ["1", "2"], history.stdout
    undo = kubectl(cluster, "rollout", "undo", "deployment/app")
    assert undo.returncode == 0, undo.stderr
    await eventually(lambda: rolled("busybox"), what="rollback to revision 1")
    d = await c.get(DEPLOYMENTS, "app", NS)
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    revs = sorted(
        r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        for r in (await c.list(REPLICASETS, NS))["items"]
    )
    assert revs == ["2", "3"], "the rollback target RS was renumbered, not copied"
    status = kubectl(cluster, "rollout", "status", "deployment/app", "--timeout=20s")
    assert status.returncode == 0, status.stderr


async def test_recreate_removes_old_pods_before_creating_new_ones(cluster: Cluster) -> None:
    await cluster.kubelet.add_node("n1")
    cluster.start_manager()
    c = cluster.client
    await c.create(DEPLOYMENTS, deployment("rc8", 2, strategy={"type": "Recreate"}), NS)

    async def done(image: str) -> bool:
        st = (await c.get(DEPLOYMENTS, "rc8", NS)).get("status") or {}
        pods = await active_pods(cluster, app="rc8")
        return (
            st.get("updatedReplicas") == 2
            and st.get("availableReplicas") == 2
            and len(pods) == 2
            and all(p["spec"]["containers"][0]["image"] == image for p in pods)
        )

    await eventually(lambda: done("busybox"))
    await c.patch(
        DEPLOYMENTS, "rc8", {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox:v2"}]}}}}, NS
    )
    mixed = False
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60  # a bound, not a goal: the loop ends as soon as the rollout is done
    while loop.time() < deadline and not await done("busybox:v2"):
        images = {
            p["spec"]["containers"][0]["image"] for p in (await c.list(PODS, NS, label_selector="app=rc8"))["items"]
        }
        mixed = mixed or len(images) > 1
        await asyncio.sleep(0.05)
    assert await done("busybox:v2")
    assert not mixed, "Recreate never runs old and new pods side by side"


async def test_pause_and_resume_gate_the_rollout(cluster: Cluster) -> None:
    await cluster.kubelet.add_node("n1")
    cluster.start_manager()
    c = cluster.client
    await c.create(DEPLOYMENTS, deployment("pz", 1), NS)
    await eventually(lambda: _available(c, "pz", 1))
    assert kubectl(cluster, "rollout", "pause", "deployment/pz").returncode == 0
    await c.patch(DEPLOYMENTS, "pz", {"spec": {"template": {"metadata": {"labels": {"app": "pz", "v": "2"}}}}}, NS)

    async def paused_condition() -> bool:
        st = (await c.get(DEPLOYMENTS, "pz", NS)).get("status") or {}
        return any(cd.get("reason") == "DeploymentPaused" for cd in st.get("conditions") or [])

    await eventually(paused_condition, what="paused condition")
    assert len((await c.list(REPLICASETS, NS))["items"]) == 1, "no new ReplicaSet while paused"
    assert kubectl(cluster, "rollout", "resume", "deployment/pz").returncode == 0

    async def two_rs() -> bool:
        return len((await c.list(REPLICASETS, NS))["items"]) == 2

    await eventually(two_rs, what="rollout after resume")


async def _available(c: Any, name: str, n: int) -> bool:
    st = (await c.get(DEPLOYMENTS, name, NS)).get("status") or {}
    return bool(st.get("availableReplicas") == n and st.get("updatedReplicas") == n)


async def test_progress_deadline_marks_progressing_false(cluster: Cluster) -> None:
    await cluster.kubelet.add_node("n1")
    cluster.kubelet.ready = False  # pods run but never become Ready
    cluster.start_manager()
    c = cluster.client
    await c.create(DEPLOYMENTS, deployment("slow", 1, progressDeadlineSeconds=2), NS)

    async def exceeded() -> bool:
        st = (await c.get(DEPLOYMENTS, "slow", NS)).get("status") or {}
        return any(
            cd.get("type") == "Progressing"
            and cd.get("status") == "False"
            and cd.get("reason") == "ProgressDeadlineExceeded"
            for cd in st.get("conditions") or []
        )

    await eventually(exceeded, timeout=15, what="ProgressDeadlineExceeded")
    out = kubectl(cluster, "rollout", "status", "deployment/slow", "--timeout=10s")
    assert out.returncode != 0
    assert "exceeded its progress deadline" in out.stderr


async def test_replicaset_replaces_deleted_and_failed_pods_adopts_orphans_and_scales(cluster: Cluster) -> None:
    await cluster.kubelet.add_node("n1")
    c = cluster.client
    orphan = {"metadata": {"name": "orphan", "labels": {"app": "rs"}}, "spec": template({"app": "rs"})["spec"]}
    await c.create(PODS, orphan, NS)
    cluster.start_manager()
    rs = {
        "metadata": {"name": "rs"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "rs"}}, "template": template({"app": "rs"})},
    }
    await c.create(REPLICASETS, rs, NS)

    async def ready(n: int) -> bool:
        st = (await c.get(REPLICASETS, "rs", NS)).get("status") or {}
        return st.get("readyReplicas") == n and st.get("replicas") == n and st.get("availableReplicas") == n

    await eventually(lambda: ready(3), what="3 ready")
    pods = await active_pods(cluster, app="rs")
    assert len(pods) == 3
    adopted = await c.get(PODS, "orphan", NS)
    assert adopted["metadata"]["ownerReferences"][0]["name"] == "rs"
    assert adopted["metadata"]["ownerReferences"][0]["controller"] is True
    # A deleted pod and a failed pod are both replaced.
    victim = next(p for p in pods if p["metadata"]["name"] != "orphan")
    await c.delete(PODS, victim["metadata"]["name"], NS, grace_period_seconds=0)
    failed = await c.get(PODS, "orphan", NS)
    failed["status"]["phase"] = "Failed"
    await c.update(PODS, failed, subresource="status")

    async def replaced() -> bool:
        names = {
            p["metadata"]["name"] for p in await active_pods(cluster, app="rs") if p["status"].get("phase") == "Running"
        }
        return len(names) == 3 and victim["metadata"]["name"] not in names and "orphan" not in names

    await eventually(replaced, what="replacements")
    await c.patch(REPLICASETS, "rs", {"spec": {"replicas": 1}}, NS)
    await eventually(lambda: ready(1), what="scaled to 1")
    running = [p for p in await active_pods(cluster, app="rs") if p["status"].get("phase") == "Running"]
    assert len(running) == 1
    # Relabelling a pod out of the selector releases it (and a replacement appears).
    await c.patch(PODS, running[0]["metadata"]["name"], {"metadata": {"labels": {"app": "gone"}}}, NS)

    async def released() -> bool:
        p = await c.get(PODS, running[0]["metadata"]["name"], NS)
        return not p["metadata"].get("ownerReferences") and await ready(1)

    await eventually(released, what="release")


async def test_replication_controller_keeps_replicas(cluster: Cluster) -> None:
    await cluster.kubelet.add_node("n1")
    cluster.start_manager()
    c = cluster.client
    rc = {
        "metadata": {"name": "legacy"},
        "spec": {"replicas": 2, "selector": {"app": "legacy"}, "template": template({"app": "legacy"})},
    }
    await c.create(REPLICATIONCONTROLLERS, rc, NS)

    async def ready() -> bool:
        st = (await c.get(REPLICATIONCONTROLLERS, "legacy", NS)).get("status") or {}
        return st.get("readyReplicas") == 2 and st.get("observedGeneration") == 1

    await eventually(ready, what="rc ready")
    pods = await active_pods(cluster, app="legacy")
    assert all(p["metadata"]["ownerReferences"][0]["kind"] == "ReplicationController" for p in pods)


async def test_failing_reconcile_backs_off_then_converges(cluster: Cluster, monkeypatch: Any) -> None:
    await cluster.kubelet.add_node("n1")
    original = ReplicaSetController.reconcile
    failures = {"n": 0}

    async def flaky(self: ReplicaSetController, key: str) -> float | None:
        if failures["n"] < 4:
            failures["n"] += 1
            raise RuntimeError("injected crash mid-reconcile")
        return await original(self, key)

    monkeypatch.setattr(ReplicaSetController, "reconcile", flaky)
    cluster.start_manager()
    c = cluster.client
    await c.create(
        REPLICASETS,
        {
            "metadata": {"name": "flaky"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "flaky"}},
                "template": template({"app": "flaky"}),
            },
        },
        NS,
    )

    async def converged() -> bool:
        return ((await c.get(REPLICASETS, "flaky", NS)).get("status") or {}).get("readyReplicas") == 2

    await eventually(converged, what="convergence after crashes")
    assert failures["n"] == 4
    text = render()
    line = next(ln for ln in text.splitlines() if ln.startswith('workqueue_retries_total{name="replicaset"}'))
    assert float(line.split()[-1]) >= 4


async def test_unschedulable_pod_reports_condition_and_event_then_schedules_when_a_node_fits(cluster: Cluster) -> None:
    await cluster.kubelet.add_node("small", cpu="1")
    cluster.start_manager()
    c = cluster.client
    big = {
        "metadata": {"name": "big"},
        "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "2"}}}]},
    }
    await c.create(PODS, big, NS)

    async def unschedulable() -> dict[str, Any] | None:
        p = await c.get(PODS, "big", NS)
        return next(
            (
                cd
                for cd in (p.get("status") or {}).get("conditions") or []
                if cd.get("type") == "PodScheduled" and cd.get("reason") == "Unschedulable"
            ),
            None,
        )

    cond = await eventually(unschedulable, what="Unschedulable condition")
    assert cond["status"] == "False"
    assert "Insufficient cpu" in cond["message"]

    async def failed_event() -> bool:
        evs = (await c.list(EVENTS, NS))["items"]
        return any(e.get("reason") == "FailedScheduling" and e["involvedObject"]["name"] == "big" for e in evs)

    await eventually(failed_event, what="FailedScheduling event")
    await cluster.kubelet.add_node("large", cpu="4")

    async def bound() -> bool:
        node: str | None = (await c.get(PODS, "big", NS))["spec"].get("nodeName")
        return node == "large"

    await eventually(bound, what="bound to the new node")


async def test_leader_election_lets_only_one_manager_act_and_hands_over(cluster: Cluster) -> None:
    await cluster.kubelet.add_node("n1")
    c = cluster.client
    stop_a = cluster.start_manager(identity="a")
    await asyncio.sleep(0.5)
    cluster.start_manager(identity="b")

    async def holder() -> str | None:
        try:
            lease = await c.get(LEASES, "tinykube-controller-manager", "kube-system")
        except NotFound:
            return None
        holder_id: str | None = lease["spec"].get("holderIdentity")
        return holder_id

    assert await eventually(holder) == "a"
    await c.create(
        REPLICASETS,
        {
            "metadata": {"name": "one"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "one"}}, "template": template({"app": "one"})},
        },
        NS,
    )
    await eventually(lambda: _rs_ready(c, "one", 2))
    await asyncio.sleep(1.0)
    assert len(await active_pods(cluster, app="one")) == 2, "two active managers would over-create"
    stop_a.set()

    async def b_leads() -> bool:
        return await holder() == "b"

    await eventually(b_leads, what="hand-over to b")
    await c.patch(REPLICASETS, "one", {"spec": {"replicas": 3}}, NS)
    await eventually(lambda: _rs_ready(c, "one", 3), what="b acts")


async def _rs_ready(c: Any, name: str, n: int) -> bool:
    st = (await c.get(REPLICASETS, name, NS)).get("status") or {}
    return bool(st.get("readyReplicas") == n)


async def test_without_leader_election_the_manager_acts_and_takes_no_lease(cluster: Cluster) -> None:
    await cluster.kubelet.add_node("n1")
    cluster.start_manager(leader_elect=False, controllers=["scheduler", "replicaset"])
    c = cluster.client
    await c.create(
        REPLICASETS,
        {
            "metadata": {"name": "solo"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "solo"}},
                "template": template({"app": "solo"}),
            },
        },
        NS,
    )
    await eventually(lambda: _rs_ready(c, "solo", 1), what="solo ready")
    try:
        await c.get(LEASES, "tinykube-controller-manager", "kube-system")
        raise AssertionError("no Lease expected without leader election")
    except NotFound:
        pass


async def test_steady_state_writes_nothing(cluster: Cluster) -> None:
    """Level-triggered loops must converge: once settled, no controller keeps rewriting objects."""
    for n in ("n1", "n2"):
        await cluster.kubelet.add_node(n)
    cluster.start_manager()
    c = cluster.client
    await c.create(DEPLOYMENTS, deployment("calm", 2), NS)
    await c.create(
        SERVICES,
        {
            "metadata": {"name": "calm"},
            "spec": {"selector": {"app": "calm"}, "ports": [{"name": "h", "port": 80, "targetPort": "http"}]},
        },
        NS,
    )
    await eventually(lambda: _available(c, "calm", 2))

    async def versions() -> dict[str, str]:
        out = {}
        for res in (DEPLOYMENTS, REPLICASETS, PODS, SERVICES, ENDPOINTS, ENDPOINTSLICES):
            for o in (await c.list(res, NS))["items"]:
                out[f"{res.plural}/{o['metadata']['name']}"] = o["metadata"]["resourceVersion"]
        return out

    await asyncio.sleep(1.5)
    before = await versions()
    await asyncio.sleep(2.0)
    after = await versions()
    changed = {k for k in after if before.get(k) != after[k]}
    assert not changed, f"objects still being rewritten: {changed}"
