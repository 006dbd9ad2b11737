"""Authentication and RBAC authorization for the HTTP edge, over the server's cache (controlplane/auth
decides; this module only adapts the cache and the aiohttp request to it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web

from controlplane.apiserver.cache import WatchCache
from controlplane.apiserver.errors import Forbidden
from controlplane.apiserver.keys import collection_prefix, object_key
from controlplane.auth import (
    Authenticator,
    Authorizer,
    Decision,
    RequestAttributes,
    TokenSigner,
    UserInfo,
    forbidden_message,
)
from controlplane.resources import CLUSTERROLEBINDINGS, CLUSTERROLES, ROLEBINDINGS, ROLES, Resource

Obj = dict[str, Any]

USER = web.RequestKey("user", UserInfo)  # who a request acts as, set once it is authenticated

# What an anonymous client may ask for (RBAC still decides): health and version (Kubernetes'
# system:public-info-viewer), and the cluster-info ConfigMap a joining node reads the CA from.
PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/version", "/api/v1/namespaces/kube-public/configmaps/cluster-info")


def is_public(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in PUBLIC_PATHS)


class CacheObjects:
    """Synchronous reads of stored objects (the authenticator's and authorizer's sources)."""

    def __init__(self, cache: WatchCache) -> None:
        self._cache = cache

    def get(self, resource: Resource, namespace: str, name: str) -> Mapping[str, Any] | None:
        entry = self._cache.get(object_key(resource, namespace or None, name))
        return entry.obj if entry is not None else None

    def _all(self, resource: Resource, namespace: str | None = None) -> Iterable[Obj]:
        return (e.obj for e in self._cache.list(collection_prefix(resource, namespace)))

    def roles(self, namespace: str) -> Iterable[Obj]:
        return self._all(ROLES, namespace)

    def cluster_roles(self) -> Iterable[Obj]:
        return self._all(CLUSTERROLES)

    def role_bindings(self, namespace: str) -> Iterable[Obj]:
        return self._all(ROLEBINDINGS, namespace)

    def cluster_role_bindings(self) -> Iterable[Obj]:
        return self._all(CLUSTERROLEBINDINGS)


class Security:
    def __init__(self, cache: WatchCache, signing_key: bytes) -> None:
        objects = CacheObjects(cache)
        self.signer = TokenSigner(signing_key)
        self._authn = Authenticator(signer=self.signer, source=objects)
        self._authz = Authorizer(objects)

    def authenticate(self, request: web.Request) -> UserInfo | None:
        transport = request.transport
        peercert = transport.get_extra_info("peercert") if transport is not None else None
        return self._authn.authenticate(peercert=peercert or None, authorization=request.headers.get("Authorization"))

    def decide(self, attrs: RequestAttributes) -> Decision:
        return self._authz.authorize(attrs)

    def authenticate_token(self, token: str) -> UserInfo | None:
        return self._authn.authenticate_token(token) if token else None

    async def authorize(self, attrs: RequestAttributes) -> None:
        if not self.decide(attrs).allowed:
            raise Forbidden(forbidden_message(attrs))
