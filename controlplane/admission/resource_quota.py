"""ResourceQuota: reject a create (or an update that grows usage) that would take a namespace past any
of its quotas' `spec.hard`, with the message Kubernetes prints ("exceeded quota: …, requested: …,
used: …, limited: …").

Usage is computed from the objects the reader returns, not from `status.used`, so the check is right
even before (or without) a quota controller. Concurrent creates must not race past a quota: a create
that passes reserves its usage until the reader shows the object (or `RESERVATION_SECONDS` pass, for
writes that failed after admission), and checks in one namespace are serialized. Kubernetes gets the
same effect by writing `status.used` with optimistic concurrency; this needs no second write.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from controlplane.admission.errors import Forbidden
from controlplane.admission.interfaces import Attributes, ObjectReader
from controlplane.resources import (
    CONFIGMAPS,
    PERSISTENTVOLUMECLAIMS,
    PODS,
    REPLICATIONCONTROLLERS,
    RESOURCEQUOTAS,
    SECRETS,
    SERVICES,
    Resource,
)
from controlplane.validation.quantity import QuantityError, format_quantity, parse_quantity
from controlplane.validation.shapes import as_dict, dict_items

__all__ = ["RESERVATION_SECONDS", "ResourceQuotaAdmission", "usage"]

RESERVATION_SECONDS = 10.0

_LEGACY_COUNTS = {
    PODS: "pods",
    SERVICES: "services",
    CONFIGMAPS: "configmaps",
    SECRETS: "secrets",
    PERSISTENTVOLUMECLAIMS: "persistentvolumeclaims",
    REPLICATIONCONTROLLERS: "replicationcontrollers",
    RESOURCEQUOTAS: "resourcequotas",
}
_COMPUTE = ("cpu", "memory", "ephemeral-storage")
_TERMINAL = ("Succeeded", "Failed")


def _count_key(res: Resource) -> str:
    return f"count/{res.plural}.{res.group}" if res.group else f"count/{res.plural}"


def _q(value: Any) -> Fraction:
    try:
        return parse_quantity(value)
    except QuantityError:
        return Fraction(0)


def _pod_usage(pod: Mapping[str, Any]) -> dict[str, Fraction]:
    if as_dict(pod.get("status")).get("phase") in _TERMINAL:
        return {}
    spec = as_dict(pod.get("spec"))
    used: dict[str, Fraction] = {"pods": Fraction(1)}
    for part in ("requests", "limits"):
        totals: dict[str, Fraction] = {}
        for container in dict_items(spec.get("containers")):
            for name, raw in as_dict(as_dict(container.get("resources")).get(part)).items():
                totals[name] = totals.get(name, Fraction(0)) + _q(raw)
        # An init container runs alone, so the pod needs the larger of it and the app containers' sum.
        for container in dict_items(spec.get("initContainers")):
            for name, raw in as_dict(as_dict(container.get("resources")).get(part)).items():
                totals[name] = max(totals.get(name, Fraction(0)), _q(raw))
        for name, value in totals.items():
            used[f"{part}.{name}"] = value
            if part == "requests" and name in _COMPUTE:
                used[name] = value
    return used


def usage(res: Resource, obj: Mapping[str, Any]) -> dict[str, Fraction]:
    """What one object counts against quotas, by quota resource name."""
    if res is PODS:
        used = _pod_usage(obj)
        if not used:
            return {}
    else:
        used = {}
    used[_count_key(res)] = Fraction(1)
    legacy = _LEGACY_COUNTS.get(res)
    if legacy:
        used[legacy] = Fraction(1)
    if res is SERVICES:
        spec = as_dict(obj.get("spec"))
        if spec.get("type") in ("NodePort", "LoadBalancer"):
            used["services.nodeports"] = Fraction(len(dict_items(spec.get("ports"))))
        if spec.get("type") == "LoadBalancer":
            used["services.loadbalancers"] = Fraction(1)
    if res is PERSISTENTVOLUMECLAIMS:
        storage = as_dict(as_dict(as_dict(obj.get("spec")).get("resources")).get("requests")).get("storage")
        if storage is not None:
            used["requests.storage"] = _q(storage)
    return used


def _fmt(name: str, value: Fraction) -> str:
    binary = name.rsplit(".", 1)[-1] in ("memory", "storage", "ephemeral-storage")
    return format_quantity(value, binary=binary)


def _pairs(values: dict[str, Fraction]) -> str:
    return ",".join(f"{k}={_fmt(k, v)}" for k, v in sorted(values.items()))


@dataclass
class _Reservation:
    name: str
    usage: dict[str, Fraction]
    expires: float


class ResourceQuotaAdmission:
    name = "ResourceQuota"

    def __init__(self, reader: ObjectReader, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._reader = reader
        self._clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        # (namespace, plural) → admitted creates not yet visible to the reader; guarded by _locks[namespace].
        self._pending: dict[tuple[str, str], list[_Reservation]] = {}

    async def admit(self, attrs: Attributes) -> None:
        res = attrs.resource
        if attrs.operation not in ("CREATE", "UPDATE") or attrs.subresource or attrs.obj is None:
            return
        if not res.namespaced or not attrs.namespace:
            return
        quotas = [
            q for q in await self._reader.list(RESOURCEQUOTAS, attrs.namespace) if as_dict(q.get("spec")).get("hard")
        ]
        if not quotas:
            return
        new = usage(res, attrs.obj)
        old = usage(res, attrs.old) if attrs.old is not None else {}
        delta = {k: v - old.get(k, Fraction(0)) for k, v in new.items() if v - old.get(k, Fraction(0)) > 0}
        if not delta and attrs.operation == "UPDATE":
            return
        lock = self._locks.setdefault(attrs.namespace, asyncio.Lock())
        async with lock:
            await self._check(res, attrs, attrs.obj, quotas, delta)

    async def _check(
        self,
        res: Resource,
        attrs: Attributes,
        obj: Mapping[str, Any],
        quotas: list[Mapping[str, Any]],
        delta: dict[str, Fraction],
    ) -> None:
        tracked = False
        current: dict[str, Fraction] | None = None
        for quota in sorted(quotas, key=lambda q: as_dict(q.get("metadata")).get("name", "")):
            qname = as_dict(quota.get("metadata")).get("name", "")
            hard = {k: _q(v) for k, v in as_dict(quota["spec"]["hard"]).items()}
            if res is PODS and attrs.operation == "CREATE" and delta:
                missing = self._missing_compute(hard, obj)
                if missing:
                    raise Forbidden(res, attrs.name, f"failed quota: {qname}: must specify {','.join(missing)}")
            touched = sorted(k for k in delta if k in hard)
            if not touched:
                continue
            tracked = True
            if current is None:
                current = await self._used(res, attrs)
            exceeded = [k for k in touched if current.get(k, Fraction(0)) + delta[k] > hard[k]]
            if exceeded:
                requested = {k: delta[k] for k in exceeded}
                used = {k: current.get(k, Fraction(0)) for k in exceeded}
                limited = {k: hard[k] for k in exceeded}
                raise Forbidden(
                    res,
                    attrs.name,
                    f"exceeded quota: {qname}, requested: {_pairs(requested)}, used: {_pairs(used)}, "
                    f"limited: {_pairs(limited)}",
                )
        if tracked and attrs.operation == "CREATE" and not attrs.dry_run:
            reservation = _Reservation(attrs.name, delta, self._clock() + RESERVATION_SECONDS)
            self._pending.setdefault((attrs.namespace or "", res.plural), []).append(reservation)

    @staticmethod
    def _missing_compute(hard: dict[str, Fraction], pod: Mapping[str, Any]) -> list[str]:
        """A quota on requests/limits of cpu or memory requires every container to state them."""
        missing: list[str] = []
        containers = dict_items(as_dict(pod.get("spec")).get("containers"))
        for key in sorted(hard):
            part, _, name = key.partition(".")
            if key in _COMPUTE:
                part, name = "requests", key
            if part not in ("requests", "limits") or name not in ("cpu", "memory"):
                continue
            if any(name not in as_dict(as_dict(c.get("resources")).get(part)) for c in containers):
                missing.append(key)
        return missing

    async def _used(self, res: Resource, attrs: Attributes) -> dict[str, Fraction]:
        """Usage of `res` objects in the namespace (on update including the old version, which the
        delta is relative to), plus admitted creates the reader does not show yet."""
        namespace = attrs.namespace or ""
        totals: dict[str, Fraction] = {}
        seen: set[str] = set()
        for obj in await self._reader.list(res, namespace):
            seen.add(str(as_dict(obj.get("metadata")).get("name", "")))
            for key, value in usage(res, obj).items():
                totals[key] = totals.get(key, Fraction(0)) + value
        now = self._clock()
        pending = [r for r in self._pending.get((namespace, res.plural), []) if r.expires > now and r.name not in seen]
        self._pending[(namespace, res.plural)] = pending
        for reservation in pending:
            for key, value in reservation.usage.items():
                totals[key] = totals.get(key, Fraction(0)) + value
        return totals
