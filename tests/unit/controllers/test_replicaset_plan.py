from __future__ import annotations

from typing import Any

from controlplane.controllers.podutil import deletion_rank
from controlplane.controllers.replicaset import plan_replicas, replica_status
from controlplane.controllers.selectors import matches, to_query

SEL = {"matchLabels": {"app": "web"}}


def selects(labels: Any) -> bool:
    return matches(SEL, labels)


def pod(
    name: str,
    *,
    owner: str | None = "rs1",
    labels: dict[str, str] | None = None,
    phase: str = "Running",
    ready: bool = True,
    node: str | None = "n1",
    deleting: bool = False,
    created: str = "2026-01-01T00:00:00Z",
    ready_since: str = "2026-01-01T00:00:00Z",
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "d",
        "labels": labels if labels is not None else {"app": "web"},
        "creationTimestamp": created,
    }
    if owner:
        meta["ownerReferences"] = [{"uid": owner, "controller": True, "kind": "ReplicaSet", "name": owner}]
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    conds = [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": ready_since}]
    return {
        "metadata": meta,
        "spec": {"nodeName": node} if node else {},
        "status": {"phase": phase, "conditions": conds},
    }


def test_scale_up_creates_the_missing_replicas_ignoring_finished_and_deleting_pods() -> None:
    pods = [pod("a"), pod("b", phase="Failed"), pod("c", deleting=True)]
    plan = plan_replicas("rs1", selects, 3, pods)
    assert plan.create == 2
    assert [p["metadata"]["name"] for p in plan.active] == ["a"]


def test_scale_down_deletes_least_valuable_pods_first() -> None:
    pods = [
        pod("ready-old", ready_since="2026-01-01T00:00:00Z"),
        pod("ready-new", ready_since="2026-01-02T00:00:00Z"),
        pod("not-ready", ready=False),
        pod("unscheduled", node=None, phase="Pending", ready=False),
    ]
    plan = plan_replicas("rs1", selects, 1, pods)
    assert [p["metadata"]["name"] for p in plan.delete] == ["unscheduled", "not-ready", "ready-new"]
    assert [p["metadata"]["name"] for p in plan.active] == ["ready-old"]


def test_orphans_matching_the_selector_are_adopted_and_non_matching_owned_pods_released() -> None:
    pods = [pod("orphan", owner=None), pod("stray", labels={"app": "other"}), pod("foreign", owner="rs2")]
    plan = plan_replicas("rs1", selects, 1, pods)
    assert [p["metadata"]["name"] for p in plan.adopt] == ["orphan"]
    assert [p["metadata"]["name"] for p in plan.release] == ["stray"]
    assert plan.create == 0
    assert plan.delete == []


def test_a_deleting_owner_neither_adopts_nor_scales() -> None:
    plan = plan_replicas("rs1", selects, 5, [pod("orphan", owner=None)], owner_deleting=True)
    assert (plan.adopt, plan.create, plan.delete) == ([], 0, [])


def test_status_counts_ready_and_available_after_min_ready_seconds() -> None:
    owner = {"metadata": {"generation": 4}, "spec": {"template": {"metadata": {"labels": {"app": "web", "x": "1"}}}}}
    pods = [
        pod("a", ready_since="2026-01-01T00:00:00Z"),
        pod("b", ready_since="2026-01-01T00:00:50Z"),
        pod("c", ready=False, labels={"app": "web", "x": "1"}),
    ]
    now = 1767225660.0  # 2026-01-01T00:01:00Z
    status = replica_status(owner, pods, min_ready_seconds=30, now=now)
    assert status == {
        "replicas": 3,
        "fullyLabeledReplicas": 1,
        "readyReplicas": 2,
        "availableReplicas": 1,
        "observedGeneration": 4,
    }


def test_deletion_rank_prefers_unassigned_then_pending() -> None:
    assert deletion_rank(pod("x", node=None)) < deletion_rank(pod("y"))


def test_structured_selectors_match_and_render_as_queries() -> None:
    sel = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "canary", "operator": "DoesNotExist"},
        ],
    }
    assert matches(sel, {"app": "web", "tier": "b"})
    assert not matches(sel, {"app": "web", "tier": "b", "canary": "1"})
    assert not matches(sel, {"app": "web", "tier": "c"})
    assert to_query(sel) == "app=web,tier in (a,b),!canary"
