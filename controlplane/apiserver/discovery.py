"""Discovery documents (`/api`, `/apis`, `/api/v1`, `/apis/<g>/<v>`, `/version`) and the OpenAPI v3
index kubectl consults before writes. All pure: built from the resource table.

Why OpenAPI v3 with paths only: kubectl asks the v3 document of a group-version whether the PATCH
operation of a kind takes the `fieldValidation` query parameter; when it does, kubectl leaves field
validation to the server and skips its client-side schema check (which needs the protobuf v2
document). With no component schemas, `kubectl apply` computes strategic merge patches from its
built-in types, which know every kind we serve."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from controlplane.apiserver import openapi_models
from controlplane.apiserver.reviews import REVIEWS
from controlplane.resources import ALL_RESOURCES, Resource, by_group_version

_SERVED: tuple[Resource, ...] = (*ALL_RESOURCES, *REVIEWS)


def _by_group_version() -> dict[str, list[Resource]]:
    """The stored resources (the shared table) plus the review APIs this server answers."""
    out = by_group_version()
    for res in REVIEWS:
        out.setdefault(res.group_version, []).append(res)
    return out


GIT_VERSION = "v1.32.0-tinykube"


def version_info() -> dict[str, str]:
    return {
        "major": "1",
        "minor": "32",
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "python",
        "compiler": "cpython",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _groups() -> dict[str, list[str]]:
    """group -> versions, in table order, core excluded."""
    out: dict[str, list[str]] = {}
    for res in _SERVED:
        if res.group:
            versions = out.setdefault(res.group, [])
            if res.version not in versions:
                versions.append(res.version)
    return out


def api_group_list() -> dict[str, Any]:
    groups = []
    for group, versions in _groups().items():
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        groups.append({"name": group, "versions": gvs, "preferredVersion": gvs[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(group: str) -> dict[str, Any] | None:
    for g in api_group_list()["groups"]:
        if g["name"] == group:
            return {"kind": "APIGroup", "apiVersion": "v1", **g}
    return None


@dataclass(frozen=True)
class _Sub:
    kind: str
    verbs: tuple[str, ...]
    group: str | None = None  # when the subresource speaks another group's kind (Scale, Eviction…)
    version: str | None = None


def _subresource(res: Resource, sub: str) -> _Sub:
    special = {
        "scale": _Sub("Scale", ("get", "patch", "update"), "autoscaling", "v1"),
        "binding": _Sub("Binding", ("create",)),
        "eviction": _Sub("Eviction", ("create",), "policy", "v1"),
        "token": _Sub("TokenRequest", ("create",), "authentication.k8s.io", "v1"),
        "log": _Sub("Pod", ("get",)),
        "exec": _Sub("PodExecOptions", ("create", "get")),
        "attach": _Sub("PodAttachOptions", ("create", "get")),
        "portforward": _Sub("PodPortForwardOptions", ("create", "get")),
        "proxy": _Sub(res.kind, ("create", "delete", "get", "patch", "update")),
        "finalize": _Sub(res.kind, ("update",)),
    }
    return special.get(sub, _Sub(res.kind, ("get", "patch", "update")))


def _hash(res: Resource) -> str:
    return hashlib.sha256(f"{res.group_version}/{res.kind}".encode()).hexdigest()[:12]


def _resource_entries(res: Resource) -> list[dict[str, Any]]:
    main: dict[str, Any] = {
        "name": res.plural,
        "singularName": res.singular,
        "namespaced": res.namespaced,
        "kind": res.kind,
        "verbs": list(res.verbs),
        "storageVersionHash": _hash(res),
    }
    if res.short_names:
        main["shortNames"] = list(res.short_names)
    if res.categories:
        main["categories"] = list(res.categories)
    entries = [main]
    for name in res.subresources:
        sub = _subresource(res, name)
        entry: dict[str, Any] = {
            "name": f"{res.plural}/{name}",
            "singularName": "",
            "namespaced": res.namespaced,
            "kind": sub.kind,
            "verbs": list(sub.verbs),
        }
        if sub.group is not None:
            entry["group"], entry["version"] = sub.group, sub.version
        entries.append(entry)
    return entries


# -- aggregated discovery (apidiscovery.k8s.io/v2): one document for /api, one for /apis ---------

AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def wants_aggregated(accept: str) -> bool:
    """kubectl asks for v2 first; clients that do not get the legacy documents."""
    for part in accept.split(","):
        params = {p.strip() for p in part.split(";")[1:]}
        if {"g=apidiscovery.k8s.io", "v=v2", "as=APIGroupDiscoveryList"} <= params:
            return True
    return False


def _aggregated_resource(res: Resource) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resource": res.plural,
        "responseKind": {"group": res.group, "version": res.version, "kind": res.kind},
        "scope": "Namespaced" if res.namespaced else "Cluster",
        "singularResource": res.singular,
        "verbs": list(res.verbs),
    }
    if res.short_names:
        out["shortNames"] = list(res.short_names)
    if res.categories:
        out["categories"] = list(res.categories)
    subs = []
    for name in res.subresources:
        sub = _subresource(res, name)
        group = res.group if sub.group is None else sub.group
        version = res.version if sub.version is None else sub.version
        subs.append(
            {
                "subresource": name,
                "responseKind": {"group": group, "version": version, "kind": sub.kind},
                "verbs": list(sub.verbs),
            }
        )
    if subs:
        out["subresources"] = subs
    return out


def aggregated_discovery(*, core: bool) -> dict[str, Any]:
    groups: dict[str, dict[str, list[Resource]]] = {}
    for gv, resources in _by_group_version().items():
        group, _, version = gv.rpartition("/")
        if (group == "") == core:
            groups.setdefault(group, {})[version] = resources
    items = [
        {
            "metadata": {"name": group, "creationTimestamp": None},
            "versions": [
                {
                    "version": version,
                    "resources": [_aggregated_resource(r) for r in resources],
                    "freshness": "Current",
                }
                for version, resources in versions.items()
            ],
        }
        for group, versions in groups.items()
    ]
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items}


def api_resource_list(group_version: str) -> dict[str, Any] | None:
    resources = _by_group_version().get(group_version)
    if resources is None:
        return None
    items = [e for res in resources for e in _resource_entries(res)]
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": items}


# -- OpenAPI v3 -----------------------------------------------------------------------------------


def _openapi_path(group_version: str) -> str:
    return "api/v1" if group_version == "v1" else f"apis/{group_version}"


def openapi_v3_doc(group_version: str) -> dict[str, Any] | None:
    resources = _by_group_version().get(group_version)
    if resources is None:
        return None
    paths: dict[str, Any] = {}
    field_validation = {
        "name": "fieldValidation",
        "in": "query",
        "description": "Strict, Warn or Ignore: how the server treats unknown or duplicate fields",
        "schema": {"type": "string", "uniqueItems": True},
    }
    ok = {"200": {"description": "OK"}}
    for res in resources:
        group, version = res.group, res.version
        gvk = {"group": group, "version": version, "kind": res.kind}
        path = "/" + _openapi_path(group_version)
        if res.namespaced:
            path += "/namespaces/{namespace}"

        def op(
            action: str, *, with_validation: bool, gvk: dict[str, str] = gvk, kind: str = res.kind
        ) -> dict[str, Any]:
            params = [field_validation] if with_validation else []
            return {
                "operationId": f"{action}{kind}",
                "parameters": params,
                "responses": ok,
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
            }

        paths[f"{path}/{res.plural}"] = {
            "get": op("list", with_validation=False),
            "post": op("post", with_validation=True),
        }
        paths[f"{path}/{res.plural}/{{name}}"] = {
            "get": op("get", with_validation=False),
            "put": op("put", with_validation=True),
            "patch": op("patch", with_validation=True),
            "delete": op("delete", with_validation=False),
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "tinykube", "version": GIT_VERSION},
        "paths": paths,
        "components": {"schemas": openapi_models.schemas_for(resources)},
    }


def openapi_v3_root() -> dict[str, Any]:
    """The index: one entry per group-version, with a hash so clients can cache the documents."""
    paths = {}
    for gv in _by_group_version():
        doc_hash = hashlib.sha256(orjson.dumps(openapi_v3_doc(gv))).hexdigest()[:32].upper()
        paths[_openapi_path(gv)] = {"serverRelativeURL": f"/openapi/v3/{_openapi_path(gv)}?hash={doc_hash}"}
    return {"paths": paths}
