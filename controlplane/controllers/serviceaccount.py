"""Makes sure every active namespace has the `default` ServiceAccount (pods use it implicitly)."""

from __future__ import annotations

import contextlib

from controlplane.client import AlreadyExists, NotFound
from controlplane.controllers.base import Context, Controller, Obj, is_deleting
from controlplane.resources import NAMESPACES, SERVICEACCOUNTS

DEFAULT_NAME = "default"


class ServiceAccountController(Controller):
    name = "serviceaccount"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.namespaces = self.watch_own(NAMESPACES)
        self.accounts = self.watch_related(SERVICEACCOUNTS, self._namespace_of)

    @staticmethod
    def _namespace_of(sa: Obj) -> list[str]:
        meta = sa.get("metadata") or {}
        return [str(meta.get("namespace"))] if meta.get("name") == DEFAULT_NAME else []

    async def reconcile(self, key: str) -> float | None:
        ns = self.namespaces.get(key)
        if ns is None or is_deleting(ns) or (ns.get("status") or {}).get("phase") == "Terminating":
            return None
        if self.accounts.get(f"{key}/{DEFAULT_NAME}") is not None:
            return None
        body = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": DEFAULT_NAME, "namespace": key}}
        # AlreadyExists: our cache is behind. NotFound/Forbidden-ish: the namespace is going away.
        with contextlib.suppress(AlreadyExists, NotFound):
            await self.client.create(SERVICEACCOUNTS, body, key)
        return None
