"""Records core/v1 Events about objects (best effort: a failed event never fails a reconcile)."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from controlplane.client import ApiError, KubeClient
from controlplane.controllers.timeutil import rfc3339
from controlplane.resources import EVENTS

log = logging.getLogger(__name__)


def event_object(
    involved: dict[str, Any], *, type_: str, reason: str, message: str, component: str, now: float
) -> dict[str, Any]:
    meta = involved.get("metadata") or {}
    ns = meta.get("namespace") or "default"
    stamp = rfc3339(now)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta.get('name', 'unknown')}.{secrets.token_hex(8)}", "namespace": ns},
        "involvedObject": {
            "apiVersion": involved.get("apiVersion"),
            "kind": involved.get("kind"),
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "reason": reason,
        "message": message,
        "type": type_,
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": component,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class EventRecorder:
    def __init__(self, client: KubeClient, component: str) -> None:
        self.client = client
        self.component = component

    async def record(self, involved: dict[str, Any], type_: str, reason: str, message: str, *, now: float) -> None:
        obj = event_object(involved, type_=type_, reason=reason, message=message, component=self.component, now=now)
        try:
            await self.client.create(EVENTS, obj, obj["metadata"]["namespace"])
        except ApiError as err:
            log.debug("event %s for %s not recorded: %s", reason, involved.get("metadata", {}).get("name"), err)
