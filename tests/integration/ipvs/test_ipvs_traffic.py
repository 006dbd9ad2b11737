"""The IPVS backend against a real kernel: real virtual servers over netlink, real traffic from a
client host through a node to backend hosts, all in namespaces the test makes.

This machine's kernel has no ip_vs: here these tests skip, and `tests/integration/lab/
test_ipvs_in_guest.py` runs them inside the qemu kernel lab, where they really run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from netproxy.config import ProxyConfig
from netproxy.ipvs.backend import IPVSBackend, create
from netproxy.model import DesiredState, merge_slices, service_ports, slice_endpoints
from tests.support.namespaces import NetNS, link_hosts, temporary_netns
from tinykube.lab.nsthread import NetnsThread

HAS_IPVS = os.path.exists("/proc/net/ip_vs")
pytestmark = pytest.mark.skipif(
    not HAS_IPVS, reason="no ip_vs in this kernel: tests/integration/lab/test_ipvs_in_guest.py runs these in qemu"
)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
NODE_IP, CLIENT_IP = "192.0.2.10", "192.0.2.20"
BACKENDS = {"b1": "10.1.1.2", "b2": "10.1.2.2"}


@dataclass
class Lab:
    node: NetNS
    client: NetNS
    backend: IPVSBackend
    thread: NetnsThread  # every backend call on this one thread inside the node netns

    def sync(self, state: DesiredState, *, full: bool = False) -> int:
        changed = None if full else {"default/web"}
        return self.thread.call(lambda: self.backend.reconcile(state, changed=changed)).operations

    def hits(self, proto: str, host: str, port: int, count: int) -> Counter[str]:
        out = self.client.run(
            [sys.executable, "-m", "tinykube.lab.traffic", proto, host, str(port), "--count", str(count)], timeout=60
        )
        return Counter(out.stdout.split())


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """One topology for the module (booting hosts is the slow part under emulation); each test
    syncs the state it needs, which also exercises transitions between states."""
    with (
        temporary_netns("node") as node,
        temporary_netns("cl") as client,
        temporary_netns("b1") as b1,
        temporary_netns("b2") as b2,
    ):
        link_hosts(client, node, f"{CLIENT_IP}/24", f"{NODE_IP}/24")
        client.run(["ip", "route", "add", "default", "via", NODE_IP])
        servers = []
        for ns, (name, ip) in zip((b1, b2), BACKENDS.items(), strict=True):
            gw = ip.rsplit(".", 1)[0] + ".1"
            link_hosts(ns, node, f"{ip}/24", f"{gw}/24")
            ns.run(["ip", "route", "add", "default", "via", gw])
            servers.append(
                ns.popen(
                    [sys.executable, "-m", "tinykube.lab.traffic", "serve", name, "8080", "--lifetime", "120"], cwd=ROOT
                )
            )
        config = ProxyConfig(node_name="n1", node_ips=(NODE_IP,), cluster_cidr="10.244.0.0/16")

        thread = NetnsThread(node.path)
        backend = thread.call(lambda: create(config))
        try:
            for ns in (b1, b2):  # wait until both servers listen
                ns.run(
                    ["sh", "-c", "for i in $(seq 50); do ss -ltn | grep -q :8080 && exit 0; sleep 0.1; done; exit 1"]
                )
            yield Lab(node, client, backend, thread)
        finally:
            thread.call(backend.close)
            thread.close()
            for proc in servers:
                proc.kill()
                proc.wait()


def make_state(*, endpoints: list[str], affinity: bool = False, proto: str = "TCP") -> DesiredState:
    spec: dict = {
        "type": "NodePort",
        "clusterIP": "10.96.0.10",
        "ports": [{"name": "p", "port": 80, "targetPort": 8080, "nodePort": 30080, "protocol": proto}],
    }
    if affinity:
        spec["sessionAffinity"] = "ClientIP"
    svc = {"metadata": {"namespace": "default", "name": "web"}, "spec": spec}
    slc = {
        "metadata": {"namespace": "default", "name": "web-1", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "ports": [{"name": "p", "port": 8080, "protocol": proto}],
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True}, "nodeName": "n1"} for ip in endpoints],
    }
    return DesiredState(
        services={"default/web": service_ports(svc)},
        endpoints={"default/web": merge_slices([slice_endpoints(slc)])} if endpoints else {},
    )


def test_cluster_ip_and_node_port_spread_over_every_backend(lab: Lab) -> None:
    lab.sync(make_state(endpoints=list(BACKENDS.values())), full=True)
    assert lab.hits("tcp", "10.96.0.10", 80, 8) == Counter({"b1": 4, "b2": 4})  # rr: strictly alternating
    assert set(lab.hits("tcp", NODE_IP, 30080, 6)) == {"b1", "b2"}
    assert lab.sync(make_state(endpoints=list(BACKENDS.values()))) == 0  # converged: nothing to send


def test_client_ip_affinity_keeps_a_client_on_one_backend(lab: Lab) -> None:
    lab.sync(make_state(endpoints=list(BACKENDS.values()), affinity=True), full=True)
    assert len(lab.hits("tcp", "10.96.0.10", 80, 6)) == 1


def test_udp_cluster_ip_is_balanced(lab: Lab) -> None:
    lab.sync(make_state(endpoints=list(BACKENDS.values()), proto="UDP"), full=True)
    assert set(lab.hits("udp", "10.96.0.10", 80, 6)) <= {"b1", "b2", "TIMEOUT"}
    assert lab.hits("udp", "10.96.0.10", 80, 6)["TIMEOUT"] < 6


def test_service_without_endpoints_refuses_instead_of_blackholing(lab: Lab) -> None:
    lab.sync(make_state(endpoints=[]), full=True)
    assert lab.hits("tcp", "10.96.0.10", 80, 2) == Counter({"REFUSED": 2})


def test_removed_endpoint_stops_receiving_new_connections(lab: Lab) -> None:
    lab.sync(make_state(endpoints=list(BACKENDS.values())), full=True)
    lab.sync(make_state(endpoints=[BACKENDS["b1"]]))
    assert lab.hits("tcp", "10.96.0.10", 80, 4) == Counter({"b1": 4})
    listing = lab.node.run(["ipvsadm", "-Ln"]).stdout
    assert "10.1.2.2:8080" not in listing or " 0 " in listing  # idle reals go at once, busy ones drain


def test_rules_live_only_in_the_node_namespace(lab: Lab) -> None:
    lab.sync(make_state(endpoints=list(BACKENDS.values())), full=True)
    assert "KUBE-CLUSTER-IP" in lab.node.run(["ipset", "list", "-n"]).stdout
    assert "kube-ipvs0" in lab.node.run(["ip", "-o", "link"]).stdout
    host = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    assert "kube-ipvs0" not in host
