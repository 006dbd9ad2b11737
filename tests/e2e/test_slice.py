"""The end-to-end slice, driven by the real kubectl: `tinykube up` in a test-made network namespace →
a Deployment of busybox web servers + a ClusterIP and a NodePort Service → every replica reachable
through both → scale → a rolling update without a failed request → delete, and nothing is left.

The tests run in file order against one cluster (module fixture): each step builds on the previous."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.cgroups import scratch_cgroup
from tests.support.namespaces import NetNS, add_netns, delete_netns, unique_name

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "examples" / "web.yaml"
NODE_IP = "172.31.255.1"
NODE_NAME = "slice-node"
REPLICAS = 3

# One HTTP GET per line of output target; runs inside the cluster's netns with its own interpreter.
CLIENT = r"""
import json, os, sys, time, urllib.request
url, limit, pause, stop_file = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
seen, failures, deadline = {}, [], time.monotonic() + 120
for _ in range(limit):
    if (stop_file and os.path.exists(stop_file)) or time.monotonic() > deadline:
        break
    try:
        with opener.open(url, timeout=5) as r:
            body = r.read().decode().strip()
        seen[body] = seen.get(body, 0) + 1
    except Exception as e:
        failures.append(repr(e))
    time.sleep(pause)
print(json.dumps({"seen": seen, "failures": failures}))
"""


@dataclass
class Cluster:
    ns: NetNS
    data_dir: Path
    home: Path
    cgroup_root: str
    process: subprocess.Popen[bytes]

    @property
    def kubeconfig(self) -> str:
        return str(self.data_dir / "admin.kubeconfig")

    def kubectl(self, *args: str, check: bool = True, timeout: float = 60) -> str:
        out = self.ns.run(
            ["env", f"HOME={self.home}", "kubectl", "--kubeconfig", self.kubeconfig, *args],
            check=False,
            timeout=timeout,
        )
        if check and out.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {out.stderr}")
        return out.stdout

    def get(self, *args: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.kubectl("get", *args, "-o", "json"))
        return result

    def requests(self, url: str, count: int, pause: float = 0.0, stop_file: str = "") -> dict[str, Any]:
        out = self.ns.run([sys.executable, "-I", "-c", CLIENT, url, str(count), str(pause), stop_file], timeout=150)
        result: dict[str, Any] = json.loads(out.stdout)
        return result

    def log(self, component: str) -> str:
        path = self.data_dir / "logs" / f"{component}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def wait_for(predicate: Any, timeout: float, what: str, step: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def ready_pods(cluster: Cluster) -> list[dict[str, Any]]:
    pods = cluster.get("pods", "-l", "app=web")["items"]
    return [
        p
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
        and p.get("status", {}).get("phase") == "Running"
        and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    ]


def bodies_by_pod(cluster: Cluster, url: str, pods: list[dict[str, Any]], count: int) -> dict[str, Any]:
    result = cluster.requests(url, count)
    names = {body.split()[0] for body in result["seen"]}
    return {"names": names, "expected": {p["metadata"]["name"] for p in pods}, "failures": result["failures"]}


@contextlib.contextmanager
def running_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """`tinykube up` in a fresh netns with a node address and a default route, pods under a scratch
    cgroup; stopped with SIGTERM and the netns deleted afterwards."""
    data_dir = tmp_path_factory.mktemp("slice")
    home = tmp_path_factory.mktemp("home")
    ns = add_netns(unique_name("tks"))
    # The node's address: one end of a veth pair inside the cluster's netns (there is no dummy link here).
    ns.run(["ip", "link", "add", "tkn0", "type", "veth", "peer", "name", "tkn1"])
    ns.run(["ip", "addr", "add", f"{NODE_IP}/24", "dev", "tkn0"])
    ns.run(["ip", "link", "set", "tkn0", "up"])
    ns.run(["ip", "link", "set", "tkn1", "up"])
    # Like any host, the node needs a route for ClusterIPs to leave through before DNAT rewrites them.
    ns.run(["ip", "route", "add", "default", "via", "172.31.255.2", "dev", "tkn0"])
    with scratch_cgroup() as cg:
        log = open(data_dir / "up.out", "wb")  # noqa: SIM115 - the child's stdout, closed below
        # nsenter, not `ip netns exec`: the latter remounts /sys, hiding the cgroup hierarchies from cri.
        proc = subprocess.Popen(
            ["nsenter", f"--net={ns.path}", "--", sys.executable, "-m", "tinykube", "up",
             "--data-dir", str(data_dir), "--node-name", NODE_NAME, "--node-ip", NODE_IP,
             "--cgroup-root", cg.name, "--ready-timeout", "60",
             "--node-arg=--backoff-initial=1", "--node-arg=--backoff-max=4"],
            stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO),
        )  # fmt: skip
        log.close()
        c = Cluster(ns, data_dir, home, cg.name, proc)
        try:
            wait_for(lambda: b"kubectl get nodes" in (data_dir / "up.out").read_bytes(), 120, "tinykube up")
            yield c
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            delete_netns(ns)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory) as c:
        yield c


def test_node_registers_and_is_ready(cluster: Cluster) -> None:
    node = cluster.get("node", NODE_NAME)
    conditions = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert conditions["Ready"] == "True", cluster.log("node")
    assert {"type": "InternalIP", "address": NODE_IP} in node["status"]["addresses"]
    assert node["spec"]["podCIDR"] == "10.244.0.0/24"
    assert int(node["status"]["capacity"]["cpu"]) >= 1
    lease = cluster.get("lease", NODE_NAME, "-n", "kube-node-lease")
    assert lease["spec"]["holderIdentity"] == NODE_NAME


def test_deployment_pods_become_running_and_ready(cluster: Cluster) -> None:
    cluster.kubectl("apply", "-f", str(MANIFEST))
    wait_for(lambda: len(ready_pods(cluster)) == REPLICAS, 90, f"{REPLICAS} ready pods\n{cluster.log('node')}")
    for pod in ready_pods(cluster):
        assert pod["status"]["podIP"].startswith("10.244.0.")
        assert pod["status"]["containerStatuses"][0]["restartCount"] == 0


def test_clusterip_reaches_every_replica(cluster: Cluster) -> None:
    ip = cluster.get("service", "web")["spec"]["clusterIP"]
    pods = ready_pods(cluster)
    wait_for(
        lambda: (r := bodies_by_pod(cluster, f"http://{ip}/", pods, 30))["names"] == r["expected"],
        45,
        f"all replicas behind http://{ip}/\n{cluster.log('proxy')}",
        step=1,
    )


def test_nodeport_reaches_every_replica(cluster: Cluster) -> None:
    port = cluster.get("service", "web-nodeport")["spec"]["ports"][0]["nodePort"]
    pods = ready_pods(cluster)
    wait_for(
        lambda: (r := bodies_by_pod(cluster, f"http://{NODE_IP}:{port}/", pods, 30))["names"] == r["expected"],
        45,
        f"all replicas behind NodePort {port}",
        step=1,
    )


def test_scale_to_five_adds_reachable_replicas(cluster: Cluster) -> None:
    cluster.kubectl("scale", "deployment/web", "--replicas=5")
    wait_for(lambda: len(ready_pods(cluster)) == 5, 90, "5 ready pods")
    ip = cluster.get("service", "web")["spec"]["clusterIP"]
    pods = ready_pods(cluster)
    wait_for(
        lambda: (r := bodies_by_pod(cluster, f"http://{ip}/", pods, 50))["names"] == r["expected"],
        45,
        "all 5 replicas behind the ClusterIP",
        step=1,
    )


def test_rolling_update_serves_every_request(cluster: Cluster, tmp_path: Path) -> None:
    ip = cluster.get("service", "web")["spec"]["clusterIP"]
    stop_file = str(tmp_path / "stop")
    client = cluster.ns.popen(
        [sys.executable, "-I", "-c", CLIENT, f"http://{ip}/", "3000", "0.02", stop_file],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(1)
        cluster.kubectl("set", "env", "deployment/web", "VERSION=v2")
        cluster.kubectl("rollout", "status", "deployment/web", "--timeout=120s", timeout=130)
        wait_for(
            lambda: (
                len(ready_pods(cluster)) == 5
                and all(p["spec"]["containers"][0]["env"][0]["value"] == "v2" for p in ready_pods(cluster))
            ),
            60,
            "5 ready v2 pods",
        )
        time.sleep(1)
    finally:
        Path(stop_file).touch()
        out, _err = client.communicate(timeout=60)
    result = json.loads(out)
    versions = {body.split()[-1] for body in result["seen"]}
    assert result["failures"] == [], result["failures"][:5]
    assert {"v1", "v2"} <= versions
    assert sum(result["seen"].values()) > 100


def _pod_leftovers(cluster: Cluster) -> dict[str, Any]:
    veths = cluster.ns.run(["ip", "-o", "link", "show", "type", "veth"]).stdout
    extra_veths = [line.split(":")[1].strip().split("@")[0] for line in veths.splitlines()]
    extra_veths = [v for v in extra_veths if v not in ("tkn0", "tkn1")]
    ipam = cluster.data_dir / "cni" / "networks"
    ips = [p.name for p in ipam.rglob("*") if p.is_file() and p.name[0].isdigit() and "." in p.name]
    cgroups = []
    for hierarchy in ("memory", "pids", "cpu"):
        root = Path("/sys/fs/cgroup", hierarchy, cluster.cgroup_root)
        if root.is_dir():
            cgroups += [str(p) for p in root.iterdir() if p.is_dir()]
    rules = [r for r in cluster.ns.run(["iptables-save"]).stdout.splitlines() if "default/web" in r]
    procs = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if b"httpd -f -p 8080" in cmdline:
                procs.append(entry.name)
    return {"veths": extra_veths, "ips": ips, "cgroups": cgroups, "rules": rules, "processes": procs}


def test_delete_leaves_no_process_veth_ip_cgroup_or_rule(cluster: Cluster) -> None:
    cluster.kubectl("delete", "-f", str(MANIFEST), "--wait=true", timeout=120)
    wait_for(lambda: not cluster.get("pods", "-l", "app=web")["items"], 90, "pods gone")
    empty: dict[str, list[str]] = {"veths": [], "ips": [], "cgroups": [], "rules": [], "processes": []}
    wait_for(lambda: _pod_leftovers(cluster) == empty, 30, f"clean node: {_pod_leftovers(cluster)}")
    assert os.path.isdir(cluster.data_dir / "cni")
