"""The shape every control loop shares: shared informers → a rate-limited queue of keys → workers
calling `reconcile(key)`.

A reconcile reads the informer caches (never remembers what it did last time), compares desired
and actual state and acts; an exception re-queues the key with per-key exponential back-off, a
success forgets the back-off, and returning a number of seconds asks to be looked at again later (timers such as
minReadySeconds or a toleration expiring).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controlplane.client import Conflict, Informer, KubeClient, NotFound, RateLimitedQueue, ShutDown, object_key
from controlplane.client.metrics import register
from controlplane.controllers.config import ControllerConfig
from controlplane.controllers.events import EventRecorder
from controlplane.resources import Resource

log = logging.getLogger(__name__)

Obj = dict[str, Any]


class SharedInformers:
    """One informer per resource (cluster-wide), shared by every controller that needs it."""

    def __init__(self, client: KubeClient, *, watch_timeout: int = 300) -> None:
        self.client = client
        self.watch_timeout = watch_timeout
        self._informers: dict[Resource, Informer] = {}

    def get(self, res: Resource) -> Informer:
        inf = self._informers.get(res)
        if inf is None:
            inf = Informer(self.client, res, watch_timeout=self.watch_timeout)
            self._informers[res] = inf
        return inf

    async def start(self) -> None:
        for inf in list(self._informers.values()):
            await inf.start()

    async def stop(self) -> None:
        for inf in self._informers.values():
            await inf.stop()


@dataclass
class Context:
    client: KubeClient
    informers: SharedInformers
    config: ControllerConfig
    now: Callable[[], float] = field(default=time.time)

    def recorder(self, component: str) -> EventRecorder:
        return EventRecorder(self.client, component)


class Controller:
    """Subclasses set `name`, register informer handlers in `__init__` (usually via `enqueue`) and
    implement `reconcile`. Returning a float re-queues the key after that many seconds."""

    name = "controller"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.queue = register(
            RateLimitedQueue(self.name, base_delay=ctx.config.queue_base_delay, max_delay=ctx.config.queue_max_delay)
        )
        self.events = ctx.recorder(self.name)
        self.informers: list[Informer] = []

    def informer(self, res: Resource) -> Informer:
        """The shared informer of `res`, remembered so `run` waits for its cache before working."""
        inf = self.ctx.informers.get(res)
        if inf not in self.informers:
            self.informers.append(inf)
        return inf

    # -- helpers for handler wiring ------------------------------------------------------------

    def enqueue(self, obj: Obj) -> None:
        self.queue.add(object_key(obj))

    def watch_own(self, res: Resource) -> Informer:
        """Reconcile the key of every added/changed/deleted object of `res`."""
        inf = self.informer(res)
        inf.add_handler(self.enqueue, lambda _old, new: self.enqueue(new), self.enqueue)
        return inf

    def watch_related(self, res: Resource, keys: Callable[[Obj], list[str]]) -> Informer:
        """Reconcile the keys `keys(obj)` maps a related object to (e.g. a pod → its owner)."""
        inf = self.informer(res)

        def push(obj: Obj) -> None:
            for key in keys(obj):
                self.queue.add(key)

        def update(old: Obj, new: Obj) -> None:
            push(old)
            push(new)

        inf.add_handler(push, update, push)
        return inf

    async def reconcile(self, key: str) -> float | None:
        raise NotImplementedError

    # -- the loop -------------------------------------------------------------------------------

    async def run(self, workers: int) -> None:
        """Waits for this controller's caches (only its own: one slow resource must not hold up the
        others), then runs `workers` concurrent workers until cancelled."""
        try:
            await asyncio.gather(*(inf.wait_for_sync() for inf in self.informers))
            log.info("%s: caches synced, %d worker(s)", self.name, workers)
            await asyncio.gather(*(self._worker() for _ in range(workers)))
        finally:
            self.queue.shutdown()

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                after = await self.reconcile(key)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                # Back off per key: a reconcile that keeps failing costs one try per back-off step.
                log.warning("%s: reconcile %s failed (%s: %s)", self.name, key, type(err).__name__, err)
                log.debug("traceback", exc_info=True)
                self.queue.add_rate_limited(key)
            else:
                self.queue.forget(key)
                if after is not None:
                    self.queue.add_after(key, max(after, 0.001))
            finally:
                self.queue.done(key)


def controller_of(obj: Obj) -> Obj | None:
    """The ownerReference with controller=true, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return dict(ref)
    return None


def owner_ref(owner: Obj, *, block: bool = True) -> Obj:
    meta = owner["metadata"]
    return {
        "apiVersion": owner.get("apiVersion"),
        "kind": owner.get("kind"),
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": block,
    }


def is_deleting(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


async def set_owner_refs(client: KubeClient, res: Resource, obj: Obj, refs: list[Obj]) -> None:
    """Adopt/release: rewrite ownerReferences guarded by the cached resourceVersion. Losing the race
    (NotFound/Conflict) is fine: the change that beat us re-queues the owner."""
    meta = obj["metadata"]
    with contextlib.suppress(NotFound, Conflict):
        await client.patch(
            res,
            meta["name"],
            {"metadata": {"ownerReferences": refs, "resourceVersion": meta.get("resourceVersion")}},
            meta.get("namespace"),
        )


async def adopt(client: KubeClient, res: Resource, obj: Obj, owner: Obj) -> None:
    await set_owner_refs(client, res, obj, [*(obj["metadata"].get("ownerReferences") or []), owner_ref(owner)])


async def release(client: KubeClient, res: Resource, obj: Obj, owner_uid: str) -> None:
    refs = [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid") != owner_uid]
    await set_owner_refs(client, res, obj, refs)
