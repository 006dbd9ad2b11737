"""ReplicaSet and ReplicationController: keep `spec.replicas` active pods matching the selector.

`plan_replicas` is pure (owned/adoptable/released pods → what to do); the controller executes the
plan, waits for its writes to reach the cache, then writes status (replicas, fullyLabeledReplicas,
readyReplicas, availableReplicas, observedGeneration).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from controlplane.client import NotFound, split_key
from controlplane.client.informer import Informer
from controlplane.controllers.base import (
    Context,
    Controller,
    Obj,
    adopt,
    controller_of,
    is_deleting,
    owner_ref,
    release,
)
from controlplane.controllers.expectations import created_seen, deleted_seen, wait_cache
from controlplane.controllers.podutil import (
    deletion_rank,
    is_active,
    is_available,
    is_ready,
    pod_from_template,
    random_suffix,
    seconds_until_available,
)
from controlplane.controllers.selectors import SelectorError, map_matches, matches
from controlplane.resources import PODS, REPLICASETS, REPLICATIONCONTROLLERS, Resource

log = logging.getLogger(__name__)

Selects = Callable[[Mapping[str, str]], bool]


@dataclass
class ReplicaPlan:
    adopt: list[Obj] = field(default_factory=list)
    release: list[Obj] = field(default_factory=list)
    create: int = 0
    delete: list[Obj] = field(default_factory=list)
    active: list[Obj] = field(default_factory=list)  # owned + adopted, after the plan's deletions


def plan_replicas(
    owner_uid: str, selects: Selects, replicas: int, pods: list[Obj], *, owner_deleting: bool = False
) -> ReplicaPlan:
    """What brings the pods of one owner to `replicas`: adopt orphans that match, release owned
    pods that stopped matching, then create or delete (deleting the least valuable first)."""
    plan = ReplicaPlan()
    owned: list[Obj] = []
    for pod in pods:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        ref = controller_of(pod)
        if ref is not None:
            if ref.get("uid") != owner_uid:
                continue
            if selects(labels):
                owned.append(pod)
            elif not is_deleting(pod):
                plan.release.append(pod)
        elif selects(labels) and not is_deleting(pod) and not owner_deleting and is_active(pod):
            plan.adopt.append(pod)
            owned.append(pod)
    active = [p for p in owned if is_active(p)]
    if owner_deleting:
        plan.active = active
        return plan
    diff = len(active) - replicas
    if diff < 0:
        plan.create = -diff
    elif diff > 0:
        plan.delete = sorted(active, key=deletion_rank)[:diff]
    doomed = {id(p) for p in plan.delete}
    plan.active = [p for p in active if id(p) not in doomed]
    return plan


def replica_status(owner: Obj, active: list[Obj], *, min_ready_seconds: int, now: float) -> dict[str, Any]:
    template_labels = (((owner.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
    status: dict[str, Any] = {
        "replicas": len(active),
        "fullyLabeledReplicas": sum(
            1
            for p in active
            if all(((p.get("metadata") or {}).get("labels") or {}).get(k) == v for k, v in template_labels.items())
        ),
        "readyReplicas": sum(1 for p in active if is_ready(p)),
        "availableReplicas": sum(1 for p in active if is_available(p, min_ready_seconds, now)),
        "observedGeneration": int((owner.get("metadata") or {}).get("generation") or 1),
    }
    conditions = (owner.get("status") or {}).get("conditions")
    if conditions:
        status["conditions"] = conditions
    return status


def status_changed(current: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> bool:
    current = current or {}
    return any(current.get(k, 0 if k != "conditions" else None) != v for k, v in desired.items())


class _ReplicaControllerBase(Controller):
    resource: Resource = REPLICASETS
    # Bounded burst of concurrent creates per reconcile (slow start, 1, 2, 4 …) so a failing
    # template does not fire hundreds of doomed requests.
    max_burst = 64

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.owners = self.watch_own(self.resource)
        self.pods: Informer = self.watch_related(PODS, self._owner_keys_of_pod)

    def selects(self, owner: Obj) -> Selects:
        raise NotImplementedError

    def _owner_keys_of_pod(self, pod: Obj) -> list[str]:
        ns = (pod.get("metadata") or {}).get("namespace")
        ref = controller_of(pod)
        if ref is not None:
            if ref.get("kind") == self.resource.kind:
                return [f"{ns}/{ref.get('name')}"]
            return []
        # An orphan: every owner whose selector matches may adopt it.
        labels = (pod.get("metadata") or {}).get("labels") or {}
        keys = []
        for owner in self.owners.list():
            if (owner.get("metadata") or {}).get("namespace") != ns:
                continue
            try:
                if self.selects(owner)(labels):
                    keys.append(f"{ns}/{owner['metadata']['name']}")
            except SelectorError:
                continue
        return keys

    def pods_in(self, namespace: str) -> list[Obj]:
        return [p for p in self.pods.list() if (p.get("metadata") or {}).get("namespace") == namespace]

    async def reconcile(self, key: str) -> float | None:
        owner = self.owners.get(key)
        if owner is None:
            return None  # the garbage collector deletes the pods of a deleted owner
        ns, _ = split_key(key)
        assert ns is not None
        try:
            selects = self.selects(owner)
        except SelectorError as err:
            log.warning("%s %s: %s", self.resource.kind, key, err)
            return None
        spec = owner.get("spec") or {}
        replicas = int(spec.get("replicas", 1))
        plan = plan_replicas(
            owner["metadata"]["uid"], selects, replicas, self.pods_in(ns), owner_deleting=is_deleting(owner)
        )
        await self._adopt_and_release(owner, plan)
        if plan.create:
            await self._create(owner, ns, plan.create)
        if plan.delete:
            await self._delete(ns, plan.delete)
        # Status reflects the cache, which now includes our own writes (or the key is re-queued).
        now = self.ctx.now()
        min_ready = int(spec.get("minReadySeconds") or 0)
        uid = owner["metadata"]["uid"]
        active = [p for p in self.pods_in(ns) if is_active(p) and (controller_of(p) or {}).get("uid") == uid]
        status = replica_status(owner, active, min_ready_seconds=min_ready, now=now)
        if status_changed(owner.get("status"), status):
            await self._write_status(owner, status)
        waits = [w for p in active if (w := seconds_until_available(p, min_ready, now)) is not None]
        return min(waits) if waits else None

    async def _adopt_and_release(self, owner: Obj, plan: ReplicaPlan) -> None:
        for pod in plan.adopt:
            await adopt(self.client, PODS, pod, owner)
        for pod in plan.release:
            await release(self.client, PODS, pod, owner["metadata"]["uid"])

    async def _create(self, owner: Obj, ns: str, count: int) -> None:
        template = (owner.get("spec") or {}).get("template") or {}
        base = owner["metadata"]["name"]
        ref = owner_ref(owner)
        made: list[str] = []
        batch = 1
        remaining = min(count, 500)
        while remaining > 0:
            n = min(batch, remaining)
            pods = [
                pod_from_template(template, name=f"{base}-{random_suffix()}", namespace=ns, owner_ref=ref)
                for _ in range(n)
            ]
            results = await asyncio.gather(*(self.client.create(PODS, p, ns) for p in pods), return_exceptions=True)
            errors = [r for r in results if isinstance(r, BaseException)]
            made += [
                f"{ns}/{p['metadata']['name']}"
                for p, r in zip(pods, results, strict=True)
                if not isinstance(r, BaseException)
            ]
            if errors:
                await wait_cache(self.pods, created_seen(self.pods, made))
                await self.events.record(owner, "Warning", "FailedCreate", str(errors[0]), now=self.ctx.now())
                raise errors[0]
            remaining -= n
            batch = min(batch * 2, self.max_burst)
        await self.events.record(owner, "Normal", "SuccessfulCreate", f"Created {len(made)} pod(s)", now=self.ctx.now())
        await wait_cache(self.pods, created_seen(self.pods, made))

    async def _delete(self, ns: str, pods: list[Obj]) -> None:
        async def one(pod: Obj) -> None:
            with contextlib.suppress(NotFound):
                await self.client.delete(PODS, pod["metadata"]["name"], ns)

        await asyncio.gather(*(one(p) for p in pods))
        await wait_cache(self.pods, deleted_seen(self.pods, [f"{ns}/{p['metadata']['name']}" for p in pods]))

    async def _write_status(self, owner: Obj, status: dict[str, Any]) -> None:
        meta = owner["metadata"]
        with contextlib.suppress(NotFound):
            await self.client.patch(
                self.resource, meta["name"], {"status": status}, meta["namespace"], subresource="status"
            )


class ReplicaSetController(_ReplicaControllerBase):
    name = "replicaset"
    resource = REPLICASETS

    def selects(self, owner: Obj) -> Selects:
        selector = (owner.get("spec") or {}).get("selector")
        if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
            raise SelectorError("empty selector selects nothing")
        return lambda labels: matches(selector, labels)


class ReplicationControllerController(_ReplicaControllerBase):
    name = "replicationcontroller"
    resource = REPLICATIONCONTROLLERS

    def selects(self, owner: Obj) -> Selects:
        spec = owner.get("spec") or {}
        # An RC without a selector selects its template's labels (API defaulting).
        selector = spec.get("selector") or ((spec.get("template") or {}).get("metadata") or {}).get("labels")
        if not selector:
            raise SelectorError("empty selector selects nothing")
        return lambda labels: map_matches(selector, labels)
