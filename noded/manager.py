"""The pod manager: one `PodWorker` per pod bound to this node, a PLEG-like relist of the runtime that
wakes the worker of any pod whose containers changed state, and clean-up of sandboxes that belong to
no known pod (deleted while noded was down, or leftovers of a crash)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from noded.types import LABEL_MANAGED, LABEL_POD_UID, ContainerState
from noded.worker import NodeContext, PodWorker

log = logging.getLogger(__name__)


class PodManager:
    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.workers: dict[str, PodWorker] = {}  # pod uid → worker
        self._last_seen: dict[str, frozenset[tuple[str, ContainerState]]] = {}
        self._finishing: set[asyncio.Task[None]] = set()

    # -- pod source events ---------------------------------------------------------------------
    def pod_changed(self, pod: dict[str, Any], *, static: bool = False) -> None:
        uid = pod["metadata"]["uid"]
        worker = self.workers.get(uid)
        if worker is None:
            worker = PodWorker(self.ctx, pod, static=static)
            self.workers[uid] = worker
            worker.start()
            self._reap_when_done(worker)
        else:
            worker.update(pod)

    def pod_deleted(self, pod: dict[str, Any]) -> None:
        worker = self.workers.get(pod["metadata"]["uid"])
        if worker is not None:
            worker.delete()
        else:
            # Never seen (deleted while noded was down): tear down whatever the runtime has for it.
            worker = PodWorker(self.ctx, pod)
            worker.deleted = True
            self.workers[worker.uid] = worker
            worker.start()
            self._reap_when_done(worker)

    def _reap_when_done(self, worker: PodWorker) -> None:
        async def reap() -> None:
            await worker.done.wait()
            if self.workers.get(worker.uid) is worker:
                del self.workers[worker.uid]

        task = asyncio.get_running_loop().create_task(reap())
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    # -- runtime side --------------------------------------------------------------------------
    async def relist(self) -> None:
        """One PLEG pass: wake workers whose containers or sandboxes changed since the last pass."""
        rt = self.ctx.runtime
        seen: dict[str, set[tuple[str, ContainerState]]] = {}
        for c in await rt.list_containers(labels={LABEL_MANAGED: "true"}):
            seen.setdefault(c.labels.get(LABEL_POD_UID, ""), set()).add((c.id, c.state))
        for s in await rt.list_pod_sandbox({LABEL_MANAGED: "true"}):
            seen.setdefault(s.uid, set()).add((s.id, ContainerState(s.state.value)))
        current = {uid: frozenset(v) for uid, v in seen.items()}
        for uid, state in current.items():
            if self._last_seen.get(uid) != state and uid in self.workers:
                self.workers[uid].wake()
        self._last_seen = current

    async def pleg(self, period: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.relist()
            except Exception as err:
                log.warning("relist failed: %s", err)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(period):
                    await stop.wait()

    async def remove_orphans(self, known_uids: set[str]) -> list[str]:
        """Stop and remove every managed sandbox (and its containers) of a pod noded does not know.
        Call only after the pod source has synced, or live pods would be killed."""
        rt = self.ctx.runtime
        removed = []
        for s in await rt.list_pod_sandbox({LABEL_MANAGED: "true"}):
            if s.uid in known_uids or s.uid in self.workers:
                continue
            log.info("removing sandbox %s of unknown pod %s/%s (uid %s)", s.id, s.namespace, s.name, s.uid)
            for c in await rt.list_containers(sandbox_id=s.id):
                with contextlib.suppress(Exception):
                    await rt.stop_container(c.id, 0)
                await rt.remove_container(c.id)
            await rt.stop_pod_sandbox(s.id)
            await rt.remove_pod_sandbox(s.id)
            self.ctx.volumes.cleanup(s.uid)
            removed.append(s.uid)
        return removed

    async def stop(self) -> None:
        """Stop every worker, leaving pods running (a restarted noded picks them up)."""
        await asyncio.gather(*(w.stop() for w in list(self.workers.values())))
        for task in list(self._finishing):
            task.cancel()
        self.workers.clear()
