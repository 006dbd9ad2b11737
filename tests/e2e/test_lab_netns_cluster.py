"""A 3-node tinykube cluster from `tinykube lab up` (each node a network namespace), driven by the real
kubectl: nodes Ready fast, pods reach pods on other nodes, Services answer from every node, and
`lab down` leaves nothing behind. Runs once with static pod routes and once over VXLAN."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tinykube.lab import netns, netns_cgroups, netns_state
from tinykube.lab.netns_plan import LabPlan, plan
from tinykube.lab.netns_state import LabState

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
REQUIRED_MODULES = {
    "controlplane.cli": "the API server (issue 6)",
    "noded.cli": "the node agent (issue 8)",
    "cri.cli": "the CRI runtime (issue 4)",
    "cri.api.gen.api_pb2": "generated CRI stubs (`make proto`)",
    "netproxy.cli": "the Service proxy (issue 9)",
    "cni.install": "the CNI plugin installer (issue 5)",
}
READY_GOAL = 15.0  # seconds to 3 Ready nodes on an idle 2-core machine (issue 11); ~4 s measured


def _missing() -> str:
    for module, what in REQUIRED_MODULES.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            return f"{what}: module {module} is missing"
    if not os.path.exists(KUBECTL):
        return "kubectl is not installed"
    if shutil.which("busybox") is None:
        return "busybox-static is not installed (the built-in busybox image)"
    return ""


pytestmark = pytest.mark.skipif(bool(_missing()), reason=_missing() or "ready")

WEB = """
apiVersion: v1
kind: Pod
metadata: {{name: web{i}, labels: {{app: web, node: n{i}}}}}
spec:
  nodeName: {node}
  containers:
  - name: web
    image: busybox
    command: ["sh", "-c", "echo web{i} >/tmp/index.html; exec httpd -f -p 8080 -h /tmp"]
"""
SERVICES = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-np}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-local}
spec:
  type: NodePort
  externalTrafficPolicy: Local
  selector: {app: web, node: n1}
  ports: [{port: 80, targetPort: 8080}]
"""
CLIENT = """
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  nodeName: {node}
  restartPolicy: Never
  containers:
  - name: client
    image: busybox
    command: ["sh", "-c", "for i in $(seq 20); do {get} && exit 0; sleep 0.5; done; exit 1"]
"""
FETCH = (
    "import sys, urllib.request\n"
    "for url in sys.argv[2:]:\n"
    "    try:\n"
    "        print(urllib.request.urlopen(url, timeout=float(sys.argv[1])).read().decode().strip())\n"
    "    except OSError as err:\n"
    "        print(f'error {err}')\n"
)


