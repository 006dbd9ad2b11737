"""The ipsets that let a handful of iptables rules serve every IPVS service (kube-proxy's IPVS layout):
matching a set is one hash lookup per packet however many services exist, so the iptables part stays
constant-size and only the sets change on a sync. Pure; the text itself is `netproxy.ipset`'s.
"""

from __future__ import annotations

from collections.abc import Mapping

from netproxy.ipset import HASH_MAXELEM, LOOP_BACK, SetSpec, loop_back_member
from netproxy.model import DesiredState, select_endpoints

CLUSTER_IP = "KUBE-CLUSTER-IP"  # ClusterIP,proto:port — traffic to masquerade when not from a pod
EXTERNAL_IP = "KUBE-EXTERNAL-IP"  # externalIP/LB IP,proto:port
NODE_PORT = {"TCP": "KUBE-NODE-PORT-TCP", "UDP": "KUBE-NODE-PORT-UDP", "SCTP": "KUBE-NODE-PORT-SCTP"}
NODE_PORT_LOCAL = {"TCP": "KUBE-NODE-PORT-LOCAL-TCP", "UDP": "KUBE-NODE-PORT-LOCAL-UDP",
                   "SCTP": "KUBE-NODE-PORT-LOCAL-SCTP"}  # fmt: skip

SPECS: tuple[SetSpec, ...] = (
    SetSpec(CLUSTER_IP, "hash:ip,port", HASH_MAXELEM),
    LOOP_BACK,
    SetSpec(EXTERNAL_IP, "hash:ip,port", HASH_MAXELEM),
    *(SetSpec(name, "bitmap:port", "range 0-65535") for name in NODE_PORT.values()),
    *(SetSpec(name, "bitmap:port", "range 0-65535") for name in NODE_PORT_LOCAL.values()),
)


def entries(state: DesiredState, *, node_name: str) -> Mapping[str, frozenset[str]]:
    """Every set's members for this node."""
    out: dict[str, set[str]] = {spec.name: set() for spec in SPECS}
    for port, eps in state.all_ports():
        proto = port.protocol.lower()
        if port.cluster_ip is not None:
            out[CLUSTER_IP].add(f"{port.cluster_ip},{proto}:{port.port}")
        for address in (*port.external_ips, *port.load_balancer_ips):
            out[EXTERNAL_IP].add(f"{address},{proto}:{port.port}")
        if port.node_port:
            out[NODE_PORT[port.protocol]].add(str(port.node_port))
            if port.external_policy_local:
                out[NODE_PORT_LOCAL[port.protocol]].add(str(port.node_port))
        for ep in select_endpoints(port, eps, node_name).all_cluster:
            out[LOOP_BACK.name].add(loop_back_member(ep.ip, proto, ep.port))
    return {name: frozenset(members) for name, members in out.items()}
