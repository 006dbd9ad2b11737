"""CronJob: create a Job (named `<cronjob>-<scheduled unix minutes>`, so a repeated reconcile can
never make two) at each scheduled time, honouring suspend, startingDeadlineSeconds,
concurrencyPolicy (Allow / Forbid / Replace) and the successful/failed history limits."""

from __future__ import annotations

import contextlib
import copy
import logging
import zoneinfo
from datetime import UTC, datetime, tzinfo
from typing import Any

from controlplane.client import AlreadyExists, NotFound, split_key
from controlplane.controllers.base import Context, Controller, Obj, controller_of, is_deleting, owner_ref
from controlplane.controllers.cron import CronError, most_recent, parse
from controlplane.controllers.timeutil import parse_time, rfc3339
from controlplane.resources import CRONJOBS, JOBS

log = logging.getLogger(__name__)

SCHEDULED_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"


def job_finished(job: Obj) -> str | None:
    """ "Complete" or "Failed" once the Job is done, else None."""
    for c in (job.get("status") or {}).get("conditions") or ():
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return str(c["type"])
    return None


def history_to_delete(jobs: list[Obj], successful_limit: int, failed_limit: int) -> list[Obj]:
    """Finished Jobs beyond the limits, oldest first."""
    out: list[Obj] = []
    for kind, limit in (("Complete", successful_limit), ("Failed", failed_limit)):
        done = [j for j in jobs if job_finished(j) == kind]
        done.sort(key=lambda j: str(j["metadata"].get("creationTimestamp") or ""))
        out += done[: max(len(done) - max(limit, 0), 0)]
    return out


def job_from_template(cj: Obj, scheduled: float) -> Obj:
    template = (cj.get("spec") or {}).get("jobTemplate") or {}
    tmeta = template.get("metadata") or {}
    name = f"{cj['metadata']['name']}-{int(scheduled // 60)}"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": cj["metadata"]["namespace"],
            "labels": dict(tmeta.get("labels") or {}),
            "annotations": {**(tmeta.get("annotations") or {}), SCHEDULED_ANNOTATION: rfc3339(scheduled)},
            "ownerReferences": [owner_ref(cj)],
        },
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


def _zone(name: str | None) -> tzinfo:
    if not name:
        return UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return UTC


class CronJobController(Controller):
    name = "cronjob"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.cronjobs = self.watch_own(CRONJOBS)
        self.jobs = self.watch_related(JOBS, self._owner_of)

    @staticmethod
    def _owner_of(job: Obj) -> list[str]:
        ref = controller_of(job)
        if ref is None or ref.get("kind") != "CronJob":
            return []
        return [f"{job['metadata'].get('namespace')}/{ref['name']}"]

    async def reconcile(self, key: str) -> float | None:
        cj = self.cronjobs.get(key)
        if cj is None or is_deleting(cj):
            return None
        ns, name = split_key(key)
        assert ns is not None
        spec = cj.get("spec") or {}
        tz = _zone(spec.get("timeZone"))
        try:
            schedule = parse(str(spec.get("schedule") or ""))
        except CronError as err:
            log.warning("cronjob %s: %s", key, err)
            return None
        now = self.ctx.now()
        uid = cj["metadata"]["uid"]
        jobs = [
            j
            for j in self.jobs.list()
            if j["metadata"].get("namespace") == ns and (controller_of(j) or {}).get("uid") == uid
        ]
        for job in history_to_delete(
            jobs, int(spec.get("successfulJobsHistoryLimit", 3)), int(spec.get("failedJobsHistoryLimit", 1))
        ):
            with contextlib.suppress(NotFound):
                await self.client.delete(JOBS, job["metadata"]["name"], ns, propagation_policy="Background")
        active = [j for j in jobs if not job_finished(j) and not is_deleting(j)]
        prev = cj.get("status") or {}
        status: dict[str, Any] = {k: v for k, v in prev.items() if k in ("lastScheduleTime", "lastSuccessfulTime")}
        completed = [
            parse_time(j.get("status", {}).get("completionTime")) for j in jobs if job_finished(j) == "Complete"
        ]
        if any(completed):
            status["lastSuccessfulTime"] = rfc3339(max(t for t in completed if t))
        if not spec.get("suspend"):
            since = (
                parse_time(prev.get("lastScheduleTime")) or parse_time(cj["metadata"].get("creationTimestamp")) or now
            )
            scheduled, _missed = most_recent(schedule, since, now, tz)
            deadline = spec.get("startingDeadlineSeconds")
            too_late = scheduled is not None and deadline is not None and scheduled + float(deadline) < now
            policy = spec.get("concurrencyPolicy", "Allow")
            if scheduled is not None and not too_late and not (policy == "Forbid" and active):
                if policy == "Replace":
                    for job in active:
                        with contextlib.suppress(NotFound):
                            await self.client.delete(JOBS, job["metadata"]["name"], ns, propagation_policy="Background")
                    active = []
                body = job_from_template(cj, scheduled)
                with contextlib.suppress(AlreadyExists):
                    created = await self.client.create(JOBS, body, ns)
                    active.append(created)
                    await self.events.record(
                        cj, "Normal", "SuccessfulCreate", f"Created job {body['metadata']['name']}", now=now
                    )
                status["lastScheduleTime"] = rfc3339(scheduled)
        status["active"] = [
            {
                "kind": "Job",
                "apiVersion": "batch/v1",
                "namespace": ns,
                "name": j["metadata"]["name"],
                "uid": j["metadata"].get("uid"),
            }
            for j in sorted(active, key=lambda j: j["metadata"]["name"])
        ]
        if not status["active"]:
            del status["active"]
        if status != {k: v for k, v in prev.items() if k in ("lastScheduleTime", "lastSuccessfulTime", "active")}:
            with contextlib.suppress(NotFound):
                await self.client.patch(
                    CRONJOBS, name, {"status": {"active": None, **status}}, ns, subresource="status"
                )
        nxt = schedule.next_after(datetime.fromtimestamp(now, tz)).timestamp()
        return max(nxt - now, 0.0) + 0.05
