"""The netns lab's address plan and the topology text rendered from it (pure, no root)."""

from __future__ import annotations

import ipaddress

import pytest

from tinykube.lab.netns_errors import PlanError
from tinykube.lab.netns_plan import capacity, plan
from tinykube.lab.netns_topology import hub_config, node_config, render


def test_three_nodes_get_consecutive_underlay_addresses_and_their_own_pod_subnets() -> None:
    lab = plan(3)
    assert lab.hub_ip == "172.31.0.1"
    assert [n.name for n in lab.nodes] == ["tklab-node1", "tklab-node2", "tklab-node3"]
    assert [n.ip for n in lab.nodes] == ["172.31.0.2", "172.31.0.3", "172.31.0.4"]
    assert [n.pod_cidr for n in lab.nodes] == ["10.244.1.0/24", "10.244.2.0/24", "10.244.3.0/24"]
    assert lab.api_url == "https://172.31.0.1:6443"
    assert lab.netns_names == ("tklab-hub", "tklab-node1", "tklab-node2", "tklab-node3")


def test_pod_subnets_never_overlap_and_stay_inside_the_pod_cidr() -> None:
    lab = plan(capacity())
    nets = [ipaddress.IPv4Network(n.pod_cidr) for n in lab.nodes]
    pods = ipaddress.IPv4Network(lab.pod_cidr)
    assert all(n.subnet_of(pods) for n in nets)
    assert len(set(nets)) == len(nets)
    assert ipaddress.IPv4Network("10.244.0.0/24") not in nets  # the control plane's /24
    assert len({n.vtep_mac for n in lab.nodes}) == len(lab.nodes)


def test_default_plan_holds_253_nodes_and_says_so_when_asked_for_more() -> None:
    assert capacity() == 253
    assert len(plan(253).nodes) == 253
    with pytest.raises(PlanError, match=r"--nodes 254 does not fit the address plan: at most 253 nodes"):
        plan(254)


def test_a_small_underlay_or_pod_range_limits_the_node_count() -> None:
    assert capacity(underlay="172.31.0.0/28") == 13  # 14 hosts, one for the hub
    assert capacity(pod_cidr="10.244.0.0/22") == 3  # four /24s, one for the control plane
    with pytest.raises(PlanError, match="at most 3 nodes"):
        plan(4, pod_cidr="10.244.0.0/22")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"nodes": 0}, "at least one node"),
        ({"nodes": 2, "underlay": "10.244.7.0/24"}, "--underlay 10.244.7.0/24 overlaps --pod-cidr"),
        ({"nodes": 2, "service_cidr": "10.240.0.0/12"}, "overlaps --service-cidr"),
        ({"nodes": 2, "underlay": "8.8.8.0/24"}, "not a private range"),
        ({"nodes": 2, "underlay": "172.31.0.1/24"}, "not an IPv4 network"),
        ({"nodes": 2, "name": "Bad_Name"}, "lab name"),
        ({"nodes": 2, "node_prefix": 31}, "between /16 and /30"),
    ],
)
def test_bad_plans_are_refused_with_the_reason(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(PlanError, match=message):
        plan(**kwargs)  # type: ignore[arg-type]


def test_hub_owns_the_bridge_one_veth_per_node_and_routes_to_every_pod_subnet() -> None:
    lab = plan(2)
    hub = hub_config(lab)
    assert hub.netns == "tklab-hub"
    assert "addr add 172.31.0.1/24 dev tkbr0" in hub.ip
    assert "link add veth2 mtu 1550 type veth peer name eth0 netns tklab-node2" in hub.ip
    assert "link set veth2 master tkbr0" in hub.ip
    assert "route add 10.244.2.0/24 via 172.31.0.3" in hub.ip


def test_static_mode_routes_each_peer_pod_subnet_via_the_peer_node_and_forwards() -> None:
    lab = plan(3)
    cfg = node_config(lab, lab.nodes[0])
    assert cfg.netns == "tklab-node1"
    routes = [line for line in cfg.ip if line.startswith("route add 10.244.")]
    assert routes == ["route add 10.244.2.0/24 via 172.31.0.3", "route add 10.244.3.0/24 via 172.31.0.4"]
    assert "route add default via 172.31.0.1" in cfg.ip
    assert cfg.bridge == ()
    assert ("net.ipv4.ip_forward", "1") in cfg.sysctls


def test_vxlan_mode_programs_vtep_neighbour_route_and_fdb_per_peer_only() -> None:
    lab = plan(3, mode="vxlan")
    node2 = node_config(lab, lab.nodes[1])
    assert any(line.startswith("link add tkvx0 type vxlan id 1 local 172.31.0.3 dev eth0") for line in node2.ip)
    assert "addr add 10.244.2.0/32 dev tkvx0" in node2.ip
    assert "neigh add 10.244.1.0 lladdr 0e:74:6b:00:00:01 dev tkvx0 nud permanent" in node2.ip
    assert "route add 10.244.3.0/24 via 10.244.3.0 dev tkvx0 onlink" in node2.ip
    assert node2.bridge == (
        "fdb append 0e:74:6b:00:00:01 dev tkvx0 dst 172.31.0.2",
        "fdb append 0e:74:6b:00:00:03 dev tkvx0 dst 172.31.0.4",
    )
    assert not any("10.244.2.0/24" in line for line in node2.ip if line.startswith("route"))


def test_render_configures_the_hub_before_the_nodes_whose_links_it_creates() -> None:
    configs = render(plan(2))
    assert [c.netns for c in configs] == ["tklab-hub", "tklab-node1", "tklab-node2"]
