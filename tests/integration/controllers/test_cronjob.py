from __future__ import annotations

import time
from typing import Any

from controlplane.resources import CRONJOBS, JOBS, PODS
from tests.integration.controllers.conftest import Cluster, eventually
from tests.integration.controllers.test_workloads import template

NS = "default"


async def test_cronjob_creates_a_job_per_tick_and_keeps_history_limits(cluster: Cluster) -> None:
    c = cluster.client
    await cluster.kubelet.add_node("n1")
    shift = {"s": 0.0}
    # The controllers' clock runs ahead on demand, so a minute passes without waiting for it.
    cluster.start_manager(controllers=["scheduler", "job", "cronjob"], now=lambda: time.time() + shift["s"])
    tmpl = template({"app": "tick"})
    tmpl["spec"]["restartPolicy"] = "Never"
    await c.create(
        CRONJOBS,
        {
            "metadata": {"name": "tick"},
            "spec": {
                "schedule": "* * * * *",
                "successfulJobsHistoryLimit": 1,
                "jobTemplate": {"spec": {"template": tmpl}},
            },
        },
        NS,
    )

    async def jobs() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await c.list(JOBS, NS))["items"]
        return items

    async def finish_pods() -> None:
        for p in (await c.list(PODS, NS, label_selector="app=tick"))["items"]:
            if p["status"].get("phase") == "Running":
                p["status"]["phase"] = "Succeeded"
                await c.update(PODS, p, subresource="status")

    async def tick(n: int, previous: list[str]) -> list[str]:
        """Advance the controllers' clock past the n-th minute and wait for that run to finish."""
        shift["s"] = 61.0 * n
        await c.patch(CRONJOBS, "tick", {"metadata": {"labels": {"tick": str(n)}}}, NS)  # wake it now

        async def one_completed() -> list[str]:
            await finish_pods()
            st = (await c.get(CRONJOBS, "tick", NS)).get("status") or {}
            all_jobs = await jobs()
            done = [
                j["metadata"]["name"]
                for j in all_jobs
                if any(cd["type"] == "Complete" for cd in (j.get("status") or {}).get("conditions") or [])
            ]
            ok = st.get("lastSuccessfulTime") and len(all_jobs) == 1 and len(done) == 1 and done != previous
            return done if ok else []

        names: list[str] = await eventually(one_completed, what=f"run {n} completes")
        return names

    assert await jobs() == []
    first = await tick(1, [])
    assert first[0].startswith("tick-")
    second = await tick(2, first)
    assert second != first, "a new Job ran, and history (limit 1) dropped the first"
