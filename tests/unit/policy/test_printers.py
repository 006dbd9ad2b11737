"""Table output for kubectl get."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from controlplane.printers import human_duration, to_table
from controlplane.resources import CONFIGMAPS, DEPLOYMENTS, EVENTS, NODES, PODS, SERVICES

NOW = datetime.datetime(2026, 1, 2, 12, 0, 0, tzinfo=datetime.UTC)
CREATED = "2026-01-02T11:55:00Z"  # five minutes before NOW


def _cells(table: dict[str, Any]) -> dict[str, Any]:
    names = [c["name"] for c in table["columnDefinitions"]]
    return dict(zip(names, table["rows"][0]["cells"], strict=True))


def _pod(status: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "web-1", "namespace": "default", "creationTimestamp": CREATED, **meta},
        "spec": {"nodeName": "n1", "containers": [{"name": "a"}, {"name": "b"}]},
        "status": status,
    }


def test_running_pod_row_has_kubectl_columns() -> None:
    pod = _pod(
        {
            "phase": "Running",
            "podIP": "10.244.0.5",
            "containerStatuses": [
                {"name": "a", "ready": True, "restartCount": 0, "state": {"running": {}}},
                {
                    "name": "b",
                    "ready": False,
                    "restartCount": 2,
                    "state": {"running": {}},
                    "lastState": {"terminated": {"finishedAt": "2026-01-02T11:58:00Z"}},
                },
            ],
        }
    )
    table = to_table(PODS, [pod], now=NOW)
    assert table["kind"] == "Table"
    assert table["apiVersion"] == "meta.k8s.io/v1"
    assert [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0] == [
        "Name",
        "Ready",
        "Status",
        "Restarts",
        "Age",
    ]
    assert _cells(table) == {
        "Name": "web-1",
        "Ready": "1/2",
        "Status": "Running",
        "Restarts": "2 (2m ago)",
        "Age": "5m",
        "IP": "10.244.0.5",
        "Node": "n1",
        "Nominated Node": "<none>",
        "Readiness Gates": "<none>",
    }
    assert table["rows"][0]["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": pod["metadata"],
    }


@pytest.mark.parametrize(
    ("status", "meta", "shown"),
    [
        ({"phase": "Pending"}, {}, "Pending"),
        (
            {"phase": "Pending", "containerStatuses": [{"state": {"waiting": {"reason": "ContainerCreating"}}}]},
            {},
            "ContainerCreating",
        ),
        (
            {"phase": "Running", "containerStatuses": [{"state": {"waiting": {"reason": "CrashLoopBackOff"}}}]},
            {},
            "CrashLoopBackOff",
        ),
        (
            {
                "phase": "Succeeded",
                "containerStatuses": [{"state": {"terminated": {"reason": "Completed", "exitCode": 0}}}],
            },
            {},
            "Completed",
        ),
        ({"phase": "Failed", "containerStatuses": [{"state": {"terminated": {"exitCode": 3}}}]}, {}, "ExitCode:3"),
        ({"phase": "Pending", "initContainerStatuses": [{"state": {"running": {}}}]}, {}, "Init:0/0"),
        ({"phase": "Running"}, {"deletionTimestamp": "2026-01-02T12:00:00Z"}, "Terminating"),
    ],
)
def test_pod_status_column(status: dict[str, Any], meta: dict[str, Any], shown: str) -> None:
    assert _cells(to_table(PODS, [_pod(status, **meta)], now=NOW))["Status"] == shown


def test_service_row_shows_ports_and_node_ports() -> None:
    svc = {
        "metadata": {"name": "web", "creationTimestamp": CREATED},
        "spec": {
            "type": "NodePort",
            "clusterIP": "10.96.0.12",
            "selector": {"app": "web"},
            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
        },
    }
    cells = _cells(to_table(SERVICES, [svc], now=NOW))
    assert cells == {
        "Name": "web",
        "Type": "NodePort",
        "Cluster-IP": "10.96.0.12",
        "External-IP": "<none>",
        "Port(s)": "80:30080/TCP,53/UDP",
        "Age": "5m",
        "Selector": "app=web",
    }


def test_node_row_shows_readiness_roles_and_version() -> None:
    node = {
        "metadata": {
            "name": "n1",
            "creationTimestamp": CREATED,
            "labels": {"node-role.kubernetes.io/control-plane": ""},
        },
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": "192.168.56.10"}],
            "nodeInfo": {"kubeletVersion": "v1.32.0-tinykube"},
        },
    }
    cells = _cells(to_table(NODES, [node], now=NOW))
    assert (cells["Status"], cells["Roles"], cells["Version"], cells["Internal-IP"]) == (
        "Ready,SchedulingDisabled",
        "control-plane",
        "v1.32.0-tinykube",
        "192.168.56.10",
    )


def test_deployment_row_and_narrow_tables_drop_wide_columns() -> None:
    dep = {
        "metadata": {"name": "web", "creationTimestamp": CREATED},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"spec": {"containers": [{"name": "w", "image": "nginx"}]}},
        },
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }
    narrow = to_table(DEPLOYMENTS, [dep], wide=False, include_object="None", now=NOW)
    assert narrow["rows"][0] == {"cells": ["web", "2/3", 3, 2, "5m"]}
    assert _cells(to_table(DEPLOYMENTS, [dep], now=NOW))["Images"] == "nginx"


def test_events_and_unknown_kinds() -> None:
    event = {
        "metadata": {"name": "e1", "creationTimestamp": CREATED},
        "involvedObject": {"kind": "Pod", "name": "web-1"},
        "reason": "Scheduled",
        "type": "Normal",
        "message": "assigned",
        "lastTimestamp": "2026-01-02T11:59:30Z",
    }
    cells = _cells(to_table(EVENTS, [event], now=NOW))
    assert (cells["Last Seen"], cells["Object"], cells["Reason"], cells["Message"]) == (
        "30s",
        "pod/web-1",
        "Scheduled",
        "assigned",
    )
    cm = {"metadata": {"name": "c", "creationTimestamp": CREATED}, "data": {"a": "1", "b": "2"}}
    assert to_table(CONFIGMAPS, [cm], now=NOW)["rows"][0]["cells"] == ["c", 2, "5m"]


def test_table_metadata_carries_resource_version_and_continue() -> None:
    table = to_table(PODS, [], resource_version="42", continue_token="abc")
    assert table["metadata"] == {"resourceVersion": "42", "continue": "abc"}
    assert table["rows"] == []


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (5, "5s"),
        (119, "119s"),
        (150, "2m30s"),
        (600, "10m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 60, "3h1m"),
        (30 * 3600, "30h"),
        (3 * 86400 + 3600, "3d1h"),
        (400 * 86400, "400d"),
        (3 * 365 * 86400, "3y"),
    ],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text
