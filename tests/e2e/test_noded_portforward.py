"""`kubectl port-forward` against `tinykube up`: kubectl tunnels SPDY/3.1 in a WebSocket
(`SPDY/3.1+portforward.k8s.io`) through the API server to noded, which joins each local connection to
a connection to the pod's port through the runtime's streaming server."""

from __future__ import annotations

import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.e2e.test_slice import Cluster, running_cluster, wait_for

BULK = 300_000  # well past SPDY's 64 KiB initial windows

LISTEN = f"""
apiVersion: v1
kind: Pod
metadata: {{name: listen}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: hello
      image: busybox
      imagePullPolicy: IfNotPresent
      command: [sh, -c, 'while true; do echo hello-from-pod | nc -l -p 8080; done']
    - name: bulk
      image: busybox
      imagePullPolicy: IfNotPresent
      command: [sh, -c, 'while true; do head -c {BULK} /dev/zero | nc -l -p 8081; done']
    - name: closer
      image: busybox
      imagePullPolicy: IfNotPresent
      command: [nc, -ll, -p, "8082", -e, echo, closing-pod]
"""

# Connects inside the cluster's netns (where kubectl listens); prints the first line it receives, or
# with a byte count, how many bytes came before that many arrived or the peer closed.
CONNECT = r"""
import socket, sys
want = int(sys.argv[2]) if len(sys.argv) > 2 else 0
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10) as s:
    data = b""
    while (len(data) < want if want else b"\n" not in data) and (chunk := s.recv(65536)):
        data += chunk
print(len(data) if want else data.decode().strip())
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory) as c:
        manifest = c.data_dir / "listen.yaml"
        manifest.write_text(LISTEN)
        c.kubectl("apply", "-f", str(manifest))
        for port in (8080, 8081, 8082):
            wait_for(lambda p=port: _listening(c, p), 90, f"nc listening on {port}\n{c.log('node')}")
        yield c


@pytest.fixture(scope="module")
def local_ports(cluster: Cluster) -> Iterator[dict[int, int]]:
    """`kubectl port-forward pod/listen :8080 :8081 :8082` running for the module; pod port -> local port."""
    proc = cluster.ns.popen(
        ["env", f"HOME={cluster.home}", "kubectl", "--kubeconfig", cluster.kubeconfig,
         "port-forward", "pod/listen", ":8080", ":8081", ":8082"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield _forwarded_ports(proc, 3, 30)
        assert proc.poll() is None, "kubectl port-forward exited while serving connections"
    finally:
        proc.kill()
        proc.wait(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()


def _listening(c: Cluster, port: int) -> bool:
    out = c.kubectl("exec", "listen", "-c", "hello", "--", "netstat", "-ltn", check=False, timeout=20)
    return f":{port} " in out


def _forwarded_ports(proc: subprocess.Popen[bytes], count: int, timeout: float) -> dict[int, int]:
    """Pod port -> local port, from kubectl's `Forwarding from 127.0.0.1:N -> P` lines."""
    assert proc.stdout is not None
    shown, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = proc.stdout.read1(4096)  # type: ignore[attr-defined]
        if not chunk:
            break
        shown += chunk
        found = {int(p): int(local) for local, p in re.findall(rb"Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)", shown)}
        if len(found) == count:
            return found
    raise AssertionError(f"kubectl port-forward did not start within {timeout}s: {shown!r}")


def _connect(cluster: Cluster, port: int, *args: str) -> str:
    out = cluster.ns.run([sys.executable, "-I", "-c", CONNECT, str(port), *args], check=False, timeout=30)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def test_kubectl_port_forward_relays_each_local_connection_to_the_pod_port(
    cluster: Cluster, local_ports: dict[int, int]
) -> None:
    assert _connect(cluster, local_ports[8080]) == "hello-from-pod"
    # A second local connection is a new stream pair (request id) on the same SPDY session.
    wait_for(lambda: _listening(cluster, 8080), 30, "nc listening again")
    assert _connect(cluster, local_ports[8080]) == "hello-from-pod"


def test_kubectl_port_forward_carries_more_than_a_spdy_window(cluster: Cluster, local_ports: dict[int, int]) -> None:
    assert _connect(cluster, local_ports[8081], str(BULK)) == str(BULK)


def test_kubectl_port_forward_closes_the_local_connection_when_the_pod_closes(
    cluster: Cluster, local_ports: dict[int, int]
) -> None:
    # Read until the peer closes (a 10 s socket timeout fails the client): echo exits, nc hangs up, and
    # the close has to travel back through the runtime's stream, noded's SPDY session and kubectl.
    assert _connect(cluster, local_ports[8082], str(10**9)) == str(len(b"closing-pod\n"))
