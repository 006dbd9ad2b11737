"""Namespace deletion: once a namespace is Terminating, delete everything in it, then remove the
`kubernetes` finalizer (PUT namespaces/<name>/finalize) so the API server can remove it."""

from __future__ import annotations

import contextlib
import logging

from controlplane.client import ApiError, MethodNotAllowed, NotFound
from controlplane.controllers.base import Context, Controller, is_deleting
from controlplane.resources import ALL_RESOURCES, EVENTS, EVENTS_V1, NAMESPACES, PODS, Resource

log = logging.getLogger(__name__)

FINALIZER = "kubernetes"

# Everything namespaced that can be listed and deleted: workload owners before their pods (so nothing
# is re-created while we delete), Events last (deleting objects emits some).
_LAST = (PODS, EVENTS, EVENTS_V1)
NAMESPACED: tuple[Resource, ...] = (
    *(r for r in ALL_RESOURCES if r.namespaced and "delete" in r.verbs and r not in _LAST),
    *_LAST,
)


class NamespaceController(Controller):
    name = "namespace"
    poll_interval = 1.0

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.namespaces = self.watch_own(NAMESPACES)

    async def reconcile(self, key: str) -> float | None:
        ns = self.namespaces.get(key)
        if ns is None or not is_deleting(ns):
            return None
        remaining = 0
        for res in NAMESPACED:
            try:
                listing = await self.client.list(res, key)
            except (NotFound, MethodNotAllowed):
                continue  # the server does not serve this resource
            for obj in listing.get("items") or ():
                remaining += 1
                if is_deleting(obj):
                    continue
                with contextlib.suppress(NotFound):
                    await self.client.delete(res, obj["metadata"]["name"], key, propagation_policy="Background")
        if remaining:
            # Pods terminate gracefully and finalizers run elsewhere: poll until the namespace is empty.
            return self.poll_interval
        finalizers = [f for f in (ns.get("spec") or {}).get("finalizers") or () if f != FINALIZER]
        if finalizers == list((ns.get("spec") or {}).get("finalizers") or ()):
            return None
        body = {**ns, "spec": {**(ns.get("spec") or {}), "finalizers": finalizers}}
        try:
            await self.client.update(NAMESPACES, body, subresource="finalize")
        except NotFound:
            return None
        except ApiError as err:
            log.warning("namespace %s: finalize failed: %s", key, err)
            raise
        return None
