"""The ipsets that let a handful of iptables rules serve every IPVS service (kube-proxy's IPVS layout):
matching a set is one hash lookup per packet however many services exist, so the iptables part stays
constant-size and only the sets change on a sync.

`render()` is pure and produces `ipset restore` input that fills a temporary set per name and swaps
it in, so each set changes atomically and a reader never sees it half-filled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from netproxy.model import DesiredState, select_endpoints

CLUSTER_IP = "KUBE-CLUSTER-IP"  # ClusterIP,proto:port — traffic to masquerade when not from a pod
LOOP_BACK = "KUBE-LOOP-BACK"  # endpoint,proto:port,endpoint — a pod reaching itself through its Service
EXTERNAL_IP = "KUBE-EXTERNAL-IP"  # externalIP/LB IP,proto:port
NODE_PORT = {"TCP": "KUBE-NODE-PORT-TCP", "UDP": "KUBE-NODE-PORT-UDP", "SCTP": "KUBE-NODE-PORT-SCTP"}
NODE_PORT_LOCAL = {"TCP": "KUBE-NODE-PORT-LOCAL-TCP", "UDP": "KUBE-NODE-PORT-LOCAL-UDP",
                   "SCTP": "KUBE-NODE-PORT-LOCAL-SCTP"}  # fmt: skip
IPSET_NAME_MAX = 31  # IPSET_MAXNAMELEN - 1
TEMP_SUFFIX = "-N"  # the temporary twin a set is filled under before the swap


@dataclass(frozen=True)
class SetSpec:
    name: str
    kind: str  # ipset type, e.g. "hash:ip,port"
    options: str = ""


SPECS: tuple[SetSpec, ...] = (
    SetSpec(CLUSTER_IP, "hash:ip,port"),
    SetSpec(LOOP_BACK, "hash:ip,port,ip"),
    SetSpec(EXTERNAL_IP, "hash:ip,port"),
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
            out[LOOP_BACK].add(f"{ep.ip},{proto}:{ep.port},{ep.ip}")
    return {name: frozenset(members) for name, members in out.items()}


def render(members: Mapping[str, frozenset[str]]) -> str:
    """`ipset restore` text: for each set, create if missing, fill a temporary twin, swap, destroy."""
    lines: list[str] = []
    for spec in SPECS:
        temp = spec.name + TEMP_SUFFIX
        assert len(temp) <= IPSET_NAME_MAX, temp
        opts = f" {spec.options}" if spec.options else ""
        family = "" if spec.kind.startswith("bitmap") else " family inet"
        lines.append(f"create {spec.name} {spec.kind}{family}{opts} -exist")
        lines.append(f"create {temp} {spec.kind}{family}{opts} -exist")
        lines.append(f"flush {temp}")
        lines.extend(f"add {temp} {member}" for member in sorted(members.get(spec.name, ())))
        lines.append(f"swap {temp} {spec.name}")
        lines.append(f"destroy {temp}")
    return "\n".join(lines) + "\n"


def render_edits(added: Mapping[str, set[str]], removed: Mapping[str, set[str]]) -> str:
    """`ipset restore` text that edits members in place: what a partial sync sends, so one changed
    endpoint costs two lines rather than a rewrite of every set. Empty when nothing changed."""
    lines: list[str] = []
    for spec in SPECS:
        gone, new = removed.get(spec.name, set()), added.get(spec.name, set())
        lines.extend(f"del {spec.name} {member} -exist" for member in sorted(gone - new))
        lines.extend(f"add {spec.name} {member} -exist" for member in sorted(new - gone))
    return "\n".join(lines) + "\n" if lines else ""
