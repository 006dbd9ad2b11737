"""Change trackers: informer handlers feed objects in, the sync loop takes out which Services changed.

Each tracker keeps, per Service `ns/name`, the value as of the last `checkpoint()` and the latest one
(`Change(previous, current)`); a change that was undone before the next sync (add then delete) is not
reported at all. Both are level-based: an update carries the whole object, never a delta.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from netproxy.model import (
    DesiredState,
    EndpointsByPort,
    ServicePort,
    merge_slices,
    object_key,
    service_ports,
    slice_endpoints,
    slice_service,
)

T = TypeVar("T")
Ports = tuple[ServicePort, ...]
NO_ENDPOINTS: EndpointsByPort = {}


@dataclass(frozen=True)
class Change(Generic[T]):
    previous: T
    current: T


class _Pending(Generic[T]):
    """The bookkeeping both trackers share: latest value per service and pending (previous, current)."""

    def __init__(self, empty: T) -> None:
        self._empty = empty
        self.current: dict[str, T] = {}
        self._pending: dict[str, Change[T]] = {}

    def set(self, service: str, value: T) -> None:
        previous = self._pending[service].previous if service in self._pending else self.get(service)
        self._pending[service] = Change(previous, value)
        if value == self._empty:
            self.current.pop(service, None)
        else:
            self.current[service] = value

    def get(self, service: str) -> T:
        return self.current.get(service, self._empty)

    def checkpoint(self) -> dict[str, Change[T]]:
        out = {k: c for k, c in self._pending.items() if c.previous != c.current}
        self._pending = {}
        return out


class ServiceChangeTracker:
    """Services by `ns/name`. An invalid Service keeps its last valid ports (its rules stay) and the
    InvalidObject propagates to the caller, which logs it and records an event."""

    def __init__(self) -> None:
        self._state: _Pending[Ports] = _Pending(())

    def update(self, obj: Mapping[str, Any]) -> None:
        key = object_key(obj, "Service")
        self._state.set(key, service_ports(obj))

    def delete(self, obj: Mapping[str, Any]) -> None:
        self._state.set(object_key(obj, "Service"), ())

    def checkpoint(self) -> dict[str, Change[Ports]]:
        return self._state.checkpoint()

    def current(self) -> Mapping[str, Ports]:
        return self._state.current


class EndpointsChangeTracker:
    """EndpointSlices grouped by the Service they belong to; reports Services whose merged endpoints changed."""

    def __init__(self) -> None:
        self._state: _Pending[EndpointsByPort] = _Pending(NO_ENDPOINTS)
        self._slices: dict[str, dict[str, EndpointsByPort]] = {}  # service -> slice key -> endpoints
        self._owner: dict[str, str] = {}  # slice key -> service

    def update(self, obj: Mapping[str, Any]) -> None:
        key = object_key(obj, "EndpointSlice")
        service = slice_service(obj)
        endpoints = slice_endpoints(obj) if service else {}
        self._forget(key)
        if service:
            self._owner[key] = service
            self._slices.setdefault(service, {})[key] = endpoints
            self._recompute(service)

    def delete(self, obj: Mapping[str, Any]) -> None:
        self._forget(object_key(obj, "EndpointSlice"))

    def _forget(self, key: str) -> None:
        service = self._owner.pop(key, None)
        if service is not None:
            slices = self._slices[service]
            slices.pop(key, None)
            if not slices:
                del self._slices[service]
            self._recompute(service)

    def _recompute(self, service: str) -> None:
        self._state.set(service, merge_slices(list(self._slices.get(service, {}).values())))

    def checkpoint(self) -> dict[str, Change[EndpointsByPort]]:
        return self._state.checkpoint()

    def current(self) -> Mapping[str, EndpointsByPort]:
        return self._state.current


@dataclass(frozen=True)
class StateUpdate:
    state: DesiredState
    changed: frozenset[str]  # Services whose ports or endpoints differ from the previous state


def take_changes(services: ServiceChangeTracker, endpoints: EndpointsChangeTracker) -> StateUpdate:
    """Checkpoint both trackers into a new DesiredState plus the set of changed Services."""
    changed = frozenset(services.checkpoint()) | frozenset(endpoints.checkpoint())
    state = DesiredState(services=dict(services.current()), endpoints=dict(endpoints.current()))
    return StateUpdate(state=state, changed=changed)
