"""Leader election through a `coordination.k8s.io/v1` Lease, so two control planes never both act.

A candidate takes the Lease when it is free or when its record has not changed for
`lease_duration` as measured by the candidate's own monotonic clock (no cross-machine clock
comparison, as client-go does). The leader renews every `retry_period`; if it cannot renew within
`renew_deadline` it stops leading *before* anyone else may take over (renew_deadline < lease_duration).
Every write carries the Lease's resourceVersion, so two candidates racing get one Conflict.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from controlplane.client import AlreadyExists, ApiError, KubeClient, NotFound
from controlplane.controllers.timeutil import micro_time
from controlplane.resources import LEASES, NAMESPACES

log = logging.getLogger(__name__)


class LeaderElector:
    def __init__(
        self,
        client: KubeClient,
        *,
        identity: str,
        namespace: str,
        name: str,
        lease_duration: float,
        renew_deadline: float,
        retry_period: float,
    ) -> None:
        self.client = client
        self.identity = identity
        self.namespace = namespace
        self.name = name
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self.is_leader = False

    def _spec(self, acquire_time: str | None, transitions: int) -> dict[str, Any]:
        now = micro_time(time.time())
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.lease_duration)),
            "acquireTime": acquire_time or now,
            "renewTime": now,
            "leaseTransitions": transitions,
        }

    async def try_acquire_or_renew(self) -> bool:
        """One attempt; True when this candidate holds the Lease afterwards."""
        try:
            lease = await self.client.get(LEASES, self.name, self.namespace)
        except NotFound:
            body = {"metadata": {"name": self.name, "namespace": self.namespace}, "spec": self._spec(None, 0)}
            try:
                await self.client.create(LEASES, body, self.namespace)
            except NotFound:
                await self._ensure_namespace()
                return False
            except AlreadyExists:
                return False
            self._observe(body["spec"])
            return True
        spec = lease.get("spec") or {}
        self._observe(spec)
        holder = spec.get("holderIdentity")
        mine = holder == self.identity
        expired = time.monotonic() - self._observed_at > float(spec.get("leaseDurationSeconds") or self.lease_duration)
        if holder and not mine and not expired:
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if mine else 1)
        lease["spec"] = self._spec(spec.get("acquireTime") if mine else None, transitions)
        await self.client.update(LEASES, lease)  # Conflict → another candidate won this round
        self._observe(lease["spec"])
        return True

    def _observe(self, spec: dict[str, Any]) -> None:
        record = (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("leaseTransitions"))
        if record != self._observed:
            self._observed = record
            self._observed_at = time.monotonic()

    async def _ensure_namespace(self) -> None:
        try:
            await self.client.create(NAMESPACES, {"metadata": {"name": self.namespace}})
        except ApiError as err:
            log.debug("creating namespace %s: %s", self.namespace, err)

    async def _attempt(self) -> bool:
        try:
            return await self.try_acquire_or_renew()
        except ApiError as err:
            log.info("leader election: %s", err)
            return False

    async def run(self, lead: Callable[[], Coroutine[Any, Any, None]], stop: asyncio.Event) -> None:
        """Campaign until `stop`; while leading, run `lead()` (cancelled when leadership is lost)."""
        while not stop.is_set():
            if not await self._attempt():
                await _sleep_or_stop(stop, self.retry_period)
                continue
            log.info("leader election: %s became leader of %s/%s", self.identity, self.namespace, self.name)
            self.is_leader = True
            task = asyncio.create_task(lead(), name="leader-work")
            try:
                await self._renew_loop(stop, task)
            finally:
                self.is_leader = False
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            if not stop.is_set():
                log.warning("leader election: %s lost leadership", self.identity)
        await self.release()

    async def _renew_loop(self, stop: asyncio.Event, task: asyncio.Task[None]) -> None:
        last_renew = time.monotonic()
        while not stop.is_set() and not task.done():
            await _sleep_or_stop(stop, self.retry_period)
            if stop.is_set():
                return
            if await self._attempt():
                last_renew = time.monotonic()
            elif time.monotonic() - last_renew > self.renew_deadline:
                return
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error("leader work failed", exc_info=task.exception())

    async def release(self) -> None:
        """Give the Lease up on a clean stop so a standby takes over without waiting it out."""
        try:
            lease = await self.client.get(LEASES, self.name, self.namespace)
            if (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            lease["spec"]["holderIdentity"] = None
            lease["spec"]["leaseDurationSeconds"] = 1
            await self.client.update(LEASES, lease)
        except ApiError as err:
            log.debug("releasing lease: %s", err)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
