"""Garbage collector: ownerReferences across the resources that carry them.

- background: a dependent whose owners are all gone (by uid) is deleted; dangling references next
  to a live owner are removed;
- foreground: an owner with the `foregroundDeletion` finalizer gets its dependents deleted (in the
  foreground too) and loses the finalizer once none remain;
- orphan: an owner with the `orphan` finalizer has its references removed from its dependents and
  then loses the finalizer.
"Gone" is confirmed with a live GET (our caches of different resources lag each other), so an owner
created a moment before its dependents is never mistaken for a deleted one.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from typing import Any

from controlplane.client import NotFound, split_key
from controlplane.client.informer import Informer
from controlplane.controllers.base import Context, Controller, Obj, is_deleting, set_owner_refs
from controlplane.resources import (
    CONFIGMAPS,
    CONTROLLERREVISIONS,
    CRONJOBS,
    DAEMONSETS,
    DEPLOYMENTS,
    ENDPOINTS,
    ENDPOINTSLICES,
    JOBS,
    LEASES,
    NODES,
    PODS,
    REPLICASETS,
    REPLICATIONCONTROLLERS,
    SECRETS,
    SERVICES,
    STATEFULSETS,
    Resource,
    for_kind,
)

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"

GC_RESOURCES: tuple[Resource, ...] = (
    PODS,
    REPLICASETS,
    DEPLOYMENTS,
    REPLICATIONCONTROLLERS,
    DAEMONSETS,
    STATEFULSETS,
    JOBS,
    CRONJOBS,
    CONTROLLERREVISIONS,
    ENDPOINTSLICES,
    ENDPOINTS,
    SERVICES,
    CONFIGMAPS,
    SECRETS,
    LEASES,
    NODES,  # owners of node Leases; indexed so their uids resolve without a GET
)


def gc_key(res: Resource, obj_key: str) -> str:
    return f"{res.group}/{res.plural}|{obj_key}"


def parse_gc_key(key: str) -> tuple[Resource, str]:
    gp, _, obj_key = key.partition("|")
    group, _, plural = gp.partition("/")
    res = next(r for r in GC_RESOURCES if r.group == group and r.plural == plural)
    return res, obj_key


def finalizers(obj: Obj) -> list[str]:
    return list((obj.get("metadata") or {}).get("finalizers") or [])


class GarbageCollector(Controller):
    name = "garbagecollector"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        # Derived indexes, rebuilt from the informers on every start.
        self.by_uid: dict[str, tuple[Resource, str]] = {}
        self.dependents: defaultdict[str, set[tuple[Resource, str]]] = defaultdict(set)
        self._owners_of: dict[tuple[Resource, str], set[str]] = {}
        self.by_resource: dict[Resource, Informer] = {}
        for res in GC_RESOURCES:
            inf = self.informer(res)
            self.by_resource[res] = inf
            self._wire(res, inf)

    def _wire(self, res: Resource, inf: Informer) -> None:
        def on_add(obj: Obj) -> None:
            self._observe(res, obj)

        def on_update(_old: Obj, new: Obj) -> None:
            self._observe(res, new)

        def on_delete(obj: Obj) -> None:
            self._forget(res, obj)

        inf.add_handler(on_add, on_update, on_delete)

    # -- index maintenance -----------------------------------------------------------------------

    @staticmethod
    def _key_of(obj: Obj) -> str:
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace")
        return f"{ns}/{meta.get('name')}" if ns else str(meta.get("name"))

    def _observe(self, res: Resource, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        ident = (res, self._key_of(obj))
        if meta.get("uid"):
            self.by_uid[str(meta["uid"])] = ident
        owners = {str(r.get("uid")) for r in meta.get("ownerReferences") or () if r.get("uid")}
        for old in self._owners_of.get(ident, set()) - owners:
            self.dependents[old].discard(ident)
        for uid in owners:
            self.dependents[uid].add(ident)
        self._owners_of[ident] = owners
        if owners or is_deleting(obj):
            self.queue.add(gc_key(*ident))

    def _forget(self, res: Resource, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        ident = (res, self._key_of(obj))
        uid = str(meta.get("uid") or "")
        if self.by_uid.get(uid) == ident:
            del self.by_uid[uid]
        for owner in self._owners_of.pop(ident, set()):
            self.dependents[owner].discard(ident)
            # An owner waiting in foreground deletion may now be free to go.
            if owner in self.by_uid:
                self.queue.add(gc_key(*self.by_uid[owner]))
        for dep in self.dependents.pop(uid, set()):
            self.queue.add(gc_key(*dep))

    # -- reconcile ------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        res, obj_key = parse_gc_key(key)
        obj = self.by_resource[res].get(obj_key)
        if obj is None:
            return None
        meta = obj["metadata"]
        uid = str(meta.get("uid") or "")
        if is_deleting(obj) and FOREGROUND in finalizers(obj):
            return await self._foreground(res, obj, uid)
        if is_deleting(obj) and ORPHAN in finalizers(obj):
            await self._orphan(res, obj, uid)
            return None
        refs = meta.get("ownerReferences") or []
        if not refs or is_deleting(obj):
            return None
        gone = [r for r in refs if not await self._owner_exists(r, meta.get("namespace"))]
        if not gone:
            return None
        if len(gone) == len(refs):
            with contextlib.suppress(NotFound):
                await self.client.delete(
                    res,
                    meta["name"],
                    meta.get("namespace"),
                    propagation_policy="Background",
                    preconditions={"uid": uid},
                )
        else:
            gone_uids = {r.get("uid") for r in gone}
            await set_owner_refs(self.client, res, obj, [r for r in refs if r.get("uid") not in gone_uids])
        return None

    async def _owner_exists(self, ref: dict[str, Any], namespace: str | None) -> bool:
        uid = str(ref.get("uid") or "")
        if uid in self.by_uid:
            return True
        res = for_kind(str(ref.get("apiVersion") or ""), str(ref.get("kind") or ""))
        if res is None:
            return True  # a kind we do not know: never delete on a guess
        try:
            owner = await self.client.get(res, str(ref.get("name")), namespace if res.namespaced else None)
        except NotFound:
            return False
        return str((owner.get("metadata") or {}).get("uid")) == uid

    def _dependent_objects(self, uid: str) -> list[tuple[Resource, Obj]]:
        out = []
        for res, k in list(self.dependents.get(uid, ())):
            dep = self.by_resource[res].get(k)
            if dep is not None:
                out.append((res, dep))
        return out

    async def _foreground(self, res: Resource, obj: Obj, uid: str) -> float | None:
        pending = self._dependent_objects(uid)
        for dep_res, dep in pending:
            if not is_deleting(dep):
                ns, name = split_key(self._key_of(dep))
                with contextlib.suppress(NotFound):
                    await self.client.delete(dep_res, name, ns, propagation_policy="Foreground")
        if pending:
            return 2.0  # dependents' deletion events re-queue us; the timer is a safety net
        await self._drop_finalizer(res, obj, FOREGROUND)
        return None

    async def _orphan(self, res: Resource, obj: Obj, uid: str) -> None:
        for dep_res, dep in self._dependent_objects(uid):
            # No resourceVersion guard here: a lost race must fail loudly (retry), never leave a
            # reference that would make the dependent look orphaned once the owner is gone.
            meta = dep["metadata"]
            refs = [r for r in meta.get("ownerReferences") or [] if r.get("uid") != uid]
            with contextlib.suppress(NotFound):
                await self.client.patch(
                    dep_res, meta["name"], {"metadata": {"ownerReferences": refs}}, meta.get("namespace")
                )
        await self._drop_finalizer(res, obj, ORPHAN)

    async def _drop_finalizer(self, res: Resource, obj: Obj, finalizer: str) -> None:
        meta = obj["metadata"]
        remaining = [f for f in finalizers(obj) if f != finalizer]
        with contextlib.suppress(NotFound):
            await self.client.patch(
                res,
                meta["name"],
                {"metadata": {"finalizers": remaining or None, "resourceVersion": meta.get("resourceVersion")}},
                meta.get("namespace"),
            )
