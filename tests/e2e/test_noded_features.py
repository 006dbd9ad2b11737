"""noded through the real kubectl on a `tinykube up` cluster: logs, exec (piped stdin and a terminal too),
attach, env and volumes from the API, crash-loop back-off, liveness probes, static pods with mirror pods,
and restart safety (kill -9 noded: running pods are adopted untouched; a pod deleted meanwhile is cleaned
up)."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_slice import NODE_NAME, Cluster, running_cluster, wait_for

PODS = """
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {greeting: hello}
---
apiVersion: v1
kind: Secret
metadata: {name: sec}
data: {password: czNjcjN0}
---
apiVersion: v1
kind: Pod
metadata: {name: feat, labels: {tier: test}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
    - name: main
      image: busybox
      imagePullPolicy: IfNotPresent
      command: ["sh", "-c", "echo \\"$GREETING $PASSWORD $MY_NODE\\"; exec sleep 3600"]
      env:
        - name: GREETING
          valueFrom: {configMapKeyRef: {name: cfg, key: greeting}}
        - name: PASSWORD
          valueFrom: {secretKeyRef: {name: sec, key: password}}
        - name: MY_NODE
          valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
      resources:
        limits: {memory: 64Mi, cpu: 500m}
      volumeMounts:
        - {name: cfg, mountPath: /etc/cfg}
        - {name: sec, mountPath: /etc/sec}
        - {name: scratch, mountPath: /scratch}
        - {name: podinfo, mountPath: /etc/podinfo}
  volumes:
    - {name: cfg, configMap: {name: cfg}}
    - {name: sec, secret: {secretName: sec}}
    - {name: scratch, emptyDir: {medium: Memory}}
    - name: podinfo
      downwardAPI:
        items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]
---
apiVersion: v1
kind: Pod
metadata: {name: crash}
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - {name: main, image: busybox, imagePullPolicy: IfNotPresent, command: ["sh", "-c", "echo boom; exit 3"]}
---
apiVersion: v1
kind: Pod
metadata: {name: live}
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      image: busybox
      imagePullPolicy: IfNotPresent
      command: ["sleep", "3600"]
      livenessProbe:
        tcpSocket: {port: 8080}
        periodSeconds: 1
        failureThreshold: 1
"""

STATIC = """
apiVersion: v1
kind: Pod
metadata: {name: static-web}
spec:
  containers:
    - {name: main, image: busybox, imagePullPolicy: IfNotPresent, command: ["sleep", "3600"]}
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory) as c:
        manifest = c.data_dir / "pods.yaml"
        manifest.write_text(PODS)
        c.kubectl("apply", "-f", str(manifest))
        wait_for(lambda: _phase(c, "feat") == "Running", 60, f"pod feat running\n{c.log('node')}")
        yield c


def _pod(c: Cluster, name: str) -> dict[str, Any]:
    return c.get("pod", name)


def _phase(c: Cluster, name: str) -> str:
    return str(_pod(c, name).get("status", {}).get("phase", ""))


def _container(c: Cluster, name: str) -> dict[str, Any]:
    statuses = _pod(c, name).get("status", {}).get("containerStatuses") or [{}]
    return dict(statuses[0])


def test_kubectl_logs_show_env_from_configmap_secret_and_field_ref(cluster: Cluster) -> None:
    wait_for(lambda: "hello s3cr3t" in cluster.kubectl("logs", "feat"), 20, "log line")
    assert cluster.kubectl("logs", "feat").strip() == f"hello s3cr3t {NODE_NAME}"


def test_kubectl_logs_follow_streams_until_the_container_exits(cluster: Cluster) -> None:
    ticker = cluster.data_dir / "ticker.yaml"
    ticker.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: ticker}\nspec:\n  restartPolicy: Never\n  containers:\n"
        "    - {name: main, image: busybox, imagePullPolicy: IfNotPresent,\n"
        "       command: [sh, -c, 'for i in 1 2 3 4 5 6; do echo tick $i; sleep 0.5; done']}\n"
    )
    cluster.kubectl("apply", "-f", str(ticker))
    wait_for(lambda: _phase(cluster, "ticker") in ("Running", "Succeeded"), 30, "ticker running")
    started = time.monotonic()
    out = cluster.kubectl("logs", "-f", "ticker", timeout=30)
    assert out.split("\n")[:6] == [f"tick {i}" for i in range(1, 7)]
    assert time.monotonic() - started < 20
    wait_for(lambda: _phase(cluster, "ticker") == "Succeeded", 20, "ticker succeeded")
    cluster.kubectl("delete", "pod", "ticker", "--wait=true")


