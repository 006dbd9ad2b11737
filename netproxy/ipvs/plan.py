"""What the IPVS tables should hold, and the smallest list of changes that gets them there.

Pure: desired virtual servers come from the shared `DesiredState` (the same model the iptables and
nftables backends render), the current ones from a snapshot of the kernel; `plan()` compares them.
Real servers that go away are drained first (weight 0 while they still hold connections, removed
once idle), as kube-proxy's IPVS graceful termination does, so established TCP flows finish.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from netproxy.model import DesiredState, Endpoint, ServicePort, select_endpoints

SCHEDULERS = ("rr", "wrr", "lc", "wlc", "sh", "dh", "sed", "nq")


@dataclass(frozen=True, order=True)
class VirtualKey:
    """The kernel's identity of a virtual service: address, protocol, port."""

    address: str
    protocol: str  # "TCP" | "UDP" | "SCTP"
    port: int

    def __str__(self) -> str:
        return f"{self.protocol}:{self.address}:{self.port}"


@dataclass(frozen=True)
class VirtualServer:
    key: VirtualKey
    scheduler: str = "rr"
    persistence: int = 0  # seconds of ClientIP affinity; 0 = none


@dataclass(frozen=True, order=True)
class RealKey:
    address: str
    port: int


@dataclass(frozen=True)
class RealServer:
    """A real server as the kernel reports it: weight and connection counts drive graceful removal."""

    key: RealKey
    weight: int = 1
    active_connections: int = 0
    inactive_connections: int = 0

    @property
    def idle(self) -> bool:
        return self.active_connections == 0 and self.inactive_connections == 0


@dataclass(frozen=True)
class Service:
    server: VirtualServer
    reals: frozenset[RealKey]


@dataclass(frozen=True)
class CurrentService:
    server: VirtualServer
    reals: Mapping[RealKey, RealServer] = field(default_factory=dict)


# --- operations the kernel applier executes, in order ------------------------------------------------


@dataclass(frozen=True)
class AddService:
    server: VirtualServer


@dataclass(frozen=True)
class EditService:
    server: VirtualServer


@dataclass(frozen=True)
class DeleteService:
    key: VirtualKey


@dataclass(frozen=True)
class AddReal:
    service: VirtualKey
    real: RealKey
    weight: int = 1


@dataclass(frozen=True)
class EditReal:
    service: VirtualKey
    real: RealKey
    weight: int


@dataclass(frozen=True)
class DeleteReal:
    service: VirtualKey
    real: RealKey


Operation = AddService | EditService | DeleteService | AddReal | EditReal | DeleteReal


@dataclass(frozen=True)
class Desired:
    """Everything the IPVS backend programs for one node."""

    services: Mapping[VirtualKey, Service]
    bound_addresses: frozenset[str]  # addresses held on the local holder interface (ClusterIPs, externalIPs)
    owners: Mapping[VirtualKey, str]  # the Service (`ns/name`) each virtual server serves

    def only(self, keys: Collection[VirtualKey]) -> Desired:
        """The part of this state that concerns `keys` (what a partial sync plans over)."""
        return Desired(
            services={k: v for k, v in self.services.items() if k in keys},
            bound_addresses=self.bound_addresses,
            owners={k: v for k, v in self.owners.items() if k in keys},
        )


def _reals(endpoints: Iterable[Endpoint]) -> frozenset[RealKey]:
    return frozenset(RealKey(e.ip, e.port) for e in endpoints)


def desired(state: DesiredState, *, node_name: str, node_ips: Iterable[str], scheduler: str = "rr") -> Desired:
    """Virtual servers for every ClusterIP, NodePort (on each node address), externalIP and LB IP."""
    if scheduler not in SCHEDULERS:
        raise ValueError(f"unknown IPVS scheduler {scheduler!r} (one of {', '.join(SCHEDULERS)})")
    services: dict[VirtualKey, Service] = {}
    owners: dict[VirtualKey, str] = {}
    bound: set[str] = set()
    node_ips = tuple(node_ips)

    def add(port: ServicePort, address: str, number: int, eps: tuple[Endpoint, ...]) -> None:
        key = VirtualKey(address, port.protocol, number)
        persistence = port.session_affinity_timeout or 0
        services[key] = Service(VirtualServer(key, scheduler, persistence), _reals(eps))
        owners[key] = port.name.service

    for port, eps in state.all_ports():
        chosen = select_endpoints(port, eps, node_name)
        if port.cluster_ip is not None:
            add(port, port.cluster_ip, port.port, chosen.cluster)
            bound.add(port.cluster_ip)
        for address in (*port.external_ips, *port.load_balancer_ips):
            add(port, address, port.port, chosen.external)
            bound.add(address)
        if port.node_port:
            for address in node_ips:
                add(port, address, port.node_port, chosen.external)
    return Desired(services=services, bound_addresses=frozenset(bound), owners=owners)


def plan(want: Desired, have: Mapping[VirtualKey, CurrentService], *, graceful: bool = True) -> list[Operation]:
    """The operations that turn `have` into `want`: services added before their reals, reals removed
    before services. UDP reals are removed at once (no connection to drain; stale conntrack entries
    are the proxy's job), TCP/SCTP reals are drained first when `graceful`."""
    ops: list[Operation] = []
    for key in sorted(want.services.keys() - have.keys()):
        svc = want.services[key]
        ops.append(AddService(svc.server))
        ops.extend(AddReal(key, real) for real in sorted(svc.reals))
    for key in sorted(want.services.keys() & have.keys()):
        svc, cur = want.services[key], have[key]
        if cur.server != svc.server:
            ops.append(EditService(svc.server))
        for real in sorted(svc.reals):
            current = cur.reals.get(real)
            if current is None:
                ops.append(AddReal(key, real))
            elif current.weight == 0:
                ops.append(EditReal(key, real, 1))  # came back while draining
        for real in sorted(cur.reals.keys() - svc.reals):
            ops.extend(_retire(key, cur.reals[real], graceful=graceful))
    for key in sorted(have.keys() - want.services.keys()):
        ops.append(DeleteService(key))
    return ops


def _retire(service: VirtualKey, real: RealServer, *, graceful: bool) -> list[Operation]:
    if not graceful or service.protocol == "UDP" or real.idle:
        return [DeleteReal(service, real.key)]
    if real.weight != 0:
        return [EditReal(service, real.key, 0)]
    return []  # already draining: removed by a later sync once idle


def draining_keys(have: Mapping[VirtualKey, CurrentService], want: Desired) -> set[VirtualKey]:
    """Virtual servers that keep real servers at weight 0 only to let their connections finish; the
    proxy plans over them again on later syncs until they are idle."""
    out = set()
    for key, cur in have.items():
        wanted = want.services.get(key)
        for real in cur.reals.values():
            if real.weight == 0 and not real.idle and (wanted is None or real.key not in wanted.reals):
                out.add(key)
    return out
