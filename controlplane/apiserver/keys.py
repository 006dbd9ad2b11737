"""Where objects live in the store: `/registry/<group|core>/<plural>/[<namespace>/]<name>`."""

from __future__ import annotations

from controlplane.resources import Resource


def collection_prefix(res: Resource, namespace: str | None = None) -> str:
    base = f"/registry/{res.group or 'core'}/{res.plural}/"
    if res.namespaced and namespace:
        base += f"{namespace}/"
    return base


def object_key(res: Resource, namespace: str | None, name: str) -> str:
    return collection_prefix(res, namespace) + name
