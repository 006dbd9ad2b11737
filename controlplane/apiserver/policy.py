"""The pluggable request policy of the registry: defaulting, validation and admission.

The registry calls one `Policy`; `permissive()` is what runs until (or where) the real modules in
controlplane/validation and controlplane/admission are wired in by server.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from controlplane import admission, validation
from controlplane.apiserver.cache import WatchCache
from controlplane.apiserver.errors import Cause, Forbidden, Invalid, NotFound
from controlplane.apiserver.keys import collection_prefix, object_key
from controlplane.resources import Resource
from controlplane.validation import FieldError


@dataclass(frozen=True)
class AdmissionRequest:
    operation: str  # CREATE, UPDATE, DELETE, CONNECT
    resource: Resource
    subresource: str
    namespace: str | None
    name: str
    obj: dict[str, Any] | None  # mutable: mutating admission edits it in place
    old: dict[str, Any] | None
    user: Any  # auth.types.UserInfo when authentication runs
    dry_run: bool = False


class Policy(Protocol):
    def apply_defaults(self, res: Resource, obj: dict[str, Any]) -> None: ...

    def validate(self, res: Resource, obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]: ...

    async def admit(self, req: AdmissionRequest) -> None:
        """Mutate and validate; raises an ApiError (403/422/…) to reject."""


class PermissivePolicy:
    def apply_defaults(self, res: Resource, obj: dict[str, Any]) -> None:
        del res, obj

    def validate(self, res: Resource, obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
        del res, obj, old
        return []

    async def admit(self, req: AdmissionRequest) -> None:
        del req


_: Policy = PermissivePolicy()


class CacheReader:
    """Stored objects for admission plugins and authentication, read from the server's cache."""

    def __init__(self, cache: WatchCache) -> None:
        self._cache = cache

    def get_now(self, resource: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        entry = self._cache.get(object_key(resource, namespace or None, name))
        return entry.obj if entry is not None else None

    async def get(self, resource: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        return self.get_now(resource, namespace, name)

    async def list(self, resource: Resource, namespace: str) -> list[dict[str, Any]]:
        return [e.obj for e in self._cache.list(collection_prefix(resource, namespace or None))]


def _causes(errors: list[FieldError]) -> list[Cause]:
    return [Cause(e.field, e.body, e.type) for e in errors]


class ClusterPolicy:
    """Defaulting and validation from controlplane.validation; admission from controlplane.admission
    (NamespaceLifecycle, LimitRanger, ServiceAccount, ResourceQuota), errors mapped to Status."""

    def __init__(self, reader: CacheReader, *, require_service_account: bool = True) -> None:
        # Without controllers nobody creates ServiceAccounts: then pods may go without one.
        self._chain = admission.default_chain(reader, require_service_account=require_service_account)

    def apply_defaults(self, res: Resource, obj: dict[str, Any]) -> None:
        validation.apply_defaults(res, obj)

    def validate(self, res: Resource, obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
        return _causes(validation.validate(res, obj, old))

    async def admit(self, req: AdmissionRequest) -> None:
        try:
            await self._chain.admit(req)
        except admission.Forbidden as err:
            raise Forbidden(err.message, resource=err.resource, name=err.name) from err
        except admission.NotFound as err:
            raise NotFound(err.message, resource=err.resource, name=err.name) from err
        except admission.Invalid as err:
            raise Invalid(
                err.message,
                resource=err.resource,
                name=err.name,
                causes=_causes(err.errors),
                details_kind=err.resource.kind,
            ) from err


_cluster: type[Policy] = ClusterPolicy
