"""Static pods: manifests in a directory (`--manifests`) run on this node without the scheduler; each
gets a mirror pod in the API (annotation `kubernetes.io/config.mirror`) so kubectl can see it.

The pod's uid is a hash of the node name and the manifest, so an edited manifest is a new pod (the old
one is torn down) and a noded restart finds the same uid again."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import uuid
from typing import Any

import yaml

from controlplane.client.errors import AlreadyExists, ApiError, NotFound
from controlplane.resources import PODS
from noded.errors import ManifestError
from noded.interfaces import ApiClient
from noded.manager import PodManager

log = logging.getLogger(__name__)

SOURCE_ANNOTATION = "kubernetes.io/config.source"
HASH_ANNOTATION = "kubernetes.io/config.hash"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
_SUFFIXES = (".yaml", ".yml", ".json")


def is_mirror(pod: dict[str, Any]) -> bool:
    return MIRROR_ANNOTATION in ((pod.get("metadata") or {}).get("annotations") or {})


def static_pod(doc: Any, node_name: str) -> dict[str, Any]:
    """A manifest → the pod noded runs: named `<name>-<node>`, bound here, with a stable uid."""
    if not isinstance(doc, dict) or doc.get("kind") != "Pod" or not (doc.get("metadata") or {}).get("name"):
        raise ManifestError("not a Pod with a name")
    digest = hashlib.sha256(node_name.encode() + json.dumps(doc, sort_keys=True).encode()).hexdigest()
    uid = str(uuid.UUID(digest[:32]))
    meta = dict(doc["metadata"])
    meta["name"] = f"{meta['name']}-{node_name}"
    meta.setdefault("namespace", "default")
    meta["uid"] = uid
    meta["annotations"] = {**(meta.get("annotations") or {}), SOURCE_ANNOTATION: "file", HASH_ANNOTATION: uid}
    spec = {**(doc.get("spec") or {}), "nodeName": node_name}
    spec.setdefault("restartPolicy", "Always")
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": {}}


def read_manifests(directory: str, node_name: str) -> dict[str, dict[str, Any]]:
    """uid → pod for every readable manifest; unreadable ones are logged and skipped."""
    pods: dict[str, dict[str, Any]] = {}
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return pods
    for name in names:
        if name.startswith(".") or not name.endswith(_SUFFIXES):
            continue
        path = os.path.join(directory, name)
        try:
            with open(path) as f:
                pod = static_pod(yaml.safe_load(f), node_name)
        except (OSError, yaml.YAMLError, ManifestError) as err:
            log.warning("static pod manifest %s skipped: %s", path, err)
            continue
        pods[pod["metadata"]["uid"]] = pod
    return pods


def mirror_of(pod: dict[str, Any], node_uid: str) -> dict[str, Any]:
    meta = pod["metadata"]
    annotations = {**meta["annotations"], MIRROR_ANNOTATION: meta["uid"]}
    mirror_meta = {k: v for k, v in meta.items() if k not in ("uid", "resourceVersion")}
    mirror_meta["annotations"] = annotations
    if node_uid:
        node_name = pod["spec"]["nodeName"]
        mirror_meta["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": node_uid, "controller": True}
        ]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": mirror_meta, "spec": pod["spec"]}


class StaticPods:
    def __init__(self, api: ApiClient, manager: PodManager, directory: str, node_name: str, node_uid: str) -> None:
        self.api = api
        self.manager = manager
        self.directory = directory
        self.node_name = node_name
        self.node_uid = node_uid
        self.pods: dict[str, dict[str, Any]] = {}

    async def sync(self) -> None:
        """Start pods of new manifests, stop those of removed ones, keep every mirror pod present."""
        current = read_manifests(self.directory, self.node_name)
        for uid, pod in self.pods.items():
            if uid not in current:
                worker = self.manager.workers.get(uid)
                if worker is not None:
                    worker.delete()
                await self._delete_mirror(pod)
        for uid, pod in current.items():
            if uid not in self.pods:
                self.manager.pod_changed(pod, static=True)
            await self._ensure_mirror(pod)
        self.pods = current

    async def _ensure_mirror(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        try:
            existing = await self.api.get(PODS, meta["name"], meta["namespace"])
        except NotFound:
            existing = None
        except ApiError as err:
            log.debug("mirror pod check failed: %s", err)
            return
        if existing is not None:
            annotations = existing["metadata"].get("annotations") or {}
            if annotations.get(MIRROR_ANNOTATION) == meta["uid"] and not existing["metadata"].get("deletionTimestamp"):
                return
            with contextlib.suppress(NotFound):
                await self.api.delete(PODS, meta["name"], meta["namespace"], grace_period_seconds=0)
        with contextlib.suppress(AlreadyExists, ApiError):
            await self.api.create(PODS, mirror_of(pod, self.node_uid), meta["namespace"])

    async def _delete_mirror(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        with contextlib.suppress(NotFound, ApiError):
            await self.api.delete(PODS, meta["name"], meta["namespace"], grace_period_seconds=0)

    async def run(self, period: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.sync()
            except (ApiError, OSError) as err:
                log.warning("static pods sync failed: %s", err)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(period):
                    await stop.wait()
