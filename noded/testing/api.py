"""An in-memory API server for noded's unit tests: objects with uid/resourceVersion, JSON merge patch,
field/label selectors of the `a=b` form, watches, and the pod deletion protocol (a bound pod gets a
deletionTimestamp and waits for the node to delete it with grace period 0)."""

from __future__ import annotations

import asyncio
import builtins
import copy
import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from controlplane.client.errors import AlreadyExists, Conflict, Gone, NotFound
from controlplane.client.types import WatchEvent
from controlplane.resources import PODS, Resource
from noded.interfaces import ApiClient

Key = tuple[str, str, str]  # plural, namespace, name


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _lookup(obj: dict[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return "" if cur is None else str(cur)


def _selected(obj: dict[str, Any], field_selector: str | None, label_selector: str | None) -> bool:
    for term in filter(None, (field_selector or "").split(",")):
        k, _, v = term.partition("=")
        if _lookup(obj, k) != v:
            return False
    labels = obj.get("metadata", {}).get("labels") or {}
    for term in filter(None, (label_selector or "").split(",")):
        k, _, v = term.partition("=")
        if labels.get(k) != v:
            return False
    return True


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class FakeApi:
    objects: dict[Key, dict[str, Any]] = field(default_factory=dict)
    history: list[tuple[int, WatchEvent, Key]] = field(default_factory=list)
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # verb, plural, name(/sub)
    _rv: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _changed: asyncio.Condition | None = None

    def _cond(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def _record(self, kind: str, key: Key, obj: dict[str, Any], rv: int) -> None:
        self.history.append((rv, WatchEvent(kind, copy.deepcopy(obj)), key))
        async with self._cond():
            self._cond().notify_all()

    def stored(self, res: Resource, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """Synchronous peek for assertions."""
        return self.objects.get((res.plural, namespace or "", name))

    # -- ApiClient ------------------------------------------------------------------------------
    async def get(self, res: Resource, name: str, namespace: str | None = None) -> dict[str, Any]:
        obj = self.stored(res, name, namespace)
        if obj is None:
            raise NotFound(404, "NotFound", f"{res.plural} {name!r} not found")
        return copy.deepcopy(obj)

    async def list(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
    ) -> dict[str, Any]:
        items = [
            copy.deepcopy(o)
            for (plural, ns, _), o in self.objects.items()
            if plural == res.plural and (namespace is None or ns == namespace)
            if _selected(o, field_selector, label_selector)
        ]
        rv = self.history[-1][0] if self.history else 0
        return {"kind": res.list_kind, "metadata": {"resourceVersion": str(rv)}, "items": items}

    async def create(
        self, res: Resource, obj: dict[str, Any], namespace: str | None = None, *, subresource: str | None = None
    ) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if subresource == "token":  # TokenRequest: a made-up token bound to the ServiceAccount name
            self.requests.append(("create", res.plural, f"{meta.get('name')}/token"))
            return {**obj, "status": {"token": f"token-for-{meta.get('name')}"}}
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        ns = (namespace or meta.get("namespace") or "default") if res.namespaced else ""
        if res.namespaced:
            meta["namespace"] = ns
        key = (res.plural, ns, meta["name"])
        self.requests.append(("create", res.plural, meta["name"]))
        if key in self.objects:
            raise AlreadyExists(409, "AlreadyExists", f"{res.plural} {meta['name']!r} already exists")
        rv = next(self._rv)
        meta.setdefault("uid", str(uuid.uuid4()))
        meta["resourceVersion"] = str(rv)
        meta.setdefault("creationTimestamp", _now())
        obj.setdefault("apiVersion", res.group_version)
        obj.setdefault("kind", res.kind)
        self.objects[key] = obj
        await self._record("ADDED", key, obj, rv)
        return copy.deepcopy(obj)

    async def update(self, res: Resource, obj: dict[str, Any], *, subresource: str | None = None) -> dict[str, Any]:
        meta = obj["metadata"]
        current = await self.get(res, meta["name"], meta.get("namespace"))
        return await self.patch(
            res,
            meta["name"],
            merge_patch(obj, {"metadata": {"uid": current["metadata"]["uid"]}}),
            meta.get("namespace"),
        )

    async def patch(
        self,
        res: Resource,
        name: str,
        patch: dict[str, Any] | builtins.list[Any],
        namespace: str | None = None,
        *,
        patch_type: Any = "merge",
        subresource: str | None = None,
    ) -> dict[str, Any]:
        self.requests.append(("patch", res.plural, f"{name}/{subresource}" if subresource else name))
        current = await self.get(res, name, namespace)
        if subresource == "status" and isinstance(patch, dict):
            patch = {"status": patch.get("status")}
        new = merge_patch(current, patch)
        rv = next(self._rv)
        new["metadata"]["resourceVersion"] = str(rv)
        key = (res.plural, namespace or "" if res.namespaced else "", name)
        self.objects[key] = new
        await self._record("MODIFIED", key, new, rv)
        return copy.deepcopy(new)

    async def delete(
        self,
        res: Resource,
        name: str,
        namespace: str | None = None,
        *,
        propagation_policy: str | None = None,
        grace_period_seconds: int | None = None,
        preconditions: dict[str, str] | None = None,
    ) -> dict[str, Any] | None:
        self.requests.append(("delete", res.plural, name))
        current = await self.get(res, name, namespace)
        if preconditions and preconditions.get("uid") not in (None, current["metadata"]["uid"]):
            raise Conflict(409, "Conflict", "precondition failed: uid")
        key = (res.plural, namespace or "" if res.namespaced else "", name)
        if res is PODS and current.get("spec", {}).get("nodeName") and grace_period_seconds != 0:
            grace = grace_period_seconds
            if grace is None:
                grace = current["spec"].get("terminationGracePeriodSeconds", 30)
            if "deletionTimestamp" not in current["metadata"]:
                return await self.patch(
                    res,
                    name,
                    {"metadata": {"deletionTimestamp": _now(), "deletionGracePeriodSeconds": grace}},
                    namespace,
                )
            return current
        del self.objects[key]
        rv = next(self._rv)
        current["metadata"]["resourceVersion"] = str(rv)
        await self._record("DELETED", key, current, rv)
        return current

    async def watch(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        allow_bookmarks: bool = True,
        timeout_seconds: int | None = None,
    ) -> AsyncIterator[WatchEvent]:
        since = int(resource_version or 0)
        if self.history and since and since < self.history[0][0] - 1:
            raise Gone(410, "Expired", "too old resource version")
        while True:
            for rv, event, key in list(self.history):
                if rv <= since:
                    continue
                since = rv
                if key[0] != res.plural or (namespace is not None and key[1] != namespace):
                    continue
                if _selected(event.object, field_selector, label_selector):
                    yield event
            async with self._cond():
                if not self.history or self.history[-1][0] <= since:
                    await self._cond().wait()


_: ApiClient = FakeApi()
