"""`tinykube server --storage etcd` driven by the real kubectl: objects live in etcd, survive a server
restart, and reach watchers through the etcd watch that feeds the server's cache."""

from __future__ import annotations

import json
import select
import subprocess
from pathlib import Path

from controlplane.testing.server import start_server

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "nginx:IMAGE"}]
"""


def _kubectl(kubeconfig: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", "--kubeconfig", kubeconfig, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_kubectl_apply_on_an_etcd_backed_server_survives_a_restart(etcd_url: str, tmp_path: Path) -> None:
    with start_server(tmp_path, controllers=False, storage="etcd", etcd_endpoints=[etcd_url]) as srv:
        first = _kubectl(srv.kubeconfig, "apply", "-f", "-", stdin=DEPLOYMENT.replace("IMAGE", "1.25"))
        assert first.returncode == 0, first.stderr
        second = _kubectl(srv.kubeconfig, "apply", "-f", "-", stdin=DEPLOYMENT.replace("IMAGE", "1.26"))
        assert "configured" in second.stdout, second.stderr
        before = json.loads(_kubectl(srv.kubeconfig, "get", "deploy", "web", "-o", "json").stdout)
        srv.stop()
        srv.start()
        after = json.loads(_kubectl(srv.kubeconfig, "get", "deploy", "web", "-o", "json").stdout)
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"
    assert after["spec"]["strategy"]["type"] == "RollingUpdate"  # defaulted on the way in


def test_watch_on_an_etcd_backed_server_sees_a_create(etcd_url: str, tmp_path: Path) -> None:
    with start_server(tmp_path, controllers=False, storage="etcd", etcd_endpoints=[etcd_url]) as srv:
        watch = ["get", "configmaps", "--watch-only", "-o", "name", "--request-timeout=20s"]
        cmd = ["kubectl", "--kubeconfig", srv.kubeconfig, *watch]
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as watcher:
            assert watcher.stdout is not None
            try:
                # The watch starts at some point after launch: create until one create is reported.
                for i in range(20):
                    created = _kubectl(srv.kubeconfig, "create", "configmap", f"seen-{i}", "--from-literal=a=b")
                    assert created.returncode == 0, created.stderr
                    if select.select([watcher.stdout], [], [], 0.5)[0]:
                        break
                assert watcher.stdout.readline().strip().startswith("configmap/seen-")
            finally:
                watcher.kill()
