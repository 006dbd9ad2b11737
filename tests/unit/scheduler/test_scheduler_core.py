from __future__ import annotations

from typing import Any

from controlplane.scheduler import filters
from controlplane.scheduler.core import ClusterState, nodes_to_find
from controlplane.scheduler.scheduler import is_pending, with_condition
from controlplane.scheduler.scores import balanced_allocation, least_allocated
from controlplane.scheduler.types import node_info, pod_info


def node(
    name: str,
    cpu: str = "4",
    mem: str = "8Gi",
    *,
    labels: dict[str, str] | None = None,
    taints: list[dict[str, Any]] | None = None,
    unschedulable: bool = False,
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"taints": taints or [], "unschedulable": unschedulable},
        "status": {"allocatable": {"cpu": cpu, "memory": mem, "pods": "110"}},
    }


def pod(name: str, cpu: str | None = None, mem: str | None = None, **spec: Any) -> dict[str, Any]:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", mem)) if v}
    container: dict[str, Any] = {"name": "c", "image": "busybox", "resources": {"requests": requests}}
    if "ports" in spec:
        container["ports"] = spec.pop("ports")
    owner = spec.pop("owner", None)
    meta: dict[str, Any] = {"name": name, "namespace": "default"}
    if owner:
        meta["ownerReferences"] = [{"uid": owner, "controller": True, "kind": "ReplicaSet", "name": "rs"}]
    return {"metadata": meta, "spec": {"containers": [container], **spec}}


def state(*nodes: dict[str, Any]) -> ClusterState:
    s = ClusterState(seed=1)
    for n in nodes:
        s.set_node(node_info(n))
    return s


def test_pod_info_sums_requests_and_takes_max_of_init_containers() -> None:
    p = pod("a", "250m", "64Mi")
    p["spec"]["containers"].append({"name": "d", "resources": {"requests": {"cpu": "1"}}})
    p["spec"]["initContainers"] = [{"name": "i", "resources": {"requests": {"cpu": "2", "memory": "1Gi"}}}]
    info = pod_info(p)
    assert info.cpu == 2000
    assert info.mem == 1024**3


def test_resources_fit_counts_pods_already_on_the_node() -> None:
    s = state(node("n1", cpu="1"))
    s.add_pod("n1", pod_info(pod("big", "800m")))
    result = s.schedule(pod_info(pod("b", "300m")))
    assert result.node is None
    assert result.reasons == {filters.INSUFFICIENT_CPU: 1}
    assert result.message(1) == "0/1 nodes are available: 1 Insufficient cpu."
    s.remove_pod("default/big")
    assert s.schedule(pod_info(pod("b", "300m"))).node == "n1"


def test_node_selector_and_required_affinity_filter_nodes() -> None:
    s = state(node("ssd", labels={"disk": "ssd", "zone": "a"}), node("hdd", labels={"disk": "hdd", "zone": "b"}))
    assert s.schedule(pod_info(pod("a", nodeSelector={"disk": "ssd"}))).node == "ssd"
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}]
            }
        }
    }
    assert s.schedule(pod_info(pod("b", affinity=affinity))).node == "hdd"
    nowhere = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["c"]}]}]
            }
        }
    }
    result = s.schedule(pod_info(pod("c", affinity=nowhere)))
    assert result.node is None
    assert result.reasons == {filters.SELECTOR_MISMATCH: 2}


