"""NamespaceLifecycle: nothing is created in a namespace that is missing or being terminated, and the
namespaces the system depends on cannot be deleted."""

from __future__ import annotations

from controlplane.admission.errors import Forbidden, NotFound
from controlplane.admission.interfaces import Attributes, ObjectReader
from controlplane.resources import EVENTS, EVENTS_V1, NAMESPACES
from controlplane.validation.shapes import as_dict

__all__ = ["IMMORTAL_NAMESPACES", "NamespaceLifecycle"]

IMMORTAL_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})


class NamespaceLifecycle:
    name = "NamespaceLifecycle"

    def __init__(self, reader: ObjectReader, *, immortal: frozenset[str] = IMMORTAL_NAMESPACES) -> None:
        self._reader = reader
        self._immortal = immortal

    async def admit(self, attrs: Attributes) -> None:
        res = attrs.resource
        if res is NAMESPACES:
            if attrs.operation == "DELETE" and attrs.name in self._immortal:
                raise Forbidden(NAMESPACES, attrs.name, "this namespace may not be deleted")
            return
        if attrs.operation != "CREATE" or not res.namespaced or not attrs.namespace:
            return
        if attrs.subresource:  # e.g. pods/eviction, pods/binding act on objects that already exist
            return
        namespace = await self._reader.get(NAMESPACES, "", attrs.namespace)
        if namespace is None:
            raise NotFound(NAMESPACES, attrs.namespace)
        terminating = as_dict(namespace.get("status")).get("phase") == "Terminating" or bool(
            as_dict(namespace.get("metadata")).get("deletionTimestamp")
        )
        # Events about the teardown itself must still be recordable, as in Kubernetes.
        if terminating and res not in (EVENTS, EVENTS_V1):
            raise Forbidden(
                res,
                attrs.name,
                f"unable to create new content in namespace {attrs.namespace} because it is being terminated",
            )