def test_kubectl_exec_returns_output_and_exit_code(cluster: Cluster) -> None:
    assert cluster.kubectl("exec", "feat", "--", "cat", "/etc/cfg/greeting").strip() == "hello"
    out = cluster.ns.run(
        ["env", f"HOME={cluster.home}", "kubectl", "--kubeconfig", cluster.kubeconfig, "exec", "feat", "--",
         "sh", "-c", "echo oops >&2; exit 4"],
        check=False,
    )  # fmt: skip
    assert out.returncode == 4, out.stderr
    assert "oops" in out.stderr


def test_exec_with_stdin_feeds_piped_input_to_the_command(cluster: Cluster) -> None:
    out = cluster.ns.run(
        ["env", f"HOME={cluster.home}", "kubectl", "--kubeconfig", cluster.kubeconfig, "exec", "-i", "feat", "--",
         "sh", "-c", "read x; echo got $x; echo oops >&2; exit 5"],
        check=False, input="hello\n", timeout=30,
    )  # fmt: skip
    assert out.stdout == "got hello\n"
    assert "oops" in out.stderr
    assert out.returncode == 5, out.stderr


def _kubectl_in_pty(cluster: Cluster, *args: str, answer: tuple[bytes, bytes], timeout: float = 30) -> str:
    """Run kubectl with a 33x99 terminal as stdin/stdout/stderr; type `answer[1]` once `answer[0]`
    shows up; return everything the terminal showed when kubectl ends (bounded by `timeout`)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 99, 0, 0))
    proc = cluster.ns.popen(
        ["env", f"HOME={cluster.home}", "kubectl", "--kubeconfig", cluster.kubeconfig, *args],
        stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
    )  # fmt: skip
    os.close(slave)
    shown, typed, deadline = b"", False, time.monotonic() + timeout
    try:
        while True:
            ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise AssertionError(f"kubectl {' '.join(args)} still running after {timeout}s: {shown!r}")
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: kubectl, the terminal's last user, is gone
                break
            if not chunk:
                break
            shown += chunk
            if not typed and answer[0] in shown:
                os.write(master, answer[1])
                typed = True
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return shown.decode(errors="replace")


def test_exec_with_a_tty_runs_under_a_terminal_of_the_clients_size(cluster: Cluster) -> None:
    script = (
        'for i in $(seq 25); do s=$(stty size); [ "$s" = "33 99" ] && break; sleep 0.2; done; '
        'tty; echo "size $s"; read x; echo "got $x"'
    )
    shown = _kubectl_in_pty(cluster, "exec", "-it", "feat", "--", "sh", "-c", script, answer=(b"size", b"hi\r"))
    assert "/dev/pts/" in shown
    assert "size 33 99" in shown
    assert "got hi" in shown


def test_kubectl_attach_streams_stdin_and_output_of_the_main_process(cluster: Cluster) -> None:
    talk = cluster.data_dir / "talk.yaml"
    talk.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: talk}\nspec:\n  restartPolicy: Never\n"
        "  terminationGracePeriodSeconds: 1\n  containers:\n"
        "    - {name: main, image: busybox, imagePullPolicy: IfNotPresent, stdin: true,\n"
        "       command: [sh, -c, 'while read x; do echo \"got $x\"; done; echo bye']}\n"
    )
    cluster.kubectl("apply", "-f", str(talk))
    wait_for(lambda: _phase(cluster, "talk") == "Running", 30, "talk running")
    out = cluster.ns.run(
        ["env", f"HOME={cluster.home}", "kubectl", "--kubeconfig", cluster.kubeconfig, "attach", "-i", "talk"],
        check=False, input="hello\n", timeout=30,
    )  # fmt: skip
    assert "got hello\nbye\n" in out.stdout, out.stderr
    wait_for(lambda: _phase(cluster, "talk") == "Succeeded", 30, "talk succeeded after stdin closed")
    cluster.kubectl("delete", "pod", "talk", "--wait=true")


# kubectl port-forward speaks SPDY (tunnelled in a WebSocket); the official Python client speaks the
# WebSocket channel protocol (`v4.channel.k8s.io`) that the API server, noded and cri relay.
PORT_FORWARD_CLIENT = r"""
import sys
from kubernetes import client, config
from kubernetes.stream import portforward
config.load_kube_config(config_file=sys.argv[1])
pf = portforward(client.CoreV1Api().connect_get_namespaced_pod_portforward, sys.argv[2], "default", ports="8080")
conn = pf.socket(8080)
conn.settimeout(10)
data = b""
while b"\n" not in data and (chunk := conn.recv(1024)):
    data += chunk
