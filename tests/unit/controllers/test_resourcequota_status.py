from __future__ import annotations

from typing import Any

from controlplane.controllers.resourcequota import quota_status
from controlplane.resources import CONFIGMAPS, PODS, Resource


def test_used_sums_requests_and_counts_only_for_hard_keys_skipping_finished_pods() -> None:
    quota = {"spec": {"hard": {"pods": "10", "requests.cpu": "2", "requests.memory": "1Gi", "configmaps": "5"}}}

    def pod(cpu: str, mem: str, phase: str = "Running") -> dict[str, Any]:
        return {
            "spec": {"containers": [{"resources": {"requests": {"cpu": cpu, "memory": mem}}}]},
            "status": {"phase": phase},
        }

    objects: dict[Resource, list[dict[str, Any]]] = {
        PODS: [pod("250m", "128Mi"), pod("500m", "128Mi"), pod("4", "4Gi", "Succeeded")],
        CONFIGMAPS: [{"metadata": {"name": "a"}}],
    }
    status = quota_status(quota, objects)
    assert status["hard"] == quota["spec"]["hard"]
    assert status["used"] == {"pods": "2", "requests.cpu": "750m", "requests.memory": "256Mi", "configmaps": "1"}
