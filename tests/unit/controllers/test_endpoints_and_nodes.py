from __future__ import annotations

from typing import Any

from controlplane.controllers.endpoints import (
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    endpoints_subsets,
    plan_slices,
    service_endpoints,
)
from controlplane.controllers.nodelifecycle import NOT_READY, UNREACHABLE, desired_taints, eviction_delay

SVC = {
    "metadata": {"name": "web", "namespace": "d", "uid": "svc-uid"},
    "spec": {
        "selector": {"app": "web"},
        "ports": [{"name": "http", "port": 80, "targetPort": "http"}, {"name": "metrics", "port": 9090}],
    },
}


def pod(
    name: str,
    ip: str | None,
    *,
    ready: bool = True,
    port: int = 8080,
    deleting: bool = False,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "d", "uid": f"uid-{name}", "labels": labels or {"app": "web"}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "metadata": meta,
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": port}]}]},
        "status": {
            "phase": "Running",
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def test_endpoints_resolve_named_ports_and_conditions() -> None:
    eps = service_endpoints(
        SVC,
        [
            pod("a", "10.0.0.1"),
            pod("b", "10.0.0.2", ready=False),
            pod("c", "10.0.0.3", deleting=True),
            pod("noip", None),
            pod("other", "10.0.0.9", labels={"app": "x"}),
        ],
    )
    assert [(e.pod_name, e.ready, e.serving, e.terminating) for e in eps] == [
        ("a", True, True, False),
        ("b", False, False, False),
        ("c", False, True, True),
    ]
    assert eps[0].ports == (("http", "TCP", 8080), ("metrics", "TCP", 9090))
    assert eps[0].node_name == "n1"


def test_slices_hold_at_most_100_endpoints_and_carry_labels_and_owner() -> None:
    pods = [pod(f"p{i:03}", f"10.0.{i // 200}.{i % 200 + 1}") for i in range(250)]
    plan = plan_slices(SVC, service_endpoints(SVC, pods), [])
    assert [len(s["endpoints"]) for s in plan.create] == [100, 100, 50]
    s = plan.create[0]
    assert s["metadata"]["labels"][SERVICE_NAME_LABEL] == "web"
    assert s["metadata"]["labels"][MANAGED_BY_LABEL]
    assert s["metadata"]["ownerReferences"][0]["uid"] == "svc-uid"
    assert {p["name"]: p["port"] for p in s["ports"]} == {"http": 8080, "metrics": 9090}
    assert s["endpoints"][0]["targetRef"] == {"kind": "Pod", "namespace": "d", "name": "p000", "uid": "uid-p000"}


def test_pods_with_different_named_port_numbers_get_separate_slices_and_existing_ones_are_reused() -> None:
    eps = service_endpoints(SVC, [pod("a", "10.0.0.1", port=8080), pod("b", "10.0.0.2", port=9000)])
    first = plan_slices(SVC, eps, [])
    assert len(first.create) == 2
    existing = [{**s, "metadata": {**s["metadata"], "resourceVersion": "1"}} for s in first.create]
    again = plan_slices(SVC, eps, existing)
    assert (again.create, again.update, again.delete) == ([], [], [])
    shrunk = plan_slices(SVC, eps[:1], existing)
    assert len(shrunk.delete) == 1
    assert not shrunk.create


def test_service_without_endpoints_gets_one_empty_slice() -> None:
    plan = plan_slices(SVC, [], [])
    assert len(plan.create) == 1
    assert plan.create[0]["endpoints"] == []


def test_legacy_endpoints_split_ready_and_not_ready_and_skip_terminating() -> None:
    eps = service_endpoints(
        SVC, [pod("a", "10.0.0.1"), pod("b", "10.0.0.2", ready=False), pod("c", "10.0.0.3", deleting=True)]
    )
    (subset,) = endpoints_subsets(eps)
    assert [a["ip"] for a in subset["addresses"]] == ["10.0.0.1"]
    assert [a["ip"] for a in subset["notReadyAddresses"]] == ["10.0.0.2"]


def test_node_taints_follow_ready_status_keeping_foreign_taints() -> None:
    foreign = {"key": "dedicated", "effect": "NoSchedule"}
    unknown = desired_taints([foreign], "Unknown", 0.0)
    assert {(t["key"], t["effect"]) for t in unknown} == {
        ("dedicated", "NoSchedule"),
        (UNREACHABLE, "NoSchedule"),
        (UNREACHABLE, "NoExecute"),
    }
    assert {t["key"] for t in desired_taints(unknown, "False", 0.0)} == {"dedicated", NOT_READY}
    assert desired_taints(unknown, "True", 0.0) == [foreign]


def test_eviction_waits_for_toleration_seconds_or_the_default() -> None:
    taints = [{"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": "2026-01-01T00:00:00Z"}]
    t0 = 1767225600.0
    bare: dict[str, Any] = {"spec": {}}
    assert eviction_delay(bare, taints, t0 + 10, 300) == 290
    short = {
        "spec": {
            "tolerations": [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}]
        }
    }
    assert eviction_delay(short, taints, t0 + 10, 300) == 0
    forever = {"spec": {"tolerations": [{"operator": "Exists"}]}}
    assert eviction_delay(forever, taints, t0 + 10, 300) is None
    other = [{"key": "evict-me", "effect": "NoExecute"}]
    assert eviction_delay(bare, other, t0, 300) == 0
