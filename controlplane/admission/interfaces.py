"""What admission plugins read: the request, and stored objects through a read-only source."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from controlplane.resources import Resource

__all__ = ["AdmissionPlugin", "Attributes", "ObjectReader"]


class Attributes(Protocol):
    """One write request; the API server's `apiserver.policy.AdmissionRequest` satisfies it."""

    @property
    def operation(self) -> str: ...  # CREATE, UPDATE, DELETE, CONNECT
    @property
    def resource(self) -> Resource: ...
    @property
    def subresource(self) -> str: ...
    @property
    def namespace(self) -> str | None: ...
    @property
    def name(self) -> str: ...
    @property
    def obj(self) -> dict[str, Any] | None: ...  # mutating plugins edit it in place
    @property
    def old(self) -> dict[str, Any] | None: ...
    @property
    def dry_run(self) -> bool: ...


class ObjectReader(Protocol):
    """Stored objects, as the server's cache holds them. Async so that a source may fall back to the
    store on a cache miss (a namespace created a moment ago must not look missing)."""

    async def get(self, resource: Resource, namespace: str, name: str) -> Mapping[str, Any] | None: ...

    async def list(self, resource: Resource, namespace: str) -> Iterable[Mapping[str, Any]]: ...


class AdmissionPlugin(Protocol):
    name: str

    async def admit(self, attrs: Attributes) -> None:
        """Mutate `attrs.obj` and/or raise an AdmissionError to reject."""
