"""Job: run pods until `completions` succeed (at most `parallelism` at once), or fail the Job after
`backoffLimit` failed pods or `activeDeadlineSeconds`. Conditions `Complete` / `Failed` are what
`kubectl wait --for=condition=complete` reads."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from controlplane.client import NotFound, split_key
from controlplane.controllers.base import Context, Controller, Obj, controller_of, is_deleting, owner_ref
from controlplane.controllers.expectations import created_seen, wait_cache
from controlplane.controllers.podutil import is_active, is_ready, phase, pod_from_template, random_suffix
from controlplane.controllers.timeutil import parse_time, rfc3339
from controlplane.resources import JOBS, PODS


@dataclass
class JobPlan:
    create: int = 0
    delete: list[Obj] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    finished: bool = False


def _has_condition(job: Obj, type_: str) -> bool:
    return any(
        c.get("type") == type_ and c.get("status") == "True" for c in (job.get("status") or {}).get("conditions") or ()
    )


def plan_job(job: Obj, pods: list[Obj], *, now: float) -> JobPlan:
    spec = job.get("spec") or {}
    prev = job.get("status") or {}
    plan = JobPlan()
    if _has_condition(job, "Complete") or _has_condition(job, "Failed"):
        plan.finished = True
        plan.status = dict(prev)
        return plan
    parallelism = int(spec.get("parallelism", 1))
    completions = spec.get("completions")
    backoff_limit = int(spec.get("backoffLimit", 6))
    active = [p for p in pods if is_active(p)]
    # Finished pods may be deleted by users; the status keeps what was already counted.
    succeeded = max(int(prev.get("succeeded") or 0), sum(1 for p in pods if phase(p) == "Succeeded"))
    failed = max(int(prev.get("failed") or 0), sum(1 for p in pods if phase(p) == "Failed"))
    stamp = rfc3339(now)
    start = prev.get("startTime") or stamp
    status: dict[str, Any] = {
        "startTime": start,
        "active": len(active),
        "succeeded": succeeded,
        "failed": failed,
        "ready": sum(1 for p in active if is_ready(p)),
    }
    conditions = list(prev.get("conditions") or [])
    deadline = spec.get("activeDeadlineSeconds")
    failure: tuple[str, str] | None = None
    if failed > backoff_limit:
        failure = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
    elif deadline is not None and (parse_time(start) or now) + float(deadline) <= now:
        failure = ("DeadlineExceeded", "Job was active longer than specified deadline")
    if failure is not None:
        plan.delete = active
        status["active"] = 0
        conditions.append(
            {
                "type": "Failed",
                "status": "True",
                "reason": failure[0],
                "message": failure[1],
                "lastProbeTime": stamp,
                "lastTransitionTime": stamp,
            }
        )
        plan.finished = True
    else:
        done = succeeded >= int(completions) if completions is not None else (succeeded > 0 and not active)
        if done:
            plan.delete = active
            status["active"] = 0
            status["completionTime"] = stamp
            conditions.append(
                {"type": "Complete", "status": "True", "lastProbeTime": stamp, "lastTransitionTime": stamp}
            )
            plan.finished = True
        else:
            remaining = int(completions) - succeeded if completions is not None else parallelism
            if completions is not None or succeeded == 0:
                plan.create = max(0, min(parallelism, remaining) - len(active))
    if conditions:
        status["conditions"] = conditions
    plan.status = status
    return plan


class JobController(Controller):
    name = "job"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.jobs = self.watch_own(JOBS)
        self.pods = self.watch_related(PODS, self._owner_of)

    @staticmethod
    def _owner_of(pod: Obj) -> list[str]:
        ref = controller_of(pod)
        if ref is None or ref.get("kind") != "Job":
            return []
        return [f"{pod['metadata'].get('namespace')}/{ref['name']}"]

    async def reconcile(self, key: str) -> float | None:
        job = self.jobs.get(key)
        if job is None or is_deleting(job):
            return None
        ns, _ = split_key(key)
        assert ns is not None
        uid = job["metadata"]["uid"]
        pods = [
            p
            for p in self.pods.list()
            if p["metadata"].get("namespace") == ns and (controller_of(p) or {}).get("uid") == uid
        ]
        plan = plan_job(job, pods, now=self.ctx.now())
        if plan.finished and plan.status == (job.get("status") or {}):
            return None
        for pod in plan.delete:
            with contextlib.suppress(NotFound):
                await self.client.delete(PODS, pod["metadata"]["name"], ns)
        template = (job.get("spec") or {}).get("template") or {}
        labels = {
            "batch.kubernetes.io/controller-uid": uid,
            "batch.kubernetes.io/job-name": job["metadata"]["name"],
            "controller-uid": uid,
            "job-name": job["metadata"]["name"],
        }
        template = {
            **template,
            "metadata": {
                **(template.get("metadata") or {}),
                "labels": {**((template.get("metadata") or {}).get("labels") or {}), **labels},
            },
        }
        made = []
        for _ in range(plan.create):
            name = f"{job['metadata']['name']}-{random_suffix()}"
            await self.client.create(
                PODS, pod_from_template(template, name=name, namespace=ns, owner_ref=owner_ref(job)), ns
            )
            made.append(f"{ns}/{name}")
        await wait_cache(self.pods, created_seen(self.pods, made))
        if plan.status != (job.get("status") or {}):
            with contextlib.suppress(NotFound):
                await self.client.patch(
                    JOBS, job["metadata"]["name"], {"status": plan.status}, ns, subresource="status"
                )
        deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
        if deadline is not None and not plan.finished:
            start = parse_time(plan.status.get("startTime")) or self.ctx.now()
            return max(start + float(deadline) - self.ctx.now(), 0.0) + 0.1
        return None
