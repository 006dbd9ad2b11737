"""Request attributes, authentication and RBAC."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from controlplane.auth import (
    NODE_BOOTSTRAP_GROUP,
    Authenticator,
    Authorizer,
    ServiceAccountClaims,
    TokenSigner,
    UserInfo,
    default_objects,
    forbidden_message,
    load_token_file,
    new_bootstrap_token,
    request_attributes,
)
from controlplane.auth.types import ALL_AUTHENTICATED, RequestAttributes
from controlplane.resources import SECRETS, SERVICEACCOUNTS, Resource

ALICE = UserInfo("alice", (ALL_AUTHENTICATED,))


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/api/v1/namespaces/default/pods", {}, ("list", "", "pods", "", "default", "")),
        ("GET", "/api/v1/namespaces/default/pods", {"watch": "true"}, ("watch", "", "pods", "", "default", "")),
        ("GET", "/api/v1/watch/namespaces/default/pods", {}, ("watch", "", "pods", "", "default", "")),
        ("GET", "/api/v1/namespaces/default/pods/p", {}, ("get", "", "pods", "", "default", "p")),
        ("GET", "/api/v1/namespaces/default/pods/p/log", {}, ("get", "", "pods", "log", "default", "p")),
        ("POST", "/apis/apps/v1/namespaces/ns/deployments", {}, ("create", "apps", "deployments", "", "ns", "")),
        (
            "PUT",
            "/apis/apps/v1/namespaces/ns/deployments/d/scale",
            {},
            ("update", "apps", "deployments", "scale", "ns", "d"),
        ),
        ("PATCH", "/api/v1/nodes/n1/status", {}, ("patch", "", "nodes", "status", "", "n1")),
        ("DELETE", "/api/v1/namespaces/ns/pods", {}, ("deletecollection", "", "pods", "", "ns", "")),
        ("DELETE", "/api/v1/namespaces/ns", {}, ("delete", "", "namespaces", "", "ns", "ns")),
        ("PUT", "/api/v1/namespaces/ns/finalize", {}, ("update", "", "namespaces", "finalize", "ns", "ns")),
        ("GET", "/api/v1/pods", {}, ("list", "", "pods", "", "", "")),
        ("GET", "/api/v1/namespaces/a/pods", {"fieldSelector": "metadata.name=x"}, ("list", "", "pods", "", "a", "x")),
    ],
)
def test_request_attributes_follow_kubernetes_request_info(
    method: str, path: str, query: dict[str, str], expected: tuple[str, ...]
) -> None:
    attrs = request_attributes(method, path, query, ALICE)
    assert attrs.resource_request
    assert (attrs.verb, attrs.api_group, attrs.resource, attrs.subresource, attrs.namespace, attrs.name) == expected


@pytest.mark.parametrize(
    "path", ["/healthz", "/version", "/api", "/apis", "/apis/apps", "/apis/apps/v1", "/openapi/v2"]
)
def test_discovery_and_health_paths_are_non_resource_requests(path: str) -> None:
    attrs = request_attributes("GET", path, {}, ALICE)
    assert not attrs.resource_request
    assert (attrs.verb, attrs.path) == ("get", path)


class FakeRBAC:
    def __init__(self, objects: Iterable[dict[str, Any]]) -> None:
        self.objects = list(objects)

    def _kind(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return [
            o
            for o in self.objects
            if o["kind"] == kind and (namespace is None or o["metadata"].get("namespace") == namespace)
        ]

    def roles(self, namespace: str) -> list[dict[str, Any]]:
        return self._kind("Role", namespace)

    def cluster_roles(self) -> list[dict[str, Any]]:
        return self._kind("ClusterRole")

    def role_bindings(self, namespace: str) -> list[dict[str, Any]]:
        return self._kind("RoleBinding", namespace)

    def cluster_role_bindings(self) -> list[dict[str, Any]]:
        return self._kind("ClusterRoleBinding")


def _binding(
    kind: str, name: str, namespace: str | None, role_kind: str, role: str, *, subjects: list[dict[str, str]]
) -> dict[str, Any]:
    meta = {"name": name} | ({"namespace": namespace} if namespace else {})
    return {"kind": kind, "metadata": meta, "roleRef": {"kind": role_kind, "name": role}, "subjects": subjects}


def _can(authz: Authorizer, user: UserInfo, method: str, path: str, query: Mapping[str, str] | None = None) -> bool:
    return authz.authorize(request_attributes(method, path, query or {}, user)).allowed


def test_masters_are_allowed_everything_without_bindings() -> None:
    admin = UserInfo("admin", ("system:masters", ALL_AUTHENTICATED))
    assert _can(Authorizer(FakeRBAC([])), admin, "DELETE", "/api/v1/nodes/n1")


def test_anyone_without_a_binding_is_denied_and_the_message_reads_like_kubernetes() -> None:
    authz = Authorizer(FakeRBAC(default_objects()))
    attrs = request_attributes("GET", "/api/v1/namespaces/default/pods", {}, ALICE)
    assert not authz.authorize(attrs).allowed
    assert forbidden_message(attrs) == (
        'pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default"'
    )


def test_default_discovery_role_lets_authenticated_users_read_api_paths() -> None:
    authz = Authorizer(FakeRBAC(default_objects()))
    assert _can(authz, ALICE, "GET", "/apis/apps/v1")
    assert _can(authz, ALICE, "GET", "/version")
    assert not _can(authz, ALICE, "GET", "/metrics")


def test_rolebinding_to_view_grants_read_in_its_namespace_only_and_not_secrets() -> None:
    objects = [
        *default_objects(),
        _binding("RoleBinding", "b", "team", "ClusterRole", "view", subjects=[{"kind": "User", "name": "alice"}]),
    ]
    authz = Authorizer(FakeRBAC(objects))
    assert _can(authz, ALICE, "GET", "/api/v1/namespaces/team/pods")
    assert _can(authz, ALICE, "GET", "/apis/apps/v1/namespaces/team/deployments", {"watch": "1"})
    assert not _can(authz, ALICE, "GET", "/api/v1/namespaces/other/pods")
    assert not _can(authz, ALICE, "GET", "/api/v1/namespaces/team/secrets")
    assert not _can(authz, ALICE, "POST", "/api/v1/namespaces/team/pods")


def test_namespaced_role_with_resource_names_and_subresources() -> None:
    role = {
        "kind": "Role",
        "metadata": {"name": "r", "namespace": "ns"},
        "rules": [
            {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["update"], "resourceNames": ["web"]}
        ],
    }
    sa_subject = {"kind": "ServiceAccount", "name": "bot", "namespace": "ns"}
    authz = Authorizer(FakeRBAC([role, _binding("RoleBinding", "b", "ns", "Role", "r", subjects=[sa_subject])]))
    bot = UserInfo("system:serviceaccount:ns:bot", ("system:serviceaccounts",))
    assert _can(authz, bot, "PUT", "/apis/apps/v1/namespaces/ns/deployments/web/scale")
    assert not _can(authz, bot, "PUT", "/apis/apps/v1/namespaces/ns/deployments/other/scale")
    assert not _can(authz, bot, "PUT", "/apis/apps/v1/namespaces/ns/deployments/web")


def test_node_group_may_update_node_status_and_leases_but_not_delete_namespaces() -> None:
    authz = Authorizer(FakeRBAC(default_objects()))
    node = UserInfo("system:node:n1", ("system:nodes", ALL_AUTHENTICATED))
    assert _can(authz, node, "PATCH", "/api/v1/nodes/n1/status")
    assert _can(authz, node, "PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1")
    assert _can(authz, node, "GET", "/api/v1/pods", {"fieldSelector": "spec.nodeName=n1", "watch": "true"})
    assert not _can(authz, node, "DELETE", "/api/v1/namespaces/default")


class FakeObjects:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str, str], dict[str, Any]] = {}

    def get(self, resource: Resource, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self.items.get((resource.plural, namespace, name))


def test_client_certificate_cn_and_o_become_user_and_groups() -> None:
    cert = {"subject": ((("commonName", "system:node:n1"),), (("organizationName", "system:nodes"),))}
    user = Authenticator().authenticate(peercert=cert)
    assert user is not None
    assert user.name == "system:node:n1"
    assert "system:nodes" in user.groups
    assert ALL_AUTHENTICATED in user.groups


def test_requests_without_credentials_are_anonymous() -> None:
    assert Authenticator().authenticate() is None
    assert Authenticator().authenticate(authorization="Basic Zm9vOmJhcg==") is None


def test_service_account_tokens_verify_while_the_account_exists() -> None:
    objects = FakeObjects()
    objects.items[("serviceaccounts", "ns", "bot")] = {"metadata": {"uid": "u1"}}
    signer = TokenSigner(TokenSigner.new_key())
    authn = Authenticator(signer=signer, source=objects)
    token = signer.issue(ServiceAccountClaims(namespace="ns", name="bot", uid="u1", expires=2_000_000_000))
    user = authn.authenticate(authorization=f"Bearer {token}")
    assert user is not None
    assert user.name == "system:serviceaccount:ns:bot"
    assert "system:serviceaccounts:ns" in user.groups

    assert authn.authenticate_token(token, now=2_000_000_001) is None  # expired
    other = Authenticator(signer=TokenSigner(TokenSigner.new_key()), source=objects)
    assert other.authenticate_token(token) is None  # signed with another key
    head, body, sig = token.split(".")
    assert authn.authenticate_token(f"{head}.{body}x.{sig}") is None  # tampered
    objects.items[("serviceaccounts", "ns", "bot")] = {"metadata": {"uid": "u2"}}  # recreated: old tokens die
    assert authn.authenticate_token(token) is None
    assert SERVICEACCOUNTS.plural == "serviceaccounts"


def _bootstrap_secret(token: str, *, expiration: str = "") -> dict[str, Any]:
    token_id, secret = token.split(".")
    data = {
        "token-id": token_id,
        "token-secret": secret,
        "usage-bootstrap-authentication": "true",
        "auth-extra-groups": f"{NODE_BOOTSTRAP_GROUP},system:masters",
    }
    if expiration:
        data["expiration"] = expiration
    return {
        "type": "bootstrap.kubernetes.io/token",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def test_bootstrap_tokens_authenticate_nodes_but_never_grant_masters() -> None:
    token = new_bootstrap_token()
    objects = FakeObjects()
    objects.items[(SECRETS.plural, "kube-system", f"bootstrap-token-{token.split('.')[0]}")] = _bootstrap_secret(token)
    authn = Authenticator(source=objects)
    user = authn.authenticate(authorization=f"Bearer {token}")
    assert user is not None
    assert user.name == f"system:bootstrap:{token.split('.')[0]}"
    assert NODE_BOOTSTRAP_GROUP in user.groups
    assert "system:masters" not in user.groups
    wrong = token[:7] + ("a" if token[7] != "a" else "b") + token[8:]
    assert authn.authenticate_token(wrong) is None

    authz = Authorizer(FakeRBAC(default_objects()))
    assert authz.authorize(request_attributes("POST", "/api/v1/nodes", {}, user)).allowed


def test_expired_bootstrap_tokens_are_rejected() -> None:
    token = new_bootstrap_token()
    objects = FakeObjects()
    secret = _bootstrap_secret(token, expiration="2020-01-01T00:00:00Z")
    objects.items[(SECRETS.plural, "kube-system", f"bootstrap-token-{token.split('.')[0]}")] = secret
    assert Authenticator(source=objects).authenticate_token(token) is None


def test_static_token_file_users(tmp_path: Any) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text('tok123,bob,42,"dev,ops"\n')
    authn = Authenticator(static_tokens=load_token_file(path))
    user = authn.authenticate(authorization="Bearer tok123")
    assert user is not None
    assert (user.name, user.uid) == ("bob", "42")
    assert {"dev", "ops"} <= set(user.groups)


def test_request_attributes_type_is_hashable_for_caching() -> None:
    attrs = RequestAttributes(user=ALICE, verb="get")
    assert hash(attrs) == hash(RequestAttributes(user=ALICE, verb="get"))


def test_pod_bound_tokens_die_with_the_pod() -> None:
    from controlplane.resources import PODS

    objects = FakeObjects()
    objects.items[("serviceaccounts", "ns", "bot")] = {"metadata": {"name": "bot", "namespace": "ns", "uid": "sa-1"}}
    objects.items[(PODS.plural, "ns", "web")] = {"metadata": {"name": "web", "namespace": "ns", "uid": "pod-1"}}
    signer = TokenSigner(TokenSigner.new_key())
    claims = ServiceAccountClaims("ns", "bot", "sa-1", expires=2_000_000_000, pod_name="web", pod_uid="pod-1")
    token = signer.issue(claims)
    authn = Authenticator(signer=signer, source=objects)
    user = authn.authenticate_token(token)
    assert user is not None
    assert user.extra["authentication.kubernetes.io/pod-name"] == ("web",)
    objects.items[(PODS.plural, "ns", "web")] = {"metadata": {"name": "web", "namespace": "ns", "uid": "pod-2"}}
    assert authn.authenticate_token(token) is None  # same name, new pod
    del objects.items[(PODS.plural, "ns", "web")]
    assert authn.authenticate_token(token) is None


def test_nodes_read_secrets_by_name_but_cannot_list_them() -> None:
    authz = Authorizer(FakeRBAC(default_objects()))
    node = UserInfo("system:node:n1", ("system:nodes", ALL_AUTHENTICATED))
    assert _can(authz, node, "GET", "/api/v1/namespaces/default/secrets/db-password")
    assert not _can(authz, node, "GET", "/api/v1/secrets")
    assert not _can(authz, node, "GET", "/api/v1/namespaces/default/secrets", {"watch": "true"})