print(data.decode().strip())
conn.close()
"""


def test_port_forward_reaches_a_port_inside_the_pod(cluster: Cluster) -> None:
    listen = cluster.data_dir / "listen.yaml"
    listen.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: listen}\nspec:\n  terminationGracePeriodSeconds: 1\n"
        "  containers:\n    - {name: main, image: busybox, imagePullPolicy: IfNotPresent,\n"
        "       command: [sh, -c, 'while true; do echo hello-from-pod | nc -l -p 8080; done']}\n"
    )
    cluster.kubectl("apply", "-f", str(listen))
    wait_for(lambda: _phase(cluster, "listen") == "Running", 30, "listen running")
    wait_for(lambda: ":8080 " in cluster.kubectl("exec", "listen", "--", "netstat", "-ltn"), 20, "nc listening")
    out = cluster.ns.run(
        [sys.executable, "-I", "-c", PORT_FORWARD_CLIENT, cluster.kubeconfig, "listen"], check=False, timeout=40
    )
    assert out.stdout.strip() == "hello-from-pod", out.stderr[-2000:]
    cluster.kubectl("delete", "pod", "listen", "--wait=true")


def test_volumes_are_mounted_into_the_container(cluster: Cluster) -> None:
    assert cluster.kubectl("exec", "feat", "--", "cat", "/etc/sec/password").strip() == "s3cr3t"
    assert 'tier="test"' in cluster.kubectl("exec", "feat", "--", "cat", "/etc/podinfo/labels")
    mounts = cluster.kubectl("exec", "feat", "--", "cat", "/proc/mounts")
    assert any(line.split()[1] == "/scratch" and line.split()[2] == "tmpfs" for line in mounts.splitlines())
    sa = cluster.kubectl("exec", "feat", "--", "ls", "/var/run/secrets/kubernetes.io/serviceaccount")
    assert {"ca.crt", "namespace", "token"} <= set(sa.split())


def test_resource_limits_reach_the_container_cgroup(cluster: Cluster) -> None:
    root = Path("/sys/fs/cgroup/memory", cluster.cgroup_root)
    limits = {p.read_text().strip() for p in root.rglob("memory.limit_in_bytes")}
    assert str(64 << 20) in limits
    quotas = {p.read_text().strip() for p in Path("/sys/fs/cgroup/cpu", cluster.cgroup_root).rglob("cpu.cfs_quota_us")}
    assert "50000" in quotas


def test_projected_token_authenticates_to_the_api_server_through_the_kubernetes_service(cluster: Cluster) -> None:
    token = cluster.kubectl("exec", "feat", "--", "cat", "/var/run/secrets/kubernetes.io/serviceaccount/token")
    env = cluster.kubectl("exec", "feat", "--", "env")
    assert "KUBERNETES_SERVICE_HOST=10.96.0.1" in env
    # 401 would mean the token is not accepted; a ServiceAccount without RBAC grants gets 200 or 403.
    script = (
        "import ssl, sys, urllib.request, urllib.error\n"
        "ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE\n"
        "req = urllib.request.Request('https://10.96.0.1/api/v1/namespaces/default/pods',"
        " headers={'Authorization': 'Bearer ' + sys.argv[1]})\n"
        "try:\n    print(urllib.request.urlopen(req, context=ctx, timeout=5).status)\n"
        "except urllib.error.HTTPError as e:\n    print(e.code)\n"
    )
    out = cluster.ns.run([sys.executable, "-I", "-c", script, token.strip()])
    assert out.stdout.strip() in ("200", "403"), out


def test_crashing_container_shows_crashloopbackoff_and_previous_logs(cluster: Cluster) -> None:
    def crashlooping() -> bool:
        st = _container(cluster, "crash")
        reason = st.get("state", {}).get("waiting", {}).get("reason")
        return reason == "CrashLoopBackOff" and int(st["restartCount"]) >= 1

    wait_for(crashlooping, 60, "CrashLoopBackOff")
    # The STATUS column flips between Error, CrashLoopBackOff and Running as the container cycles.
    wait_for(lambda: "CrashLoopBackOff" in cluster.kubectl("get", "pod", "crash"), 30, "CrashLoopBackOff in kubectl")
    assert _container(cluster, "crash")["lastState"]["terminated"]["exitCode"] == 3
    assert cluster.kubectl("logs", "crash", "--previous").strip() == "boom"


def test_failing_liveness_probe_restarts_the_container(cluster: Cluster) -> None:
    wait_for(lambda: _container(cluster, "live").get("restartCount", 0) >= 1, 60, "a liveness restart")

    def reported() -> bool:
        events = cluster.kubectl("get", "events", "--field-selector", "involvedObject.name=live")
        return "Unhealthy" in events and "Killing" in events

    wait_for(reported, 20, "Unhealthy and Killing events")


def test_static_pod_runs_with_a_mirror_pod(cluster: Cluster) -> None:
    (cluster.data_dir / "manifests" / "static.yaml").write_text(STATIC)
    mirror = f"static-web-{NODE_NAME}"
    wait_for(lambda: mirror in cluster.kubectl("get", "pods") and _phase(cluster, mirror) == "Running", 40, "mirror")
    annotations = _pod(cluster, mirror)["metadata"]["annotations"]
    assert "kubernetes.io/config.mirror" in annotations
    (cluster.data_dir / "manifests" / "static.yaml").unlink()
    wait_for(lambda: mirror not in cluster.kubectl("get", "pods"), 40, "mirror pod removed")


def _noded_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"tinykube\0node\0" in cmdline:
                pids.append(int(entry.name))
    return pids


def test_killed_noded_adopts_running_pods_and_cleans_up_deleted_ones(cluster: Cluster) -> None:
    victim = cluster.data_dir / "victim.yaml"
    victim.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: victim}\nspec:\n  containers:\n"
        "    - {name: main, image: busybox, imagePullPolicy: IfNotPresent, command: [sleep, '3601']}\n"
    )
    cluster.kubectl("apply", "-f", str(victim))
    wait_for(lambda: _phase(cluster, "victim") == "Running", 60, "victim running")
    before = _container(cluster, "feat")
    (old_pid,) = _noded_pids()

    os.kill(old_pid, signal.SIGKILL)
    cluster.kubectl("delete", "pod", "victim", "--force", "--grace-period=0")
    wait_for(lambda: bool(_noded_pids()) and _noded_pids() != [old_pid], 30, "noded restarted by tinykube up")
    wait_for(lambda: not _sleepers(b"3601"), 30, "victim's process gone")

    time.sleep(2)
    after = _container(cluster, "feat")
    assert after["containerID"] == before["containerID"]
    assert after["restartCount"] == before["restartCount"]
    assert _phase(cluster, "feat") == "Running"
    wait_for(lambda: "hello" in cluster.kubectl("exec", "feat", "--", "cat", "/etc/cfg/greeting"), 20, "exec")


def _sleepers(arg: bytes) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmdline[:1] == [b"sleep"] and arg in cmdline:
                found.append(entry.name)
    return found


def test_deleting_the_pods_stops_them_gracefully(cluster: Cluster) -> None:
    out = cluster.kubectl("delete", "pod", "feat", "crash", "live", "--wait=true", timeout=90)
    assert out.count("deleted") == 3
    assert not _sleepers(b"3600")
