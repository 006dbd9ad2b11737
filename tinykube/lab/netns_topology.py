"""Renders a LabPlan into the `ip -batch` / `bridge -batch` text each namespace needs (pure).

Keeping the topology as text makes it reviewable in a unit test and cheap to apply: one `ip`
process per namespace instead of one per link or route. Nothing here is made in the namespace the
lab command runs in: the bridge lives in the hub netns, and each node is a netns with one veth to it.

static: every node routes each peer's pod CIDR via the peer's underlay address (one L2 segment).
vxlan: like flannel's vxlan backend, each node has a VXLAN device holding the first address of its
pod CIDR; a peer's pod CIDR is routed via the peer's VTEP address (onlink), whose MAC is a permanent
neighbour entry and whose underlay address is the FDB destination for that MAC. Every entry is
known up front from the plan, so no learning and no control-plane watch are needed.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinykube.lab.netns_plan import (
    BRIDGE,
    NODE_UPLINK,
    OVERLAY_MTU,
    UNDERLAY_MTU,
    VXLAN_DEVICE,
    VXLAN_ID,
    VXLAN_PORT,
    LabPlan,
    NodePlan,
)


@dataclass(frozen=True)
class NetnsConfig:
    """What to apply inside one namespace: `ip` batch lines, `bridge` batch lines, sysctls."""

    netns: str
    ip: tuple[str, ...]
    bridge: tuple[str, ...] = ()
    sysctls: tuple[tuple[str, str], ...] = ()


def hub_config(lab: LabPlan) -> NetnsConfig:
    """The hub: the underlay bridge with the control plane's address, one veth per node (the peer
    end is created directly inside the node's netns), and routes to every node's pod CIDR."""
    lines = [
        "link set lo up",
        f"link add {BRIDGE} type bridge",
        f"link set {BRIDGE} mtu {UNDERLAY_MTU}",
        f"addr add {lab.hub_ip}/{lab.prefixlen} dev {BRIDGE}",
        f"link set {BRIDGE} up",
    ]
    for node in lab.nodes:
        lines += [
            f"link add {node.hub_link} mtu {UNDERLAY_MTU} type veth peer name {NODE_UPLINK} netns {node.name}",
            f"link set {node.hub_link} master {BRIDGE}",
            f"link set {node.hub_link} up",
        ]
    lines += [f"route add {node.pod_cidr} via {node.ip}" for node in lab.nodes]
    return NetnsConfig(lab.hub_netns, tuple(lines))


def node_config(lab: LabPlan, node: NodePlan) -> NetnsConfig:
    """One node: its underlay address, a default route to the hub, routes to the peers' pods."""
    lines = [
        "link set lo up",
        f"link set {NODE_UPLINK} mtu {UNDERLAY_MTU}",
        f"addr add {node.ip}/{lab.prefixlen} dev {NODE_UPLINK}",
        f"link set {NODE_UPLINK} up",
        f"route add default via {lab.hub_ip}",
    ]
    peers = [p for p in lab.nodes if p.index != node.index]
    fdb: list[str] = []
    if lab.mode == "static":
        lines += [f"route add {p.pod_cidr} via {p.ip}" for p in peers]
    else:
        lines += [
            f"link add {VXLAN_DEVICE} type vxlan id {VXLAN_ID} local {node.ip} dev {NODE_UPLINK} "
            f"dstport {VXLAN_PORT} nolearning",
            f"link set {VXLAN_DEVICE} address {node.vtep_mac} mtu {OVERLAY_MTU}",
            f"addr add {node.vtep_ip}/32 dev {VXLAN_DEVICE}",
            f"link set {VXLAN_DEVICE} up",
        ]
        for p in peers:
            lines += [
                f"neigh add {p.vtep_ip} lladdr {p.vtep_mac} dev {VXLAN_DEVICE} nud permanent",
                f"route add {p.pod_cidr} via {p.vtep_ip} dev {VXLAN_DEVICE} onlink",
            ]
            fdb.append(f"fdb append {p.vtep_mac} dev {VXLAN_DEVICE} dst {p.ip}")
    return NetnsConfig(node.name, tuple(lines), tuple(fdb), (("net.ipv4.ip_forward", "1"),))


def render(lab: LabPlan) -> tuple[NetnsConfig, ...]:
    """Hub first (it creates the veths whose node ends the node configs address), then the nodes."""
    return (hub_config(lab), *(node_config(lab, n) for n in lab.nodes))
