"""Deployment: owns ReplicaSets, one per pod template (named `<deployment>-<pod-template-hash>`),
and moves replicas from the old ones to the new one (RollingUpdate within maxSurge/maxUnavailable,
or Recreate). `kubectl rollout undo` patches the template back to an old ReplicaSet's; that RS then
becomes the new one and gets the next revision number.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from typing import Any

from controlplane.client import AlreadyExists, NotFound, split_key
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
from controlplane.controllers.deploymentutil import (
    DESIRED_REPLICAS,
    HASH_LABEL,
    MAX_REPLICAS,
    NOT_COPIED,
    REVISION,
    compute_status,
    deadline_in,
    history_to_delete,
    new_rs_replicas,
    old_rs_scale_down,
    resolve_fenceposts,
    revision,
    same_template,
    spec_replicas,
    template_hash,
)
from controlplane.controllers.expectations import created_seen, wait_cache
from controlplane.controllers.podutil import phase
from controlplane.controllers.selectors import SelectorError, matches
from controlplane.resources import DEPLOYMENTS, PODS, REPLICASETS

log = logging.getLogger(__name__)


class DeploymentController(Controller):
    name = "deployment"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.deployments = self.watch_own(DEPLOYMENTS)
        self.rss: Informer = self.watch_related(REPLICASETS, self._keys_of_rs)
        self.pods: Informer = self.watch_related(PODS, self._keys_of_pod)

    # -- event mapping -------------------------------------------------------------------------

    def _keys_of_rs(self, rs: Obj) -> list[str]:
        ns = rs["metadata"].get("namespace")
        ref = controller_of(rs)
        if ref is not None:
            return [f"{ns}/{ref['name']}"] if ref.get("kind") == "Deployment" else []
        labels = rs["metadata"].get("labels") or {}
        out = []
        for d in self.deployments.list():
            if d["metadata"].get("namespace") == ns:
                try:
                    if matches((d.get("spec") or {}).get("selector"), labels):
                        out.append(f"{ns}/{d['metadata']['name']}")
                except SelectorError:
                    continue
        return out

    def _keys_of_pod(self, pod: Obj) -> list[str]:
        # Only Recreate waits on pods; map a pod to its RS's deployment.
        ref = controller_of(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return []
        rs = self.rss.get(f"{pod['metadata'].get('namespace')}/{ref['name']}")
        return self._keys_of_rs(rs) if rs is not None and controller_of(rs) else []

    # -- reconcile -----------------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        d = self.deployments.get(key)
        if d is None or is_deleting(d):
            return None
        ns, _ = split_key(key)
        assert ns is not None
        spec = d.get("spec") or {}
        selector = spec.get("selector")
        if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
            return None  # rejected by validation; never select everything
        all_rs = await self._claim(d, ns)
        template = spec.get("template") or {}
        new_rs = next(
            (rs for rs in all_rs if same_template((rs.get("spec") or {}).get("template") or {}, template)), None
        )
        old_rs = [rs for rs in all_rs if rs is not new_rs]
        replicas = int(spec.get("replicas", 1))
        strategy = spec.get("strategy") or {}
        recreate = strategy.get("type") == "Recreate"
        surge, unavailable = (0, replicas) if recreate else resolve_fenceposts(replicas, strategy)
        created = False

        if spec.get("paused"):
            # Paused: no new RS and no rollout; only a lone active RS follows spec.replicas.
            active = [rs for rs in all_rs if spec_replicas(rs) > 0]
            if new_rs is not None and len(active) <= 1 and spec_replicas(new_rs) != replicas:
                await self._scale(d, new_rs, replicas, surge)
        else:
            max_old = max((revision(rs) for rs in old_rs), default=0)
            if new_rs is None:
                new_rs = await self._create_rs(d, ns, max_old + 1)
                created = True
                all_rs.append(new_rs)
            else:
                await self._sync_new_rs(d, new_rs, max_old)
            await self._sync_revision(d, new_rs)
            if recreate:
                await self._recreate(d, new_rs, old_rs, replicas)
            else:
                await self._rolling(d, new_rs, old_rs, all_rs, replicas=replicas, surge=surge, unavailable=unavailable)
            limit = int(spec.get("revisionHistoryLimit", 10))
            for rs in history_to_delete([self._fresh(rs) for rs in old_rs], limit):
                with contextlib.suppress(NotFound):
                    await self.client.delete(REPLICASETS, rs["metadata"]["name"], ns)

        fresh_all = [self._fresh(rs) for rs in all_rs]
        fresh_new = self._fresh(new_rs) if new_rs is not None else None
        now = self.ctx.now()
        status = compute_status(d, fresh_new, fresh_all, max_unavailable=unavailable, now=now, created_new=created)
        if status != {k: v for k, v in (d.get("status") or {}).items() if k in status}:
            try:
                await self.client.patch(
                    DEPLOYMENTS, d["metadata"]["name"], {"status": status}, ns, subresource="status"
                )
            except NotFound:
                return None
        return deadline_in(d, status, now)

    def _fresh(self, rs: Obj) -> Obj:
        return self.rss.get(f"{rs['metadata']['namespace']}/{rs['metadata']['name']}") or rs

    async def _claim(self, d: Obj, ns: str) -> list[Obj]:
        """RSs this deployment controls; adopts matching orphans and releases owned non-matching ones."""
        uid = d["metadata"]["uid"]
        selector = d["spec"]["selector"]
        owned: list[Obj] = []
        for rs in self.rss.list():
            if rs["metadata"].get("namespace") != ns:
                continue
            ref = controller_of(rs)
            labels = rs["metadata"].get("labels") or {}
            if ref is not None and ref.get("uid") == uid:
                if matches(selector, labels):
                    owned.append(rs)
                elif not is_deleting(rs):
                    await release(self.client, REPLICASETS, rs, uid)
            elif ref is None and not is_deleting(rs) and matches(selector, labels):
                await adopt(self.client, REPLICASETS, rs, d)
                owned.append(rs)
        return owned

    def _rs_annotations(self, d: Obj, rev: int, replicas: int, surge: int) -> dict[str, str]:
        annotations = {k: v for k, v in (d["metadata"].get("annotations") or {}).items() if k not in NOT_COPIED}
        annotations[REVISION] = str(rev)
        annotations[DESIRED_REPLICAS] = str(replicas)
        annotations[MAX_REPLICAS] = str(replicas + surge)
        return annotations

    async def _create_rs(self, d: Obj, ns: str, rev: int) -> Obj:
        spec = d["spec"]
        template = copy.deepcopy(spec.get("template") or {})
        collisions = int((d.get("status") or {}).get("collisionCount") or 0)
        pth = template_hash(template, collisions)
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = pth
        selector = copy.deepcopy(spec["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = pth
        replicas = int(spec.get("replicas", 1))
        surge = (
            0
            if (spec.get("strategy") or {}).get("type") == "Recreate"
            else resolve_fenceposts(replicas, spec.get("strategy") or {})[0]
        )
        name = f"{d['metadata']['name']}-{pth}"
        body = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": dict(template["metadata"]["labels"]),
                "annotations": self._rs_annotations(d, rev, replicas, surge),
                "ownerReferences": [owner_ref(d)],
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": int(spec.get("minReadySeconds") or 0),
                "selector": selector,
                "template": template,
            },
        }
        try:
            rs = await self.client.create(REPLICASETS, body, ns)
        except AlreadyExists:
            existing = await self.client.get(REPLICASETS, name, ns)
            if same_template((existing.get("spec") or {}).get("template") or {}, template) and (
                (controller_of(existing) or {}).get("uid") == d["metadata"]["uid"]
            ):
                return existing
            # A different template hashed to the same name: bump collisionCount and retry.
            await self.client.patch(
                DEPLOYMENTS,
                d["metadata"]["name"],
                {"status": {"collisionCount": collisions + 1}},
                ns,
                subresource="status",
            )
            raise
        await wait_cache(self.rss, created_seen(self.rss, [f"{ns}/{name}"]))
        await self.events.record(
            d, "Normal", "ScalingReplicaSet", f"Created new replica set {name}", now=self.ctx.now()
        )
        return rs

    async def _sync_new_rs(self, d: Obj, new_rs: Obj, max_old: int) -> None:
        """The new RS carries the highest revision (a rollback target gets renumbered), the
        deployment's copyable annotations and its minReadySeconds."""
        spec = d["spec"]
        rev = revision(new_rs) if revision(new_rs) > max_old else max_old + 1
        want = {k: v for k, v in (d["metadata"].get("annotations") or {}).items() if k not in NOT_COPIED}
        want[REVISION] = str(rev)
        have = new_rs["metadata"].get("annotations") or {}
        patch: dict[str, Any] = {}
        if any(have.get(k) != v for k, v in want.items()):
            patch["metadata"] = {"annotations": want}
        min_ready = int(spec.get("minReadySeconds") or 0)
        if int((new_rs.get("spec") or {}).get("minReadySeconds") or 0) != min_ready:
            patch["spec"] = {"minReadySeconds": min_ready}
        if patch:
            updated = await self.client.patch(
                REPLICASETS, new_rs["metadata"]["name"], patch, new_rs["metadata"]["namespace"]
            )
            new_rs.clear()
            new_rs.update(updated)

    async def _sync_revision(self, d: Obj, new_rs: Obj) -> None:
        rev = str(revision(new_rs))
        if (d["metadata"].get("annotations") or {}).get(REVISION) != rev:
            await self.client.patch(
                DEPLOYMENTS,
                d["metadata"]["name"],
                {"metadata": {"annotations": {REVISION: rev}}},
                d["metadata"]["namespace"],
            )

    async def _scale(self, d: Obj, rs: Obj, replicas: int, surge: int) -> None:
        spec_n = int(d["spec"].get("replicas", 1))
        meta = rs["metadata"]
        await self.client.patch(
            REPLICASETS,
            meta["name"],
            {
                "metadata": {"annotations": {DESIRED_REPLICAS: str(spec_n), MAX_REPLICAS: str(spec_n + surge)}},
                "spec": {"replicas": replicas},
            },
            meta["namespace"],
        )
        key = f"{meta['namespace']}/{meta['name']}"
        # Later steps (and the next reconcile) must see the new size, not a stale one.
        await wait_cache(
            self.rss, lambda: spec_replicas(self.rss.get(key) or {"spec": {"replicas": replicas}}) == replicas
        )
        verb = "up" if replicas > spec_replicas(rs) else "down"
        await self.events.record(
            d,
            "Normal",
            "ScalingReplicaSet",
            f"Scaled {verb} replica set {meta['name']} to {replicas}",
            now=self.ctx.now(),
        )

    async def _recreate(self, d: Obj, new_rs: Obj, old_rs: list[Obj], replicas: int) -> None:
        for rs in old_rs:
            if spec_replicas(self._fresh(rs)) > 0:
                await self._scale(d, rs, 0, 0)
        old_uids = {rs["metadata"]["uid"] for rs in old_rs}
        ns = d["metadata"]["namespace"]
        running = [
            p
            for p in self.pods.list()
            if p["metadata"].get("namespace") == ns
            and (controller_of(p) or {}).get("uid") in old_uids
            and phase(p) not in ("Succeeded", "Failed")
        ]
        if running:
            return  # old pods still terminating: their deletion re-queues us
        if spec_replicas(self._fresh(new_rs)) != replicas:
            await self._scale(d, new_rs, replicas, 0)

    async def _rolling(
        self, d: Obj, new_rs: Obj, old_rs: list[Obj], all_rs: list[Obj], *, replicas: int, surge: int, unavailable: int
    ) -> None:
        fresh_all = [self._fresh(rs) for rs in all_rs]
        fresh_new = self._fresh(new_rs)
        target = new_rs_replicas(replicas, surge, fresh_new, fresh_all)
        if target != spec_replicas(fresh_new):
            await self._scale(d, new_rs, target, surge)
            fresh_new = self._fresh(new_rs)
        fresh_old = [self._fresh(rs) for rs in old_rs]
        by_name = {rs["metadata"]["name"]: rs for rs in fresh_old}
        for step in old_rs_scale_down(replicas, unavailable, fresh_new, fresh_old):
            await self._scale(d, by_name[step.name], step.replicas, surge)
