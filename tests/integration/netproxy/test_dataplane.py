"""Real rules (iptables-restore / nft -f) in a test-made node netns, real TCP/UDP traffic through them.
Every scenario runs against both backends (and both iptables layouts)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from netproxy.testing.objects import endpoint_slice, service
from tests.integration.netproxy.lab import CLIENT_IP, NODE_IP, PORT, PROG, Lab, backend_ip, build, feed, readline, sync
from tests.support.namespaces import NetNS

# iptables twice: with one KUBE-SEP-* chain per endpoint, and with DNAT from the KUBE-SVC-* chains (the
# layout above ProxyConfig.endpoint_chains_max endpoints).
MODES = ["iptables", "iptables-without-endpoint-chains", "nftables"]
SLICE_PORTS = [{"name": "http", "port": PORT, "protocol": "TCP"}, {"name": "dns", "port": PORT, "protocol": "UDP"}]
SVC_PORTS = [
    {"name": "http", "port": 80, "targetPort": "http", "nodePort": 30080},
    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": PORT, "nodePort": 30053},
]


def web(**spec: Any) -> dict:
    return service("web", "10.96.0.10", SVC_PORTS, type="NodePort", **spec)


def web_eps(n: int, nodes: list[str | None] | None = None) -> dict:
    return endpoint_slice("web", [backend_ip(i) for i in range(n)], SLICE_PORTS, nodes=nodes)


@pytest.fixture
def lab(netns_factory: Callable[[str], NetNS]) -> Iterator[Lab]:
    made = build(netns_factory, 3)
    try:
        yield made
    finally:
        made.close()


@pytest.mark.parametrize("mode", MODES)
def test_clusterip_spreads_tcp_and_udp_over_all_backends(lab: Lab, mode: str) -> None:
    p = lab.proxier(mode)
    feed(p, [web(), web_eps(3)])
    assert sync(p).full
    assert set(lab.names("10.96.0.10", 80, 24)) == {"b0", "b1", "b2"}
    assert set(lab.names("10.96.0.10", 53, 24, proto="udp")) == {"b0", "b1", "b2"}
    # An endpoint change is a partial sync and takes effect.
    p.on_slice(web_eps(1))
    assert not sync(p).full
    assert set(lab.names("10.96.0.10", 80, 6)) == {"b0"}


@pytest.mark.parametrize("mode", MODES)
def test_nodeport_answers_on_node_address_and_localhost(lab: Lab, mode: str) -> None:
    p = lab.proxier(mode)
    feed(p, [web(), web_eps(2)])
    sync(p)
    replies = lab.connect(NODE_IP, 30080, 12)
    assert {r.split()[0] for r in replies} == {"b0", "b1"}
    assert {r.split()[1] for r in replies} <= {"10.1.0.254", "10.1.1.254"}  # SNAT to the node (Cluster policy)
    assert lab.names("127.0.0.1", 30080, 4, host=lab.node)[0] in {"b0", "b1"}  # route_localnet
    assert set(lab.names(NODE_IP, 30053, 12, proto="udp")) == {"b0", "b1"}


@pytest.mark.parametrize("mode", MODES)
def test_client_ip_affinity_pins_a_client_to_one_backend(lab: Lab, mode: str) -> None:
    p = lab.proxier(mode)
    feed(p, [web(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 30}}), web_eps(3)])
    sync(p)
    assert len(set(lab.names("10.96.0.10", 80, 12))) == 1


@pytest.mark.parametrize("mode", MODES)
def test_service_without_endpoints_is_refused_at_once(lab: Lab, mode: str) -> None:
    p = lab.proxier(mode)
    feed(p, [web()])
    sync(p)
    assert lab.connect("10.96.0.10", 80) == ["refused"]
    assert lab.connect(NODE_IP, 30080) == ["refused"]


@pytest.mark.parametrize("mode", MODES)
def test_removed_udp_endpoint_stops_receiving_at_once(lab: Lab, mode: str) -> None:
    p = lab.proxier(mode)
    feed(p, [web(), web_eps(1)])
    sync(p)
    # The same client port each time: without conntrack cleanup the flow would stick to b0.
    assert lab.names("10.96.0.10", 53, 3, proto="udp", sport=40000) == ["b0"] * 3
    p.on_slice(endpoint_slice("web", [backend_ip(1)], SLICE_PORTS))
    sync(p)
    assert lab.names("10.96.0.10", 53, 3, proto="udp", sport=40000) == ["b1"] * 3


@pytest.mark.parametrize("mode", MODES)
def test_external_policy_local_keeps_client_ip_and_uses_local_backend(lab: Lab, mode: str) -> None:
    p = lab.proxier(mode)
    feed(p, [web(externalTrafficPolicy="Local"), web_eps(3, nodes=["node-b", "node-a", "node-b"])])
    sync(p)
    assert set(lab.connect(NODE_IP, 30080, 8)) == {f"b1 {CLIENT_IP}"}
    assert set(lab.names("10.96.0.10", 80, 24)) == {"b0", "b1", "b2"}  # ClusterIP unaffected


@pytest.mark.parametrize("mode", MODES)
def test_internal_policy_local_uses_only_local_backends(lab: Lab, mode: str) -> None:
    p = lab.proxier(mode)
    feed(p, [web(internalTrafficPolicy="Local"), web_eps(3, nodes=["node-b", "node-a", "node-b"])])
    sync(p)
    assert set(lab.names("10.96.0.10", 80, 8)) == {"b1"}


@pytest.mark.parametrize("mode", MODES)
def test_hairpin_backend_reaches_itself_through_its_service(lab: Lab, mode: str) -> None:
    p = lab.proxier(mode)
    feed(p, [web(), web_eps(1)])
    sync(p)
    assert lab.connect("10.96.0.10", 80, 2, host=lab.backends[0]) == ["b0 10.1.0.254"] * 2


@pytest.mark.parametrize("mode", MODES)
def test_restart_keeps_established_connections(lab: Lab, mode: str) -> None:
    p = lab.proxier(mode)
    feed(p, [web(), web_eps(2)])
    sync(p)
    conn = lab.popen(lab.client, [sys.executable, PROG, "hold", "10.96.0.10", "80"])
    assert readline(conn).split()[0] in {"b0", "b1"}
    fresh = lab.proxier(mode)  # a restarted proxy: empty memory, full sync of the same world
    feed(fresh, [web(), web_eps(2)])
    assert sync(fresh).full
    assert conn.stdin is not None
    conn.stdin.write(b"still here\n")
    conn.stdin.flush()
    assert readline(conn) == "still here"


def test_iptables_leaves_other_programs_rules_alone(lab: Lab) -> None:
    lab.node.run(["iptables", "-t", "nat", "-N", "OTHER"])
    lab.node.run(["iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "172.17.0.0/16", "-j", "MASQUERADE"])
    lab.node.run(["iptables", "-t", "filter", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"])
    p = lab.proxier("iptables")
    feed(p, [web(), web_eps(1)])
    sync(p)
    p.full_sync_period = 0
    sync(p)  # a second full sync neither duplicates our jumps nor drops theirs
    saved = lab.node.run(["iptables-save"]).stdout
    assert ":OTHER - [0:0]" in saved
    assert "-A POSTROUTING -s 172.17.0.0/16 -j MASQUERADE" in saved
    assert "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT" in saved
    assert saved.count('-A PREROUTING -m comment --comment "tinykube service portals" -j KUBE-SERVICES') == 1
    assert lab.names("10.96.0.10", 80) == ["b0"]


@pytest.mark.parametrize("mode", MODES)
def test_external_and_load_balancer_ips_reach_backends(lab: Lab, mode: str) -> None:
    ports = [{"name": "http", "port": 80, "targetPort": PORT, "nodePort": 30090}]
    svc = service("lb", "10.96.0.20", ports, type="LoadBalancer", externalIPs=["192.0.2.10"])
    svc["status"] = {"loadBalancer": {"ingress": [{"ip": "198.51.100.1"}]}}
    p = lab.proxier(mode)
    feed(p, [svc, endpoint_slice("lb", [backend_ip(0), backend_ip(1)], [{"name": "http", "port": PORT}])])
    sync(p)
    assert set(lab.names("192.0.2.10", 80, 12)) == {"b0", "b1"}
    assert set(lab.names("198.51.100.1", 80, 12)) == {"b0", "b1"}


def test_nftables_touches_only_its_own_table(lab: Lab) -> None:
    lab.node.run(["nft", "add table inet other; add chain inet other input { type filter hook input priority 0; }"])
    lab.node.run(["nft", "add rule inet other input tcp dport 22 accept"])
    p = lab.proxier("nftables")
    feed(p, [web(), web_eps(1)])
    sync(p)
    p.full_sync_period = 0
    sync(p)  # a full sync replaces table ip tinykube, nothing else
    ruleset = lab.node.run(["nft", "list", "ruleset"]).stdout
    assert "tcp dport 22 accept" in ruleset
    assert ruleset.count("table ip tinykube") == 1
    assert lab.names("10.96.0.10", 80) == ["b0"]
