"""The real kubectl (v1.32) against `tinykube server`: discovery, apply, get -o wide, describe,
label, annotate, scale, patch, edit, delete — and the official Python client's watch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controlplane.testing.server import ServerHandle, start_server

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"

MANIFEST = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: busybox
        command: ["sleep", "3600"]
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  type: NodePort
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  color: blue
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    with start_server(tmp_path_factory.mktemp("kubectl"), controllers=False) as srv:
        yield srv


def kubectl(server: ServerHandle, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    proc = subprocess.run(
        [KUBECTL, "--kubeconfig", server.kubeconfig, *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "HOME": str(server.tmp_path), **(env or {})},
        check=False,
    )
    if check:
        assert proc.returncode == 0, f"kubectl {' '.join(args)} failed: {proc.stderr}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def applied(server: ServerHandle) -> Path:
    path = server.tmp_path / "app.yaml"
    path.write_text(MANIFEST)
    out = kubectl(server, "apply", "-f", str(path))
    assert "deployment.apps/web created" in out
    assert "service/web created" in out
    return path


def test_api_resources_lists_core_and_group_resources(server: ServerHandle) -> None:
    out = kubectl(server, "api-resources")
    for line in ("deployments", "apps/v1", "endpointslices", "leases", "clusterroles"):
        assert line in out


def test_apply_twice_is_unchanged(server: ServerHandle, applied: Path) -> None:
    assert "deployment.apps/web unchanged" in kubectl(server, "apply", "-f", str(applied))


def test_get_wide_shows_service_columns_with_allocated_ip_and_node_port(server: ServerHandle, applied: Path) -> None:
    del applied
    out = kubectl(server, "get", "svc", "web", "-o", "wide")
    header, row = out.strip().splitlines()[:2]
    assert header.split()[:5] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)"]
    assert "SELECTOR" in header
    assert "app=web" in row
    assert row.split()[2].startswith("10.96.")
    assert "80:3" in row


def test_label_annotate_and_selector_get(server: ServerHandle, applied: Path) -> None:
    del applied
    kubectl(server, "label", "deploy", "web", "tier=front", "--overwrite")
    kubectl(server, "annotate", "deploy", "web", "note=hello", "--overwrite")
    assert "web" in kubectl(server, "get", "deploy", "-l", "tier=front", "-o", "name")
    assert kubectl(server, "get", "deploy", "-l", "tier=back", "-o", "name").strip() in (
        "",
        "No resources found in default namespace.",
    )
    meta = json.loads(kubectl(server, "get", "deploy", "web", "-o", "json"))["metadata"]
    assert meta["annotations"]["note"] == "hello"


def test_scale_patch_and_edit_change_replicas(server: ServerHandle, applied: Path) -> None:
    del applied

    def replicas() -> str:
        return kubectl(server, "get", "deploy", "web", "-o", "jsonpath={.spec.replicas}").strip()

    kubectl(server, "scale", "deploy", "web", "--replicas=5")
    assert replicas() == "5"
    kubectl(
        server, "patch", "deploy", "web", "--type=json", "-p", '[{"op":"replace","path":"/spec/replicas","value":3}]'
    )
    assert replicas() == "3"
    kubectl(server, "patch", "deploy", "web", "-p", '{"spec":{"replicas":4}}')
    assert replicas() == "4"
    kubectl(server, "edit", "deploy", "web", env={"EDITOR": "sed -i s/replicas:.*/replicas:\\ 7/"})
    assert replicas() == "7"


def test_describe_shows_defaults_and_labels(server: ServerHandle, applied: Path) -> None:
    del applied
    out = kubectl(server, "describe", "deploy", "web")
    assert "StrategyType:" in out
    assert "RollingUpdate" in out
    assert "app=web" in out


def test_invalid_object_reports_field_error(server: ServerHandle) -> None:
    path = server.tmp_path / "bad.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n")
    out = kubectl(server, "apply", "-f", str(path), check=False)
    assert 'ConfigMap "Bad_Name" is invalid' in out
    assert "metadata.name" in out


def test_delete_removes_objects(server: ServerHandle, applied: Path) -> None:
    kubectl(server, "apply", "-f", str(applied))
    kubectl(server, "delete", "configmap", "settings")
    out = kubectl(server, "get", "configmap", "settings", check=False)
    assert "NotFound" in out


def test_server_side_apply_creates_updates_and_removes_fields_no_longer_applied(server: ServerHandle) -> None:
    path = server.tmp_path / "ssa.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: '1'\n  b: '1'\n")
    assert "serverside-applied" in kubectl(server, "apply", "--server-side", "-f", str(path))
    kubectl(server, "label", "cm", "ssa", "other=kept")  # another manager's field survives re-applies
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: '2'\n")
    kubectl(server, "apply", "--server-side", "-f", str(path))
    live = json.loads(kubectl(server, "get", "cm", "ssa", "-o", "json", "--show-managed-fields"))
    assert live["data"] == {"a": "2"}
    assert live["metadata"]["labels"] == {"other": "kept"}
    managers = {m["manager"] for m in live["metadata"]["managedFields"]}
    assert "kubectl" in managers


def test_python_client_watch_sees_add_modify_delete(server: ServerHandle) -> None:
    from kubernetes import client, config, watch

    api = client.CoreV1Api(config.new_client_from_config(server.kubeconfig))
    seen: list[tuple[str, str]] = []
    started = threading.Event()
    # The watch is established once it has sent this marker's initial ADDED event.
    api.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="marker")))

    def run() -> None:
        w = watch.Watch()
        for ev in w.stream(api.list_namespaced_config_map, "default", timeout_seconds=4):
            seen.append((ev["type"], ev["object"].metadata.name))
            if ev["object"].metadata.name == "marker":
                started.set()
            if ev["type"] == "DELETED" and ev["object"].metadata.name == "watched":
                w.stop()

    t = threading.Thread(target=run)
    t.start()
    assert started.wait(10)
    api.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="watched")))
    api.patch_namespaced_config_map("watched", "default", {"data": {"x": "y"}})
    api.delete_namespaced_config_map("watched", "default")
    t.join(10)
    api.delete_namespaced_config_map("marker", "default")
    api.api_client.close()
    assert [s for s in seen if s[1] == "watched"][-3:] == [
        ("ADDED", "watched"),
        ("MODIFIED", "watched"),
        ("DELETED", "watched"),
    ]


def test_kubectl_create_generators_send_protobuf_and_succeed(server: ServerHandle) -> None:
    kubectl(server, "create", "namespace", "gen")
    kubectl(server, "-n", "gen", "create", "configmap", "c", "--from-literal=a=b")
    kubectl(server, "-n", "gen", "create", "secret", "generic", "s", "--from-literal=k=v")
    kubectl(server, "-n", "gen", "create", "deployment", "d", "--image=busybox", "--replicas=2")
    kubectl(server, "-n", "gen", "create", "serviceaccount", "bot")
    token = kubectl(server, "-n", "gen", "create", "token", "bot").strip()
    assert token.count(".") == 2
    assert kubectl(server, "-n", "gen", "get", "secret", "s", "-o", "jsonpath={.data.k}").strip() == "dg=="
    assert kubectl(server, "-n", "gen", "get", "deploy", "d", "-o", "jsonpath={.spec.replicas}").strip() == "2"


def test_kubectl_auth_can_i_and_whoami_answer_from_rbac(server: ServerHandle) -> None:
    assert kubectl(server, "auth", "can-i", "delete", "nodes").splitlines()[0] == "yes"
    denied = kubectl(server, "auth", "can-i", "list", "pods", "--as=nobody", check=False)
    assert denied.strip().startswith("no")
    assert "admin" in kubectl(server, "auth", "whoami")


def test_unknown_fields_are_rejected_by_kubectl_strict_validation_and_warned_otherwise(server: ServerHandle) -> None:
    path = server.tmp_path / "typo.yaml"
    path.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: typo\n"
        "spec:\n  containers:\n  - name: c\n    image: i\n    imagee: x\n"
    )
    out = kubectl(server, "apply", "-f", str(path), check=False)
    assert 'unknown field "spec.containers[0].imagee"' in out
    assert "created" not in out
    out = kubectl(server, "apply", "--validate=warn", "-f", str(path))
    assert "Warning: unknown field" in out
    assert "pod/typo created" in out


def test_kubectl_debug_adds_an_ephemeral_container_through_its_subresource(server: ServerHandle) -> None:
    kubectl(server, "run", "dbg-target", "--image=busybox", "--", "sleep", "1d")
    kubectl(server, "debug", "dbg-target", "--image=busybox", "--profile=general", "-c", "dbg", "--", "true")
    names = kubectl(server, "get", "pod", "dbg-target", "-o", "jsonpath={.spec.ephemeralContainers[*].name}")
    assert names.strip() == "dbg"


def test_apply_changes_a_node_port_service_to_cluster_ip(server: ServerHandle, tmp_path: Path) -> None:
    manifest = tmp_path / "svc.json"
    spec: dict[str, Any] = {"type": "NodePort", "selector": {"app": "x"}, "ports": [{"port": 80}]}
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "np-to-cip"},
        "spec": spec,
    }
    manifest.write_text(json.dumps(svc))
    kubectl(server, "apply", "-f", str(manifest))
    spec["type"] = "ClusterIP"
    manifest.write_text(json.dumps(svc))
    kubectl(server, "apply", "-f", str(manifest))
    live = json.loads(kubectl(server, "get", "svc", "np-to-cip", "-o", "json"))
    assert live["spec"]["type"] == "ClusterIP"
    assert "nodePort" not in live["spec"]["ports"][0]
    kubectl(server, "delete", "svc", "np-to-cip")


def test_kubectl_explain_describes_fields_from_the_openapi_schemas(server: ServerHandle) -> None:
    out = kubectl(server, "explain", "pods.spec")
    assert "FIELD: spec <PodSpec>" in out
    assert "containers\t<[]Container> -required-" in out
    out = kubectl(server, "explain", "deployments.spec.replicas")
    assert "FIELD: replicas <integer>" in out
    assert "desired pods" in out
