"""`Table` responses (meta.k8s.io/v1) for `kubectl get`; columns from controlplane/printers.py."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from controlplane import printers
from controlplane.apiserver.errors import BadRequest
from controlplane.resources import Resource

Obj = dict[str, Any]


def wants_table(request: web.Request) -> bool:
    return "as=Table" in request.headers.get("Accept", "")


class TableMaker:
    def table(self, res: Resource, objects: list[Obj], request: web.Request, resource_version: str) -> Obj:
        include = request.query.get("includeObject", "Metadata")
        if include not in ("None", "Metadata", "Object"):
            raise BadRequest(f"invalid includeObject: {include}")
        # All columns: kubectl itself hides the priority > 0 ones unless -o wide.
        return printers.to_table(res, objects, wide=True, include_object=include, resource_version=resource_version)
