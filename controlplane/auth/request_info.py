"""HTTP method + path + query → `RequestAttributes`: the pure parser RBAC depends on.

Follows the Kubernetes request-info rules: `/api/v1/...` and `/apis/<group>/<version>/...` are resource
requests (unless they stop at the group/version, which is discovery); `namespaces/<ns>/` selects the
namespace; GET without a name is `list`, or `watch` with `?watch=true` or the legacy `/watch/` prefix;
DELETE without a name is `deletecollection`; everything else is a non-resource URL whose verb is the
lower-cased method.
"""

from __future__ import annotations

from collections.abc import Mapping

from controlplane.auth.types import RequestAttributes, UserInfo

__all__ = ["request_attributes"]

_METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "GET": "get", "HEAD": "get", "DELETE": "delete"}
# Subresources of a namespace: /api/v1/namespaces/<name>/status names the namespace object itself.
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


def request_attributes(method: str, path: str, query: Mapping[str, str], user: UserInfo) -> RequestAttributes:
    method = method.upper()
    parts = [p for p in path.split("/") if p]
    non_resource = RequestAttributes(user=user, verb=method.lower(), path=path, resource_request=False)

    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return non_resource
    if not rest:
        return non_resource

    verb = _METHOD_VERBS.get(method)
    if verb is None:
        return non_resource
    legacy_watch = rest[0] == "watch"
    if legacy_watch:
        rest = rest[1:]
        if not rest:
            return non_resource

    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]

    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""

    if legacy_watch:
        verb = "watch"
    elif verb == "get" and not name:
        verb = "watch" if query.get("watch", "").lower() in ("true", "1") else "list"
    elif verb == "delete" and not name:
        verb = "deletecollection"

    if verb in ("list", "watch") and not name:
        # A list of one object by field selector is authorized like a get of that name.
        selector = query.get("fieldSelector", "")
        for term in selector.split(","):
            field, sep, value = term.partition("=")
            value = value.removeprefix("=")  # "==" is the same operator as "="
            if sep and field.strip() == "metadata.name" and value:
                name = value.strip()
    return RequestAttributes(
        user=user,
        verb=verb,
        api_group=group,
        api_version=version,
        resource=resource,
        subresource=subresource,
        namespace=namespace,
        name=name,
        path=path,
    )
