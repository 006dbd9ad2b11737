"""Core v1 Events about pods (Pulled, Created, Started, Killing, BackOff, Unhealthy, FailedMount …).

Events are best effort: they are sent from background tasks so a slow or failing API never delays a
pod worker, and a failure to record one is logged, not raised."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from controlplane.client.errors import ApiError
from controlplane.resources import EVENTS
from noded.interfaces import ApiClient

log = logging.getLogger(__name__)


def event_object(
    pod: dict[str, Any], *, kind: str, reason: str, message: str, node_name: str, field_path: str = ""
) -> dict[str, Any]:
    meta = pod["metadata"]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    involved = {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": meta["name"],
        "namespace": meta.get("namespace", "default"),
        "uid": meta.get("uid", ""),
    }
    if field_path:
        involved["fieldPath"] = field_path
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:16]}", "namespace": involved["namespace"]},
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "type": kind,
        "source": {"component": "kubelet", "host": node_name},
        "reportingComponent": "kubelet",
        "reportingInstance": node_name,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


class EventRecorder:
    def __init__(self, api: ApiClient, node_name: str) -> None:
        self._api = api
        self._node = node_name
        self._tasks: set[asyncio.Task[None]] = set()  # strong refs until each send finishes

    def emit(
        self, pod: dict[str, Any], reason: str, message: str, *, warning: bool = False, container: str = ""
    ) -> None:
        obj = event_object(
            pod,
            kind="Warning" if warning else "Normal",
            reason=reason,
            message=message,
            node_name=self._node,
            field_path=f"spec.containers{{{container}}}" if container else "",
        )
        task = asyncio.get_running_loop().create_task(self._send(obj))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, obj: dict[str, Any]) -> None:
        try:
            await self._api.create(EVENTS, obj, obj["metadata"]["namespace"])
        except (ApiError, OSError) as err:
            log.debug("event %s not recorded: %s", obj["reason"], err)

    async def flush(self) -> None:
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
