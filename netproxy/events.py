"""Warnings about objects the proxy could not program, recorded as core/v1 Events on the object."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Mapping
from typing import Any

from controlplane.client import KubeClient
from controlplane.resources import EVENTS

COMPONENT = "tinykube-proxy"


def warning_event(obj: Mapping[str, Any], reason: str, message: str, *, host: str) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace") or "default"
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta.get('name', 'unknown')}.{uuid.uuid4().hex[:16]}", "namespace": namespace},
        "involvedObject": {
            "kind": obj.get("kind", ""),
            "apiVersion": obj.get("apiVersion", ""),
            "namespace": namespace,
            "name": meta.get("name", ""),
            "uid": meta.get("uid", ""),
        },
        "reason": reason,
        "message": message,
        "type": "Warning",
        "source": {"component": COMPONENT, "host": host},
        "reportingComponent": COMPONENT,
        "reportingInstance": host,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


class ApiEvents:
    def __init__(self, client: KubeClient, host: str) -> None:
        self._client = client
        self._host = host

    async def warning(self, obj: Mapping[str, Any], reason: str, message: str) -> None:
        event = warning_event(obj, reason, message, host=self._host)
        await self._client.create(EVENTS, event, event["metadata"]["namespace"])
