"""The sync loop: informer handlers feed the change trackers; `sync_once` turns what changed into one
backend transaction, deletes stale UDP conntrack entries and updates the health-check listeners.

Faults stay local to the object that caused them (issue 9, point 7):
- an invalid Service/EndpointSlice raises InvalidObject in its handler: logged, recorded as an event,
  its last valid version stays programmed;
- a transaction the kernel refuses is applied again Service by Service (bisection) on top of the last
  state the kernel accepted; the Services it still refuses keep their previous rules ("rejected") until
  they change again, and every other Service is programmed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from netproxy.config import ProxyConfig
from netproxy.conntrack import stale_filters
from netproxy.errors import ApplyError, InvalidObject
from netproxy.healthcheck import HealthServer, health_ports
from netproxy.interfaces import Backend, Conntrack, EventRecorder, ObjectSource
from netproxy.model import DesiredState
from netproxy.tracker import EndpointsChangeTracker, ServiceChangeTracker, take_changes

log = logging.getLogger("netproxy")


def overlay(base: DesiredState, top: DesiredState, services: Collection[str]) -> DesiredState:
    """`base` with the listed Services (ports and endpoints) taken from `top`."""
    svcs, eps = dict(base.services), dict(base.endpoints)
    for s in services:
        if s in top.services:
            svcs[s] = top.services[s]
        else:
            svcs.pop(s, None)
        if s in top.endpoints:
            eps[s] = top.endpoints[s]
        else:
            eps.pop(s, None)
    return DesiredState(services=svcs, endpoints=eps)


@dataclass
class SyncResult:
    full: bool
    changed: frozenset[str]
    rejected: frozenset[str] = frozenset()  # Services the kernel refused this time
    seconds: float = 0.0
    recovered: bool = False  # the one-transaction apply failed; Services were then applied one by one


@dataclass
class _PendingEvent:
    obj: Mapping[str, Any]
    reason: str
    message: str


@dataclass
class Proxier:
    backend: Backend
    config: ProxyConfig
    conntrack: Conntrack
    events: EventRecorder
    health: HealthServer | None = None
    full_sync_period: float = 300.0
    clock: Callable[[], float] = time.monotonic
    services: ServiceChangeTracker = field(default_factory=ServiceChangeTracker)
    endpoints: EndpointsChangeTracker = field(default_factory=EndpointsChangeTracker)
    need_full_sync: bool = True
    applied: DesiredState = field(default_factory=DesiredState)  # what the kernel holds
    rejected: set[str] = field(default_factory=set)  # Services pinned to their `applied` version
    dirty: asyncio.Event = field(default_factory=asyncio.Event)
    _events: list[_PendingEvent] = field(default_factory=list)
    _carry: set[str] = field(default_factory=set)  # changed Services not yet in the kernel
    _last_full: float = float("-inf")

    # --- informer handlers (synchronous: they only record) --------------------------------------

    def watch(self, services: ObjectSource, slices: ObjectSource) -> None:
        """Feed the trackers from a Service and an EndpointSlice informer."""
        services.add_handler(self.on_service, self.on_service, self.on_service_delete)
        slices.add_handler(self.on_slice, self.on_slice, self.on_slice_delete)

    def _record(self, action: Callable[[Mapping[str, Any]], None], obj: Mapping[str, Any]) -> None:
        try:
            action(obj)
        except InvalidObject as err:
            log.warning("ignoring invalid object, its previous rules stay: %s", err)
            self._events.append(_PendingEvent(obj, "InvalidObject", str(err)))
        self.dirty.set()

    def on_service(self, obj: Mapping[str, Any], new: Mapping[str, Any] | None = None) -> None:
        self._record(self.services.update, new if new is not None else obj)

    def on_service_delete(self, obj: Mapping[str, Any]) -> None:
        self._record(self.services.delete, obj)

    def on_slice(self, obj: Mapping[str, Any], new: Mapping[str, Any] | None = None) -> None:
        self._record(self.endpoints.update, new if new is not None else obj)

    def on_slice_delete(self, obj: Mapping[str, Any]) -> None:
        self._record(self.endpoints.delete, obj)

    # --- syncing ---------------------------------------------------------------------------------

    def sync_once(self) -> SyncResult:
        start = self.clock()
        update = take_changes(self.services, self.endpoints)
        changed = set(update.changed) | self._carry
        self.rejected -= changed  # a Service that changed again gets another chance
        target = overlay(update.state, self.applied, self.rejected)
        full = self.need_full_sync or start - self._last_full >= self.full_sync_period
        self._carry = changed
        try:
            programmed, newly_rejected, recovered = self._apply(target, changed, full=full)
        except ApplyError as err:
            log.error("sync failed, kernel keeps the previous rules; full sync next: %s", err)
            self.need_full_sync = True
            return SyncResult(full, frozenset(changed), seconds=self.clock() - start)
        for flt in stale_filters(self.applied, programmed, changed, self.config.node_name):
            self.conntrack.delete(flt)
        self.applied = programmed
        self.rejected |= set(newly_rejected)
        self._carry = set()
        if full:
            self.need_full_sync = False
            self._last_full = start
        for name, why in sorted(newly_rejected.items()):
            ns, svc_name = name.split("/", 1)
            obj = {"kind": "Service", "apiVersion": "v1", "metadata": {"namespace": ns, "name": svc_name}}
            message = f"the kernel refused this Service's rules; its previous rules stay: {why}"
            self._events.append(_PendingEvent(obj, "FailedToProgram", message))
        if self.health is not None:
            self.health.desired = health_ports(programmed, self.config.node_name)
        return SyncResult(full, frozenset(changed), frozenset(newly_rejected), self.clock() - start, recovered)

    def _apply(
        self, target: DesiredState, changed: set[str], *, full: bool
    ) -> tuple[DesiredState, dict[str, str], bool]:
        """Program `target`; returns what the kernel now holds, the Services left at their `applied`
        version because the kernel refused their rules (with the kernel tool's message), and whether
        the single transaction failed and the per-Service recovery ran."""
        try:
            self.backend.sync(target, previous=self.applied, changed=None if full else changed)
            return target, {}, False
        except ApplyError as err:
            log.warning("kernel refused a sync (%s); finding the Services responsible", err)
            if not changed and not full:
                raise
        # Reset the kernel to the state it last accepted (a full sync rewrites whatever it holds now). If
        # even that fails, the fault is not one Service's: raise, and retry with a full sync later.
        self.backend.sync(self.applied, previous=self.applied, changed=None)
        if full:
            changed = changed | set(target.services) | set(self.applied.services)
        good, bad = self.applied, dict[str, str]()

        def attempt(group: Sequence[str]) -> None:
            nonlocal good
            trial = overlay(good, target, group)
            try:
                self.backend.sync(trial, previous=good, changed=group)
                good = trial
            except ApplyError as err:
                if len(group) == 1:
                    log.error("kernel refused the rules of Service %s; its previous rules stay: %s", group[0], err)
                    bad[group[0]] = str(err)
                else:
                    attempt(group[: len(group) // 2])
                    attempt(group[len(group) // 2 :])

        attempt(sorted(changed))
        return good, bad, True

    async def flush_events(self) -> None:
        events, self._events = self._events, []
        for ev in events:
            try:
                await self.events.warning(ev.obj, ev.reason, ev.message)
            except Exception as err:  # an event that cannot be recorded must not stop syncing
                log.warning("could not record event %s: %s", ev.reason, err)

    async def run(self, stop: asyncio.Event, *, min_interval: float = 1.0) -> None:
        """Sync whenever something changed, at most once per `min_interval`, and at least every
        `full_sync_period` (a full sync)."""
        while not stop.is_set():
            await _first_of(self.dirty, stop, timeout=max(0.0, self._next_full_in()))
            if stop.is_set():
                break
            self.dirty.clear()
            result = self.sync_once()
            log.info(
                "synced %s: %d changed Services in %.3f s",
                "full" if result.full else "partial",
                len(result.changed),
                result.seconds,
            )
            if self.need_full_sync:
                self.dirty.set()  # retry
            await self.flush_events()
            if self.health is not None:
                await self.health.reconcile()
            await _first_of(stop, timeout=min_interval)  # rate limit; a stop ends it early

    def _next_full_in(self) -> float:
        return self._last_full + self.full_sync_period - self.clock()


async def _first_of(*events: asyncio.Event, timeout: float) -> None:
    """Return when any event is set or after `timeout` seconds."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
