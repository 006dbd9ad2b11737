"""RBAC authorization over Roles, ClusterRoles and their bindings (rbac.authorization.k8s.io/v1).

The server hands the objects in through `RBACSource`, which it satisfies from its watch cache, so a
change to a binding takes effect on the next request with no invalidation protocol. Members of
`system:masters` are allowed everything without consulting RBAC, like Kubernetes does, so an admin
can always repair broken bindings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from controlplane.auth.types import MASTERS, Decision, RequestAttributes, UserInfo

__all__ = ["Authorizer", "RBACSource", "forbidden_message", "rule_allows", "subject_matches"]

Obj = Mapping[str, Any]


class RBACSource(Protocol):
    def roles(self, namespace: str) -> Iterable[Obj]: ...
    def cluster_roles(self) -> Iterable[Obj]: ...
    def role_bindings(self, namespace: str) -> Iterable[Obj]: ...
    def cluster_role_bindings(self) -> Iterable[Obj]: ...


def subject_matches(subject: Obj, user: UserInfo) -> bool:
    kind = subject.get("kind")
    name = subject.get("name", "")
    if kind == "User":
        return bool(name == user.name)
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        return user.name == f"system:serviceaccount:{subject.get('namespace', '')}:{name}"
    return False


def _matches(values: Iterable[str], wanted: str) -> bool:
    return any(v in ("*", wanted) for v in values)


def _resource_matches(resources: Iterable[str], resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    for entry in resources:
        if entry in ("*", combined):
            return True
        if subresource and entry in (f"*/{subresource}", f"{resource}/*"):
            return True
    return False


def _path_matches(urls: Iterable[str], path: str) -> bool:
    for url in urls:
        if url in ("*", path):
            return True
        if url.endswith("*") and path.startswith(url[:-1]):
            return True
    return False


def rule_allows(rule: Obj, attrs: RequestAttributes) -> bool:
    """One PolicyRule against one request (the rules of the RBAC API reference)."""
    if not _matches(rule.get("verbs") or (), attrs.verb):
        return False
    if not attrs.resource_request:
        return _path_matches(rule.get("nonResourceURLs") or (), attrs.path)
    if not _matches(rule.get("apiGroups") or (), attrs.api_group):
        return False
    if not _resource_matches(rule.get("resources") or (), attrs.resource, attrs.subresource):
        return False
    names = rule.get("resourceNames") or ()
    return not names or attrs.name in names


class Authorizer:
    def __init__(self, source: RBACSource) -> None:
        self._source = source

    def authorize(self, attrs: RequestAttributes) -> Decision:
        user = attrs.user
        if MASTERS in user.groups:
            return Decision(True, f"member of {MASTERS}")
        cluster_roles = {r.get("metadata", {}).get("name"): r for r in self._source.cluster_roles()}

        for binding in self._source.cluster_role_bindings():
            if not any(subject_matches(s, user) for s in binding.get("subjects") or ()):
                continue
            ref = binding.get("roleRef") or {}
            if ref.get("kind") != "ClusterRole":
                continue
            if _role_allows(cluster_roles.get(ref.get("name")), attrs):
                return Decision(True, _why("ClusterRoleBinding", binding, ref))

        if attrs.resource_request and attrs.namespace:
            roles: dict[Any, Obj] | None = None
            for binding in self._source.role_bindings(attrs.namespace):
                if not any(subject_matches(s, user) for s in binding.get("subjects") or ()):
                    continue
                ref = binding.get("roleRef") or {}
                if ref.get("kind") == "ClusterRole":
                    role = cluster_roles.get(ref.get("name"))
                elif ref.get("kind") == "Role":
                    if roles is None:
                        roles = {r.get("metadata", {}).get("name"): r for r in self._source.roles(attrs.namespace)}
                    role = roles.get(ref.get("name"))
                else:
                    continue
                if _role_allows(role, attrs):
                    return Decision(True, _why("RoleBinding", binding, ref))
        return Decision(False, "")


def _role_allows(role: Obj | None, attrs: RequestAttributes) -> bool:
    return role is not None and any(rule_allows(rule, attrs) for rule in role.get("rules") or ())


def _why(kind: str, binding: Obj, ref: Obj) -> str:
    meta = binding.get("metadata", {})
    where = f"{meta.get('namespace')}/" if meta.get("namespace") else ""
    return f'RBAC: allowed by {kind} "{where}{meta.get("name")}" of {ref.get("kind")} "{ref.get("name")}"'


def forbidden_message(attrs: RequestAttributes) -> str:
    """The text of a 403 Status, worded like Kubernetes so users recognize it."""
    who = f'User "{attrs.user.name}"'
    if not attrs.resource_request:
        return f'forbidden: {who} cannot {attrs.verb} path "{attrs.path}"'
    res = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    subject = f'{res} "{attrs.name}"' if attrs.name else res
    scope = f' in the namespace "{attrs.namespace}"' if attrs.namespace else " at the cluster scope"
    return f'{subject} is forbidden: {who} cannot {attrs.verb} resource "{res}" in API group "{attrs.api_group}"{scope}'