class Cluster:
    def __init__(self, lab: LabPlan, state: LabState) -> None:
        self.lab = lab
        self.state = state
        self.env = {**os.environ, "KUBECONFIG": state.kubeconfig}

    def kubectl(self, *args: str, input: str | None = None, timeout: float = 60) -> str:
        res = subprocess.run(
            [KUBECTL, *args], input=input, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        assert res.returncode == 0, f"kubectl {' '.join(args)}: {res.stderr}"
        return res.stdout

    def wait_answer(self, netns_name: str, url: str, timeout: float = 30.0) -> None:
        """Until url answers from netns_name: a proxy programs a Service a moment after its endpoints."""
        _until(
            f"{url} answers in {netns_name}",
            lambda: not self.fetch_from(netns_name, url)[0].startswith("error"),
            timeout,
        )

    def fetch_from(self, netns_name: str, *urls: str, timeout: float = 3.0) -> list[str]:
        """GET each url from inside a lab namespace (a node's, or the hub's)."""
        res = subprocess.run(
            ["ip", "netns", "exec", netns_name, sys.executable, "-c", FETCH, str(timeout), *urls],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return res.stdout.splitlines()


def _running_pids(pids: set[int]) -> set[int]:
    """Those of pids that still run (not zombies)."""
    alive = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    alive.add(pid)
        except FileNotFoundError:
            continue
    return alive


@pytest.fixture(scope="module", params=["static", "vxlan"])
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    from tinykube.lab.netns_daemons import TinykubeDaemons

    lab = plan(3, name=f"e{uuid.uuid4().hex[:6]}", mode=request.param)
    state_dir = tmp_path_factory.mktemp("lab") / "state"
    state = netns.up(lab, state_dir=state_dir, daemons=TinykubeDaemons(), api_port=0, timeout=120)
    c = Cluster(lab, state)
    try:
        for i, node in enumerate(lab.nodes, start=1):
            c.kubectl("apply", "-f", "-", input=WEB.format(i=i, node=node.name))
        c.kubectl("apply", "-f", "-", input=SERVICES)
        c.kubectl("wait", "--for=condition=Ready", "pod", "--all", "--timeout=90s", timeout=100)
        yield c
    finally:
        try:
            # Everything the lab runs: its daemons and whatever they started (pods included).
            lab_pids = netns_cgroups.pids(state.cgroups) | {r.pid for r in state.processes}
        finally:  # the lab goes down even if listing it failed: later tests must not meet its daemons
            if netns_state.exists(state_dir):
                netns.down(state_dir)
    assert not [n for n in lab.netns_names if os.path.exists(f"/run/netns/{n}")]
    assert not [d for d in state.cgroups.dirs if os.path.exists(d)]
    assert not _running_pids(lab_pids)


def _pod_ips(c: Cluster) -> dict[str, str]:
    pods = json.loads(c.kubectl("get", "pods", "-l", "app=web", "-o", "json"))["items"]
    return {p["spec"]["nodeName"]: p["status"]["podIP"] for p in pods}


def test_three_nodes_are_ready_within_the_goal_with_their_underlay_addresses(cluster: Cluster) -> None:
    assert cluster.state.ready_seconds is not None
    # Starting 10 Python daemons is CPU-bound: when other suites share the cores, the goal stretches
    # by how oversubscribed the machine was (1-minute load per core), never below the goal itself.
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    assert cluster.state.ready_seconds < READY_GOAL * max(1.0, load)
    nodes = json.loads(cluster.kubectl("get", "nodes", "-o", "json"))["items"]
    addresses = {
        n["metadata"]["name"]: [a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP"]
        for n in nodes
    }
    assert addresses == {n.name: [n.ip] for n in cluster.lab.nodes}
    print(
        f"\n{cluster.lab.mode}: {len(nodes)} nodes Ready in {cluster.state.ready_seconds:.1f} s {cluster.state.timings}"
    )


def test_nodes_joined_with_their_own_certificate_and_a_wrong_token_is_refused(cluster: Cluster, tmp_path: Path) -> None:
    node = cluster.lab.nodes[0]
    kubeconfig = Path(cluster.state.state_dir) / "nodes" / node.name / "etc" / "node.kubeconfig"
    users = yaml.safe_load(kubeconfig.read_text())["users"]
    assert [u["name"] for u in users] == [f"system:node:{node.name}"]
    assert "client-certificate-data" in users[0]["user"]
    join = [sys.executable, "-m", "tinykube", "node", "join", "--server", cluster.lab.api_url]
    join += ["--token", "abcdef.0123456789abcdef", "--node-name", "intruder", "--kubeconfig-out", str(tmp_path / "k")]
    res = subprocess.run(
        ["ip", "netns", "exec", node.name, *join], capture_output=True, text=True, timeout=60, check=False
    )
    assert res.returncode == 1
    assert "wrong token" in res.stderr
    assert not (tmp_path / "k").exists()


def test_each_pod_gets_an_address_from_its_node_pod_cidr(cluster: Cluster) -> None:
    ips = _pod_ips(cluster)
    for node in cluster.lab.nodes:
        assert ips[node.name].rsplit(".", 1)[0] == node.pod_cidr.rsplit(".", 1)[0]


def test_pods_on_other_nodes_answer_from_every_node(cluster: Cluster) -> None:
    ips = _pod_ips(cluster)
    for node in cluster.lab.nodes:
        others = [(name, ip) for name, ip in sorted(ips.items()) if name != node.name]
        answers = cluster.fetch_from(node.name, *(f"http://{ip}:8080/index.html" for _, ip in others))
        expected = [f"web{name.rsplit('node', 1)[1]}" for name, _ in others]
        assert answers == expected


def test_a_pod_reaches_a_pod_on_another_node(cluster: Cluster) -> None:
    ip3 = _pod_ips(cluster)[cluster.lab.nodes[2].name]
    get = f"printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc {ip3} 8080"
    cluster.kubectl("apply", "-f", "-", input=CLIENT.format(node=cluster.lab.nodes[0].name, get=get))
    cluster.kubectl("wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/client", "--timeout=60s", timeout=70)
    assert cluster.kubectl("logs", "client").rstrip().endswith("web3")


def test_cluster_ip_reaches_endpoints_on_other_nodes_from_every_node(cluster: Cluster) -> None:
    cluster_ip = cluster.kubectl("get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}")
    for node in cluster.lab.nodes:
        cluster.wait_answer(node.name, f"http://{cluster_ip}/index.html")
        local = f"web{node.index}"
        answers = cluster.fetch_from(node.name, *[f"http://{cluster_ip}/index.html"] * 12)
        assert all(a.startswith("web") for a in answers), answers
        assert set(answers) - {local}, f"{node.name} only reached its own pod: {answers}"


def test_pods_network_reaches_the_api_server_in_the_hub_through_the_kubernetes_service(cluster: Cluster) -> None:
    api = cluster.kubectl("get", "svc", "kubernetes", "-o", "jsonpath={.spec.clusterIP}")
    connect = f"import socket; socket.create_connection(('{api}', 443), timeout=3).close(); print('ok')"
    for node in cluster.lab.nodes:
        argv = ["ip", "netns", "exec", node.name, sys.executable, "-c", connect]
        assert subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True).stdout == "ok\n"


def test_node_port_answers_on_every_node_address_from_outside_the_nodes(cluster: Cluster) -> None:
    port = cluster.kubectl("get", "svc", "web-np", "-o", "jsonpath={.spec.ports[0].nodePort}")
    urls = [f"http://{n.ip}:{port}/index.html" for n in cluster.lab.nodes]
    for url in urls:
        cluster.wait_answer(cluster.lab.hub_netns, url)
    answers = cluster.fetch_from(cluster.lab.hub_netns, *urls)
    assert all(a.startswith("web") for a in answers), answers


def test_external_traffic_policy_local_node_port_answers_only_on_nodes_with_an_endpoint(cluster: Cluster) -> None:
    port = cluster.kubectl("get", "svc", "web-local", "-o", "jsonpath={.spec.ports[0].nodePort}")
    urls = [f"http://{n.ip}:{port}/index.html" for n in cluster.lab.nodes]
    cluster.wait_answer(cluster.lab.hub_netns, urls[0])
    answers = cluster.fetch_from(cluster.lab.hub_netns, *urls, timeout=1.0)  # the others drop: time out
    assert answers[0] == "web1"
    assert all(a.startswith("error") for a in answers[1:]), answers


def test_pods_run_in_their_node_pods_cgroup_so_down_can_find_them(cluster: Cluster) -> None:
    httpd: list[str] = []
    for pid in netns_cgroups.pids(cluster.state.cgroups):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if not f.read().startswith(b"httpd\0"):
                    continue
            with open(f"/proc/{pid}/cgroup") as f:
                httpd.append(f.read())
        except FileNotFoundError:
            continue
    assert len(httpd) == 3
    for node in cluster.lab.nodes:
        assert sum(f"/{cluster.state.cgroups.name}/{node.name}/pods/" in cg for cg in httpd) == 1, httpd


DAEMONSET = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers:
      - {name: sleep, image: busybox, command: ["sleep", "3600"]}
"""
SPREAD = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: spread}
spec:
  replicas: 3
  selector: {matchLabels: {app: spread}}
  template:
    metadata: {labels: {app: spread}}
    spec:
      terminationGracePeriodSeconds: 1
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 1}
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 1}
      containers:
      - {name: sleep, image: busybox, command: ["sleep", "3600"]}
"""


def _ready(c: Cluster, node: str) -> str:
    conds = json.loads(c.kubectl("get", "node", node, "-o", "json"))["status"].get("conditions") or []
    return next((cond["status"] for cond in conds if cond["type"] == "Ready"), "missing")


def _spread_pods(c: Cluster) -> list[dict[str, Any]]:
    pods: list[dict[str, Any]] = json.loads(c.kubectl("get", "pods", "-l", "app=spread", "-o", "json"))["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def _running(c: Cluster) -> list[dict[str, Any]]:
    return [p for p in _spread_pods(c) if p["status"].get("phase") == "Running"]


def _until(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(1)


def _only_once(cluster: Cluster) -> None:
    """Scheduling and node lifecycle do not depend on pod routing: prove them with static routes only."""
    if cluster.lab.mode != "static":
        pytest.skip("does not depend on pod routing: proven once, with static routes")


def test_a_daemonset_runs_one_pod_on_every_node(cluster: Cluster) -> None:
    _only_once(cluster)
    cluster.kubectl("apply", "-f", "-", input=DAEMONSET)
    try:

        def one_per_node() -> bool:
            pods = json.loads(cluster.kubectl("get", "pods", "-l", "app=agent", "-o", "json"))["items"]
            running = sorted(p["spec"].get("nodeName", "") for p in pods if p["status"].get("phase") == "Running")
            return running == sorted(n.name for n in cluster.lab.nodes)

        _until("one agent pod runs on every node", one_per_node, 60)
    finally:
        cluster.kubectl("delete", "daemonset", "agent", "--wait=false")


def test_a_frozen_node_goes_not_ready_and_its_pods_are_recreated_on_the_others(cluster: Cluster) -> None:
    """Runs last in the module: it stops one node's agent (SIGSTOP) and brings it back."""
    _only_once(cluster)
    cluster.kubectl("apply", "-f", "-", input=SPREAD)
    _until(
        "3 spread pods run", lambda: sum(p["status"].get("phase") == "Running" for p in _spread_pods(cluster)) == 3, 60
    )
    victim = _spread_pods(cluster)[0]["spec"]["nodeName"]
    noded = next(r for r in cluster.state.processes if r.owner == victim and r.role == "node")
    os.kill(noded.pid, signal.SIGSTOP)
    try:
        # 40 s of silence (the node monitor grace, Kubernetes' default) before the node is lost.
        _until(f"{victim} is not Ready", lambda: _ready(cluster, victim) in ("Unknown", "False"), 90)

        def recreated() -> bool:
            running = _running(cluster)
            return len(running) == 3 and all(p["spec"]["nodeName"] != victim for p in running)

        _until("the spread pods run on the other nodes", recreated, 90)
    finally:
        os.kill(noded.pid, signal.SIGCONT)
    _until(f"{victim} is Ready again", lambda: _ready(cluster, victim) == "True", 90)
