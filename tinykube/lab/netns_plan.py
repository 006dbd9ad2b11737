"""The netns lab's address plan: a pure function from "N nodes" to every name and address the lab uses.

Everything the lab creates is derived here, up front, so `up` can check for clashes before it
touches anything and `down` can find what `up` made from the plan stored in the state file.

Layout (defaults): one underlay L2 segment 172.31.0.0/24 (an RFC 1918 range no other test here
uses) on a bridge in the control plane's namespace ("hub"), which takes the first address; node k
takes the (k+1)-th address. Pod CIDR 10.244.0.0/16 is split into /24s: the first /24 belongs to the
control plane (as in the Vagrant lab), node k gets the k-th. Services come from 10.96.0.0/16.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

from tinykube.lab.netns_errors import PlanError

Mode = Literal["static", "vxlan"]
MODES: tuple[Mode, ...] = ("static", "vxlan")

DEFAULT_NAME = "tklab"
DEFAULT_UNDERLAY = "172.31.0.0/24"
DEFAULT_POD_CIDR = "10.244.0.0/16"
DEFAULT_SERVICE_CIDR = "10.96.0.0/16"
DEFAULT_NODE_PREFIX = 24
API_PORT = 6443
BRIDGE = "tkbr0"
NODE_UPLINK = "eth0"
VXLAN_DEVICE = "tkvx0"
VXLAN_ID = 1
VXLAN_PORT = 4789  # IANA VXLAN port (RFC 7348), as flannel's vxlan backend uses
# The underlay runs 50 bytes above Ethernet's 1500 so the VXLAN device (and the pods behind it)
# keeps a full 1500-byte MTU: VXLAN over IPv4 adds 50 bytes of outer headers (RFC 7348 section 5).
UNDERLAY_MTU = 1550
OVERLAY_MTU = 1500

# A DNS-1123 label (Kubernetes node names) that leaves room for "-node<k>" within 63 characters.
_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$")


@dataclass(frozen=True)
class NodePlan:
    """One node: its netns (also its Kubernetes node name), underlay address and pod CIDR."""

    index: int
    name: str
    ip: str
    pod_cidr: str
    hub_link: str  # the hub-side end of the node's veth, enslaved to the bridge
    vtep_ip: str  # first address of the pod CIDR, held by the VXLAN device (flannel's layout)
    vtep_mac: str  # fixed up front so every peer's FDB/neighbour entries are known before it starts


@dataclass(frozen=True)
class LabPlan:
    name: str
    mode: Mode
    underlay: str
    hub_netns: str
    hub_ip: str
    pod_cidr: str
    service_cidr: str
    nodes: tuple[NodePlan, ...]

    @property
    def prefixlen(self) -> int:
        return ipaddress.ip_network(self.underlay).prefixlen

    @property
    def api_url(self) -> str:
        """The API server as nodes see it (on the underlay)."""
        return f"https://{self.hub_ip}:{API_PORT}"

    @property
    def netns_names(self) -> tuple[str, ...]:
        return (self.hub_netns, *(n.name for n in self.nodes))

    def node(self, name: str) -> NodePlan:
        for n in self.nodes:
            if n.name == name:
                return n
        raise PlanError(f"no node {name!r} in lab {self.name!r}")


def _network(flag: str, value: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as err:
        raise PlanError(f"{flag} {value!r} is not an IPv4 network in CIDR notation: {err}") from err
    if not isinstance(net, ipaddress.IPv4Network):
        raise PlanError(f"{flag} {value!r}: only IPv4 is supported")
    if not net.is_private:
        raise PlanError(f"{flag} {value!r} is not a private range; the lab only uses private addresses")
    return net


def capacity(
    *, underlay: str = DEFAULT_UNDERLAY, pod_cidr: str = DEFAULT_POD_CIDR, node_prefix: int = DEFAULT_NODE_PREFIX
) -> int:
    """How many nodes fit: underlay hosts minus the hub, and pod subnets minus the control plane's."""
    ul = _network("--underlay", underlay)
    pods = _network("--pod-cidr", pod_cidr)
    if not pods.prefixlen <= node_prefix <= 30:
        raise PlanError(f"node pod prefix /{node_prefix} must be between /{pods.prefixlen} and /30")
    underlay_room = max(ul.num_addresses - 2, 0) - 1
    pod_room = (1 << (node_prefix - pods.prefixlen)) - 1
    return max(min(underlay_room, pod_room), 0)


def plan(
    nodes: int,
    *,
    name: str = DEFAULT_NAME,
    mode: Mode = "static",
    underlay: str = DEFAULT_UNDERLAY,
    pod_cidr: str = DEFAULT_POD_CIDR,
    node_prefix: int = DEFAULT_NODE_PREFIX,
    service_cidr: str = DEFAULT_SERVICE_CIDR,
) -> LabPlan:
    """Every name and address of an N-node lab; PlanError says why when it cannot be made."""
    if not _NAME.match(name):
        raise PlanError(f"lab name {name!r} must be lowercase letters, digits and '-' (at most 40 characters)")
    if mode not in MODES:
        raise PlanError(f"mode {mode!r} must be one of {', '.join(MODES)}")
    ul = _network("--underlay", underlay)
    pods = _network("--pod-cidr", pod_cidr)
    services = _network("--service-cidr", service_cidr)
    for (a_flag, a), (b_flag, b) in (
        (("--underlay", ul), ("--pod-cidr", pods)),
        (("--underlay", ul), ("--service-cidr", services)),
        (("--pod-cidr", pods), ("--service-cidr", services)),
    ):
        if a.overlaps(b):
            raise PlanError(f"{a_flag} {a} overlaps {b_flag} {b}")
    room = capacity(underlay=underlay, pod_cidr=pod_cidr, node_prefix=node_prefix)
    if nodes < 1:
        raise PlanError(f"--nodes {nodes}: a lab needs at least one node")
    if nodes > room:
        raise PlanError(
            f"--nodes {nodes} does not fit the address plan: at most {room} nodes "
            f"(underlay {ul} keeps its first address for the control plane; pod CIDR {pods} split into "
            f"/{node_prefix}s keeps the first for the control plane)"
        )
    subnet_size = 1 << (32 - node_prefix)
    hosts = ul.network_address + 1
    planned = []
    for k in range(1, nodes + 1):
        subnet = ipaddress.ip_network(f"{pods.network_address + k * subnet_size}/{node_prefix}")
        planned.append(
            NodePlan(
                index=k,
                name=f"{name}-node{k}",
                ip=str(hosts + k),
                pod_cidr=str(subnet),
                hub_link=f"veth{k}",
                vtep_ip=str(subnet.network_address),
                vtep_mac=f"0e:74:6b:{(k >> 16) & 0xFF:02x}:{(k >> 8) & 0xFF:02x}:{k & 0xFF:02x}",
            )
        )
    return LabPlan(
        name=name,
        mode=mode,
        underlay=str(ul),
        hub_netns=f"{name}-hub",
        hub_ip=str(hosts),
        pod_cidr=str(pods),
        service_cidr=str(services),
        nodes=tuple(planned),
    )
