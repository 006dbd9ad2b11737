"""ResourceQuota status: `status.hard` mirrors `spec.hard` and `status.used` sums what the namespace's
objects count against it (what `kubectl describe quota` prints). Admission enforces quotas on its
own (`controlplane.admission.resource_quota`); this controller only reports, with the same `usage`."""

from __future__ import annotations

import contextlib
from fractions import Fraction
from typing import Any

from controlplane.admission.resource_quota import usage
from controlplane.client import NotFound, split_key
from controlplane.client.informer import Informer
from controlplane.controllers.base import Context, Controller, Obj
from controlplane.resources import (
    CONFIGMAPS,
    DEPLOYMENTS,
    JOBS,
    PERSISTENTVOLUMECLAIMS,
    PODS,
    REPLICASETS,
    REPLICATIONCONTROLLERS,
    RESOURCEQUOTAS,
    SECRETS,
    SERVICES,
    Resource,
)
from controlplane.validation.quantity import format_quantity

COUNTED: tuple[Resource, ...] = (
    PODS,
    SERVICES,
    CONFIGMAPS,
    SECRETS,
    PERSISTENTVOLUMECLAIMS,
    REPLICATIONCONTROLLERS,
    RESOURCEQUOTAS,
    DEPLOYMENTS,
    REPLICASETS,
    JOBS,
)


def _fmt(name: str, value: Fraction) -> str:
    binary = name.rsplit(".", 1)[-1] in ("memory", "storage", "ephemeral-storage")
    return format_quantity(value, binary=binary)


def quota_status(quota: Obj, objects: dict[Resource, list[Obj]]) -> dict[str, Any]:
    """Pure: the status of one quota given the namespace's objects per resource."""
    hard = dict((quota.get("spec") or {}).get("hard") or {})
    totals: dict[str, Fraction] = dict.fromkeys(hard, Fraction(0))
    for res, items in objects.items():
        for obj in items:
            for name, value in usage(res, obj).items():
                if name in totals:
                    totals[name] += value
    return {"hard": hard, "used": {k: _fmt(k, v) for k, v in totals.items()}}


class ResourceQuotaController(Controller):
    name = "resourcequota"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.quotas = self.watch_own(RESOURCEQUOTAS)
        self.counted: dict[Resource, Informer] = {}
        for res in COUNTED:
            self.counted[res] = self.watch_related(res, self._quotas_in_namespace)

    def _quotas_in_namespace(self, obj: Obj) -> list[str]:
        ns = (obj.get("metadata") or {}).get("namespace")
        return [f"{ns}/{q['metadata']['name']}" for q in self.quotas.list() if q["metadata"].get("namespace") == ns]

    async def reconcile(self, key: str) -> float | None:
        quota = self.quotas.get(key)
        if quota is None:
            return None
        ns, name = split_key(key)
        objects = {
            res: [o for o in inf.list() if (o.get("metadata") or {}).get("namespace") == ns]
            for res, inf in self.counted.items()
        }
        status = quota_status(quota, objects)
        if (quota.get("status") or {}) != status:
            with contextlib.suppress(NotFound):
                await self.client.patch(RESOURCEQUOTAS, name, {"status": status}, ns, subresource="status")
        return None
