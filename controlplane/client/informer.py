"""`Informer`: list + watch one resource into a local cache and tell handlers what changed.

The cache is the controllers' view of the world (keyed `namespace/name`). After a list it watches
from the list's resourceVersion; when the watch ends it re-watches from the last version seen
(bookmarks advance it); when the server says that version is gone (410 / Expired) it relists and
reports the difference as add/update/delete, so handlers never miss a deletion. Transport failures
back off exponentially (capped) instead of spinning.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from controlplane.client.client import KubeClient
from controlplane.client.errors import ApiError, Gone
from controlplane.client.types import object_key
from controlplane.resources import Resource

log = logging.getLogger(__name__)

Obj = dict[str, Any]
MaybeAwaitable = Awaitable[None] | None


@dataclass
class Handler:
    on_add: Callable[[Obj], MaybeAwaitable] | None = None
    on_update: Callable[[Obj, Obj], MaybeAwaitable] | None = None
    on_delete: Callable[[Obj], MaybeAwaitable] | None = None


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


class Informer:
    def __init__(
        self,
        client: KubeClient,
        res: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        watch_timeout: int = 300,
        min_backoff: float = 0.2,
        max_backoff: float = 10.0,
    ) -> None:
        self.client = client
        self.resource = res
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.watch_timeout = watch_timeout
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.resource_version: str | None = None
        self.relists = 0
        self._cache: dict[str, Obj] = {}
        self._handlers: list[Handler] = []
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._just_listed = False
        self._replays: set[asyncio.Future[None]] = set()

    # -- public API ----------------------------------------------------------------------------

    def add_handler(
        self,
        on_add: Callable[[Obj], MaybeAwaitable] | None = None,
        on_update: Callable[[Obj, Obj], MaybeAwaitable] | None = None,
        on_delete: Callable[[Obj], MaybeAwaitable] | None = None,
    ) -> None:
        """Handlers may be plain or async functions. One added after sync first sees every cached object."""
        handler = Handler(on_add, on_update, on_delete)
        self._handlers.append(handler)
        if self._synced.is_set() and on_add is not None:
            for obj in list(self._cache.values()):
                self._spawn_if_awaitable(on_add(obj))

    async def start(self) -> None:
        """Starts the list/watch loop in the background and returns at once (see `wait_for_sync`)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"informer-{self.resource.plural}")

    async def wait_for_sync(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._synced.wait(), timeout)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    def get(self, key: str) -> Obj | None:
        return self._cache.get(key)

    def list(self) -> builtins.list[Obj]:
        return list(self._cache.values())

    def keys(self) -> builtins.list[str]:
        return list(self._cache)

    # -- loop ----------------------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = self.min_backoff
        need_list = True
        while True:
            try:
                self._just_listed = need_list
                if need_list:
                    await self._relist()
                    need_list = False
                started = asyncio.get_running_loop().time()
                events = await self._watch_once()
                if events == 0 and asyncio.get_running_loop().time() - started < 1.0:
                    # A watch the server ends at once (shutting down, misbehaving): never spin on it.
                    await asyncio.sleep(backoff)
                    backoff = min(self.max_backoff, backoff * 2)
                else:
                    backoff = self.min_backoff
            except Gone:
                log.info("%s: resourceVersion %s expired, relisting", self.resource.plural, self.resource_version)
                if need_list is False and self._just_listed:
                    # Gone right after a fresh list: the server is not keeping up; do not spin.
                    await asyncio.sleep(backoff)
                    backoff = min(self.max_backoff, backoff * 2)
                need_list = True
            except ApiError as err:
                log.warning("%s: list/watch failed (%s), retrying in %.1fs", self.resource.plural, err, backoff)
                await asyncio.sleep(backoff)
                backoff = min(self.max_backoff, backoff * 2)

    async def _relist(self) -> None:
        listing = await self.client.list_all(
            self.resource, self.namespace, label_selector=self.label_selector, field_selector=self.field_selector
        )
        self.relists += 1
        fresh = {object_key(o): o for o in listing.get("items") or []}
        kind = self.resource.kind
        for obj in fresh.values():
            obj.setdefault("kind", kind)
            obj.setdefault("apiVersion", self.resource.group_version)
        old = self._cache
        self._cache = fresh
        self.resource_version = str((listing.get("metadata") or {}).get("resourceVersion") or "") or None
        for key, obj in old.items():
            if key not in fresh:
                await self._dispatch("DELETED", obj, None)
        for key, obj in fresh.items():
            prev = old.get(key)
            if prev is None:
                await self._dispatch("ADDED", obj, None)
            elif _rv(prev) != _rv(obj):
                await self._dispatch("MODIFIED", obj, prev)
        self._synced.set()

    async def _watch_once(self) -> int:
        """One watch request until the server ends it; returns how many events it delivered."""
        count = 0
        stream = self.client.watch(
            self.resource,
            self.namespace,
            resource_version=self.resource_version,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            timeout_seconds=self.watch_timeout,
        )
        async with stream:
            async for ev in stream:
                count += 1
                rv = _rv(ev.object)
                if ev.type == "BOOKMARK":
                    self.resource_version = rv or self.resource_version
                    continue
                ev.object.setdefault("kind", self.resource.kind)
                ev.object.setdefault("apiVersion", self.resource.group_version)
                key = object_key(ev.object)
                prev = self._cache.get(key)
                if ev.type == "DELETED":
                    self._cache.pop(key, None)
                    await self._dispatch("DELETED", ev.object, None)
                elif ev.type in ("ADDED", "MODIFIED"):
                    self._cache[key] = ev.object
                    await self._dispatch("MODIFIED" if prev is not None else "ADDED", ev.object, prev)
                if rv:
                    self.resource_version = rv
        return count

    async def _dispatch(self, etype: str, obj: Obj, prev: Obj | None) -> None:
        for h in self._handlers:
            try:
                if etype == "ADDED" and h.on_add:
                    result = h.on_add(obj)
                elif etype == "MODIFIED" and h.on_update:
                    result = h.on_update(prev or obj, obj)
                elif etype == "DELETED" and h.on_delete:
                    result = h.on_delete(obj)
                else:
                    continue
                if inspect.isawaitable(result):
                    await result
            except Exception:
                # A broken handler must not stop the informer (other handlers still need events).
                log.exception("%s: %s handler failed", self.resource.plural, etype)

    def _spawn_if_awaitable(self, result: MaybeAwaitable) -> None:
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._replays.add(task)
            task.add_done_callback(self._replays.discard)
