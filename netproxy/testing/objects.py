"""Builders of Service and EndpointSlice dicts as the API server sends them (tests, the benchmark)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def service(
    name: str,
    cluster_ip: str | None,
    ports: Sequence[dict[str, Any]] = ({"name": "http", "port": 80, "targetPort": 8080},),
    *,
    namespace: str = "default",
    type: str = "ClusterIP",
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": type, "ports": [dict(p) for p in ports], **spec}
    if cluster_ip is not None:
        body["clusterIP"] = cluster_ip
        body["clusterIPs"] = [cluster_ip]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


def endpoint_slice(
    service_name: str,
    addresses: Sequence[str],
    ports: Sequence[dict[str, Any]] = ({"name": "http", "port": 8080, "protocol": "TCP"},),
    *,
    namespace: str = "default",
    name: str | None = None,
    node_name: str | None = "node-a",
    ready: bool | None = True,
    serving: bool | None = None,
    terminating: bool | None = None,
    nodes: Sequence[str | None] | None = None,
) -> dict[str, Any]:
    """One slice; `nodes` gives a node name per address (else every endpoint is on `node_name`)."""
    conditions = {
        k: v for k, v in (("ready", ready), ("serving", serving), ("terminating", terminating)) if v is not None
    }
    endpoints = []
    for i, addr in enumerate(addresses):
        ep: dict[str, Any] = {"addresses": [addr], "conditions": dict(conditions)}
        node = nodes[i] if nodes is not None else node_name
        if node:
            ep["nodeName"] = node
        endpoints.append(ep)
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name or f"{service_name}-abcde",
            "namespace": namespace,
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "addressType": "IPv4",
        "ports": [dict(p) for p in ports],
        "endpoints": endpoints,
    }
