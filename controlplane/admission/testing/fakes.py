"""An in-memory object store satisfying `ObjectReader` (and auth's `CredentialSource` shape async)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from controlplane.admission.interfaces import Attributes, ObjectReader
from controlplane.resources import Resource


class FakeReader:
    def __init__(self) -> None:
        self._objects: dict[tuple[str, str, str], dict[str, Any]] = {}

    def add(self, resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        namespace = meta.get("namespace", "") if resource.namespaced else ""
        self._objects[(resource.plural, namespace, meta["name"])] = obj
        return obj

    async def get(self, resource: Resource, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self._objects.get((resource.plural, namespace if resource.namespaced else "", name))

    async def list(self, resource: Resource, namespace: str) -> Iterable[Mapping[str, Any]]:
        return [
            o for (plural, ns, _), o in sorted(self._objects.items()) if plural == resource.plural and ns == namespace
        ]


@dataclass
class FakeAttributes:
    operation: str
    resource: Resource
    namespace: str | None
    name: str
    obj: dict[str, Any] | None = None
    old: dict[str, Any] | None = None
    subresource: str = ""
    dry_run: bool = False
    user: Any = field(default=None)


_reader: ObjectReader = FakeReader()
_attrs: Attributes = FakeAttributes("CREATE", Resource("", "v1", "Pod", "pods", True), "default", "p")
