from __future__ import annotations

from typing import Any

from controlplane.controllers.daemonset import REVISION_LABEL, daemon_pod_template, plan_daemons, target_node
from controlplane.controllers.deploymentutil import template_hash
from controlplane.controllers.job import plan_job

T0 = 1767225600.0  # 2026-01-01T00:00:00Z


def node(name: str, taints: list[dict[str, Any]] | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"taints": taints or []},
        "status": {"allocatable": {"cpu": "1", "memory": "1Gi"}},
    }


DS: dict[str, Any] = {
    "metadata": {"name": "ds", "generation": 1},
    "spec": {"template": {"metadata": {"labels": {"app": "ds"}}, "spec": {"containers": [{"name": "c"}]}}},
}
CURRENT = template_hash(daemon_pod_template(DS))


def dpod(
    name: str, node_name: str, *, revision: str = CURRENT, ready: bool = True, phase: str = "Running"
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {REVISION_LABEL: revision}, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"nodeName": node_name},
        "status": {
            "phase": phase,
            "conditions": [
                {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": "2026-01-01T00:00:00Z"}
            ],
        },
    }


def test_daemon_goes_to_every_tolerated_node_once() -> None:
    nodes = [
        node("a"),
        node("b"),
        node("tainted", [{"key": "x", "effect": "NoSchedule"}]),
        node("unreachable", [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]),
    ]
    plan = plan_daemons(DS, nodes, [dpod("p1", "a"), dpod("p2", "a"), dpod("stray", "tainted")], now=T0)
    assert plan.create_on == ["b", "unreachable"], "daemons tolerate node trouble taints"
    assert sorted(p["metadata"]["name"] for p in plan.delete) == ["p2", "stray"]
    assert plan.status["desiredNumberScheduled"] == 3
    assert plan.status["numberMisscheduled"] == 1


def test_rolling_update_replaces_one_available_outdated_pod_at_a_time() -> None:
    nodes = [node("a"), node("b"), node("c")]
    pods = [dpod("pa", "a", revision="old"), dpod("pb", "b", revision="old"), dpod("pc", "c", revision="old")]
    plan = plan_daemons(DS, nodes, pods, now=T0)
    assert len(plan.delete) == 1
    assert plan.status["updatedNumberScheduled"] == 0
    failed = plan_daemons(DS, nodes, [*pods[:2], dpod("pc", "c", phase="Failed")], now=T0)
    assert failed.delete[0]["metadata"]["name"] == "pc"
    assert failed.create_on == ["c"]


def test_target_node_reads_the_affinity_pin() -> None:
    pod = {
        "spec": {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n7"]}]}
                        ]
                    }
                }
            }
        }
    }
    assert target_node(pod) == "n7"


def job(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "j"}, "spec": spec, "status": {}}


def jpod(phase: str) -> dict[str, Any]:
    return {"metadata": {"name": phase}, "status": {"phase": phase}}


def test_job_keeps_parallelism_until_completions_then_completes() -> None:
    assert plan_job(job(completions=5, parallelism=2), [], now=T0).create == 2
    plan = plan_job(job(completions=3, parallelism=2), [jpod("Succeeded"), jpod("Succeeded"), jpod("Running")], now=T0)
    assert plan.create == 0, "one more needed and one already active"
    done = plan_job(job(completions=2), [jpod("Succeeded"), jpod("Succeeded")], now=T0)
    assert done.finished
    assert [c["type"] for c in done.status["conditions"]] == ["Complete"]


def test_job_fails_after_backoff_limit_or_deadline() -> None:
    plan = plan_job(job(backoffLimit=1), [jpod("Failed"), jpod("Failed"), jpod("Running")], now=T0)
    assert plan.finished
    assert plan.status["conditions"][0]["reason"] == "BackoffLimitExceeded"
    assert len(plan.delete) == 1
    late = job(activeDeadlineSeconds=10)
    late["status"] = {"startTime": "2026-01-01T00:00:00Z"}
    assert plan_job(late, [jpod("Running")], now=T0 + 11).status["conditions"][0]["reason"] == "DeadlineExceeded"