def test_taints_need_tolerations_for_noschedule_and_noexecute_only() -> None:
    s = state(
        node("tainted", taints=[{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]),
        node("soft", taints=[{"key": "x", "effect": "PreferNoSchedule"}]),
    )
    assert s.schedule(pod_info(pod("a"))).node == "soft"
    s.set_node(node_info(node("soft", taints=[{"key": "x", "effect": "NoExecute"}])))
    result = s.schedule(pod_info(pod("a")))
    assert result.node is None
    assert result.reasons == {filters.UNTOLERATED_TAINT: 2}
    tolerant = pod_info(
        pod("b", tolerations=[{"key": "gpu", "operator": "Equal", "value": "yes", "effect": "NoSchedule"}])
    )
    assert s.schedule(tolerant).node == "tainted"
    anything = pod_info(pod("c", tolerations=[{"operator": "Exists"}]))
    assert s.schedule(anything).node in ("tainted", "soft")


def test_host_port_conflicts_and_unschedulable_nodes_are_filtered() -> None:
    s = state(node("n1"), node("n2", unschedulable=True))
    ports = [{"containerPort": 80, "hostPort": 8080}]
    s.add_pod("n1", pod_info(pod("web1", ports=ports)))
    result = s.schedule(pod_info(pod("web2", ports=ports)))
    assert result.node is None
    assert result.reasons == {filters.PORTS_IN_USE: 1, filters.UNSCHEDULABLE: 1}
    assert (
        s.schedule(pod_info(pod("udp", ports=[{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}]))).node
        == "n1"
    )


def test_scores_prefer_emptier_and_balanced_nodes() -> None:
    empty, busy = node_info(node("e")), node_info(node("b"))
    busy.nz_cpu, busy.nz_mem = 3000, 6 * 1024**3
    p = pod_info(pod("a", "100m", "100Mi"))
    assert least_allocated(p, empty) > least_allocated(p, busy)
    lopsided = node_info(node("l"))
    lopsided.nz_cpu = 3900
    assert balanced_allocation(p, empty) > balanced_allocation(p, lopsided)


def test_pods_of_one_owner_spread_across_nodes() -> None:
    s = state(node("n1"), node("n2"), node("n3"))
    placed = []
    for i in range(3):
        info = pod_info(pod(f"p{i}", owner="rs-uid"))
        result = s.schedule(info)
        assert result.node is not None
        s.add_pod(result.node, info)
        placed.append(result.node)
    assert sorted(placed) == ["n1", "n2", "n3"]


def test_large_clusters_stop_after_enough_feasible_nodes() -> None:
    assert nodes_to_find(50) == 50
    assert nodes_to_find(1000) == 420
    assert nodes_to_find(5000) == 500
    s = state(*(node(f"n{i}") for i in range(1000)))
    result = s.schedule(pod_info(pod("a")))
    assert result.feasible == 420
    assert result.evaluated == 420


def test_pending_means_unbound_live_and_ours() -> None:
    assert is_pending({"spec": {}})
    assert not is_pending({"spec": {"nodeName": "n1"}})
    assert not is_pending({"spec": {"schedulerName": "other"}})
    assert not is_pending({"metadata": {"deletionTimestamp": "2020-01-01T00:00:00Z"}, "spec": {}})


def test_with_condition_replaces_same_type_and_keeps_transition_time() -> None:
    old = [{"type": "PodScheduled", "status": "False", "lastTransitionTime": "t0", "message": "a"}]
    new = with_condition(old, {"type": "PodScheduled", "status": "False", "lastTransitionTime": "t1", "message": "b"})
    assert new == [{"type": "PodScheduled", "status": "False", "lastTransitionTime": "t0", "message": "b"}]


def test_weighted_score_equals_the_weighted_sum_of_the_single_scores() -> None:
    from controlplane.scheduler.scores import W_BALANCED, W_LEAST, W_SPREAD, owner_spread, weighted_score

    n = node_info(node("n"))
    n.nz_cpu, n.nz_mem = 1500, 3 * 1024**3
    n.owners["o"] = 2
    p = pod_info(pod("a", "200m", "1Gi", owner="o"))
    expected = (
        W_LEAST * least_allocated(p, n) + W_BALANCED * balanced_allocation(p, n) + W_SPREAD * owner_spread(p, n, 4)
    )
    assert abs(weighted_score(p, n, 4) - expected) < 1e-9
