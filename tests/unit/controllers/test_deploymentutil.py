from __future__ import annotations

from typing import Any

from controlplane.controllers.deploymentutil import (
    HASH_LABEL,
    ScaleDown,
    compute_status,
    history_to_delete,
    new_rs_replicas,
    old_rs_scale_down,
    resolve_fenceposts,
    same_template,
    template_hash,
)

T0 = 1767225600.0  # 2026-01-01T00:00:00Z


def rs(
    name: str,
    replicas: int,
    available: int | None = None,
    *,
    rev: int = 1,
    status_replicas: int | None = None,
    created: str = "2026-01-01T00:00:00Z",
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "creationTimestamp": created,
            "annotations": {"deployment.kubernetes.io/revision": str(rev)},
        },
        "spec": {"replicas": replicas},
        "status": {
            "replicas": replicas if status_replicas is None else status_replicas,
            "readyReplicas": replicas if available is None else available,
            "availableReplicas": replicas if available is None else available,
        },
    }


def test_template_hash_is_stable_ignores_hash_label_and_changes_with_collisions() -> None:
    t = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    h = template_hash(t)
    labelled = {"metadata": {"labels": {"app": "web", HASH_LABEL: h}}, "spec": t["spec"]}
    assert template_hash(labelled) == h
    assert same_template(t, labelled)
    assert template_hash(t, 1) != h
    assert h.isalnum()
    assert h == h.lower()


def test_fenceposts_round_surge_up_and_unavailable_down() -> None:
    assert resolve_fenceposts(10, {}) == (3, 2)
    assert resolve_fenceposts(3, {"rollingUpdate": {"maxSurge": "50%", "maxUnavailable": "50%"}}) == (2, 1)
    assert resolve_fenceposts(3, {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}) == (0, 1)


def test_new_rs_grows_within_max_surge() -> None:
    new, old = rs("new", 0), rs("old", 3)
    assert new_rs_replicas(3, 1, new, [new, old]) == 1
    new2 = rs("new", 1, 0)
    assert new_rs_replicas(3, 1, new2, [new2, old]) == 1, "total already at replicas + surge"
    assert new_rs_replicas(3, 1, rs("new", 5), [rs("new", 5)]) == 3


def test_old_rs_scales_down_only_while_enough_pods_stay_available() -> None:
    new, old = rs("new", 1, 0), rs("old", 3)
    # 4 pods, 3 available, minAvailable 3 (maxUnavailable 0): nothing may go yet.
    assert old_rs_scale_down(3, 0, new, [old]) == []
    ready_new = rs("new", 1, 1)
    assert old_rs_scale_down(3, 0, ready_new, [old]) == [ScaleDown("old", 2)]


def test_unavailable_old_pods_are_removed_first_within_the_budget() -> None:
    # 4 pods, minAvailable 2, the new pod is not available yet: one unhealthy old pod may go.
    new, old = rs("new", 1, 0), rs("old", 3, 1)
    assert old_rs_scale_down(3, 1, new, [old]) == [ScaleDown("old", 2)]
    # Only unavailable old pods can go when availability is at the minimum.
    assert old_rs_scale_down(3, 1, rs("new", 0, 0), [rs("old", 3, 2)]) == [ScaleDown("old", 2)]


def test_history_keeps_revision_history_limit_idle_replicasets() -> None:
    olds = [rs("r1", 0, rev=1), rs("r2", 0, rev=2), rs("r3", 0, rev=3), rs("busy", 1, rev=4)]
    assert [r["metadata"]["name"] for r in history_to_delete(olds, 1)] == ["r1", "r2"]
    assert history_to_delete(olds, 10) == []


def deployment(replicas: int = 3, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "d", "generation": 2}, "spec": {"replicas": replicas, **spec}, "status": {}}


def test_complete_rollout_reports_new_replicaset_available() -> None:
    new = rs("d-abc", 3)
    status = compute_status(deployment(), new, [new], max_unavailable=0, now=T0)
    assert status["observedGeneration"] == 2
    assert (status["replicas"], status["updatedReplicas"], status["availableReplicas"]) == (3, 3, 3)
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["Available"]["status"] == "True"
    assert conds["Progressing"]["reason"] == "NewReplicaSetAvailable"


def test_stalled_rollout_exceeds_progress_deadline() -> None:
    new, old = rs("d-new", 1, 0), rs("d-old", 3)
    d = deployment(progressDeadlineSeconds=10)
    first = compute_status(d, new, [new, old], max_unavailable=0, now=T0, created_new=True)
    assert {c["type"]: c["reason"] for c in first["conditions"]}["Progressing"] == "NewReplicaSetCreated"
    d["status"] = first
    later = compute_status(d, new, [new, old], max_unavailable=0, now=T0 + 11)
    prog = {c["type"]: c for c in later["conditions"]}["Progressing"]
    assert (prog["status"], prog["reason"]) == ("False", "ProgressDeadlineExceeded")


def test_paused_deployment_reports_paused() -> None:
    new = rs("d-new", 3)
    status = compute_status(deployment(paused=True), new, [new], max_unavailable=0, now=T0)
    prog = {c["type"]: c for c in status["conditions"]}["Progressing"]
    assert (prog["status"], prog["reason"]) == ("Unknown", "DeploymentPaused")
