"""The desired state every backend programs, built by pure functions from Service and EndpointSlice
dicts (the JSON the API server sends). camelCase stops here: everything past this module is snake_case.

Only IPv4 is modelled: IPv6 cluster IPs and `IPv6`/`FQDN` EndpointSlices are skipped, not errors.
Invalid objects raise `InvalidObject` naming the object, so the caller can skip that one object and
keep programming the rest (issue 9, point 7).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from netproxy.errors import InvalidObject

PROTOCOLS = ("TCP", "UDP", "SCTP")
DEFAULT_AFFINITY_TIMEOUT = 10800  # seconds; the API's default for sessionAffinityConfig.clientIP
MAX_AFFINITY_TIMEOUT = 86400
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclass(frozen=True, order=True)
class ServicePortName:
    """Identifies one port of one Service: `ns/name:port/PROTO` (port = the port's name, may be empty)."""

    namespace: str
    name: str
    port: str
    protocol: str

    @property
    def service(self) -> str:
        return f"{self.namespace}/{self.name}"

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}:{self.port}/{self.protocol}"


@dataclass(frozen=True)
class ServicePort:
    """What one Service port asks of the proxy."""

    name: ServicePortName
    cluster_ip: str | None  # None: headless or IPv6-only, only external addresses are served
    port: int
    target_port: int | str
    node_port: int = 0
    external_ips: tuple[str, ...] = ()
    load_balancer_ips: tuple[str, ...] = ()
    session_affinity_timeout: int | None = None  # None: no ClientIP affinity
    external_policy_local: bool = False
    internal_policy_local: bool = False
    health_check_node_port: int = 0

    @property
    def protocol(self) -> str:
        return self.name.protocol

    @property
    def externally_accessible(self) -> bool:
        return bool(self.node_port or self.external_ips or self.load_balancer_ips)


@dataclass(frozen=True)
class Endpoint:
    """One backend address:port of one Service port, with the EndpointSlice conditions."""

    ip: str
    port: int
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    node_name: str | None = None
    zone: str | None = None


EndpointsByPort = Mapping[tuple[str, str], tuple[Endpoint, ...]]  # (port name, protocol) -> endpoints


@dataclass(frozen=True)
class DesiredState:
    """Every Service's ports and endpoints, keyed by `ns/name`. Treated as immutable: trackers make new ones."""

    services: Mapping[str, tuple[ServicePort, ...]] = field(default_factory=dict)
    endpoints: Mapping[str, EndpointsByPort] = field(default_factory=dict)

    def endpoints_of(self, port: ServicePort) -> tuple[Endpoint, ...]:
        by_port = self.endpoints.get(port.name.service, {})
        return by_port.get((port.name.port, port.name.protocol), ())

    def ports(self, service: str) -> Iterator[tuple[ServicePort, tuple[Endpoint, ...]]]:
        for port in self.services.get(service, ()):
            yield port, self.endpoints_of(port)

    def all_ports(self) -> Iterator[tuple[ServicePort, tuple[Endpoint, ...]]]:
        for service in sorted(self.services):
            yield from self.ports(service)


@dataclass(frozen=True)
class EndpointSelection:
    """Which endpoints serve which traffic, after readiness and traffic policies (KEP-1669 fallback:
    when nothing is ready, serving-but-terminating endpoints are used)."""

    cluster: tuple[Endpoint, ...]  # ClusterIP traffic (internalTrafficPolicy applied)
    external: tuple[Endpoint, ...]  # NodePort / externalIPs / LB traffic (externalTrafficPolicy applied)
    all_cluster: tuple[Endpoint, ...]  # every usable endpoint, regardless of policy
    local: tuple[Endpoint, ...]  # usable endpoints on this node


def _usable(endpoints: Sequence[Endpoint]) -> tuple[Endpoint, ...]:
    ready = tuple(e for e in endpoints if e.ready)
    if ready:
        return ready
    return tuple(e for e in endpoints if e.serving and e.terminating)


def select_endpoints(port: ServicePort, endpoints: Sequence[Endpoint], node_name: str) -> EndpointSelection:
    all_cluster = _usable(endpoints)
    local = _usable([e for e in endpoints if e.node_name == node_name])
    return EndpointSelection(
        cluster=local if port.internal_policy_local else all_cluster,
        external=local if port.external_policy_local else all_cluster,
        all_cluster=all_cluster,
        local=local,
    )


# --- building from API objects -------------------------------------------------------------------


@contextlib.contextmanager
def _malformed(kind: str, key: str) -> Iterator[None]:
    """Fields of the wrong JSON type (a string where an object belongs, …) become InvalidObject too."""
    try:
        yield
    except (AttributeError, TypeError, ValueError, KeyError) as err:
        raise InvalidObject(kind, key, f"malformed object: {err!r}") from err


def object_key(obj: Mapping[str, Any], kind: str) -> str:
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping) or not meta.get("name") or not meta.get("namespace"):
        raise InvalidObject(kind, "?", "metadata.name and metadata.namespace are required")
    return f"{meta['namespace']}/{meta['name']}"


def _ipv4(value: Any, kind: str, key: str, field_name: str) -> str | None:
    """The address as canonical text when it is IPv4, None when IPv6; anything else is invalid.
    (socket's parsers: ipaddress costs ~20 µs per address, 2 s for 100k endpoints.)"""
    text = str(value)
    family = socket.AF_INET6 if ":" in text else socket.AF_INET
    try:
        packed = socket.inet_pton(family, text)
    except OSError as err:
        raise InvalidObject(kind, key, f"{field_name}: {value!r} is not an IP address") from err
    return socket.inet_ntop(family, packed) if family == socket.AF_INET else None


def _port_number(value: Any, kind: str, key: str, field_name: str, *, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not (0 if allow_zero else 1) <= value <= 65535:
        raise InvalidObject(kind, key, f"{field_name}: {value!r} is not a port number")
    return value


def _protocol(value: Any, kind: str, key: str, field_name: str) -> str:
    proto = "TCP" if value is None else value
    if proto not in PROTOCOLS:
        raise InvalidObject(kind, key, f"{field_name}: unsupported protocol {value!r}")
    return str(proto)


def _ipv4_list(values: Any, kind: str, key: str, field_name: str) -> tuple[str, ...]:
    if values is None:
        return ()
    if not isinstance(values, list):
        raise InvalidObject(kind, key, f"{field_name} must be a list")
    return tuple(ip for ip in (_ipv4(v, kind, key, field_name) for v in values) if ip is not None)


def service_ports(svc: Mapping[str, Any]) -> tuple[ServicePort, ...]:
    """The ports of one Service dict; `()` for Services the proxy does not serve (ExternalName, headless
    without external addresses). Raises InvalidObject naming the Service, whatever is wrong in it."""
    key = object_key(svc, "Service")
    with _malformed("Service", key):
        return _service_ports(svc, key)


def _service_ports(svc: Mapping[str, Any], key: str) -> tuple[ServicePort, ...]:
    kind = "Service"
    namespace, svc_name = key.split("/", 1)
    spec = svc.get("spec") or {}
    if not isinstance(spec, Mapping):
        raise InvalidObject(kind, key, "spec must be an object")
    svc_type = spec.get("type") or "ClusterIP"
    if svc_type == "ExternalName":
        return ()
    if svc_type not in ("ClusterIP", "NodePort", "LoadBalancer"):
        raise InvalidObject(kind, key, f"spec.type: unknown type {svc_type!r}")
    raw_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    cluster_ip: str | None = None
    if raw_ips and raw_ips[0] != "None":
        cluster_ip = next((ip for ip in _ipv4_list(raw_ips, kind, key, "spec.clusterIPs")), None)
    external_ips = _ipv4_list(spec.get("externalIPs"), kind, key, "spec.externalIPs")
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    lb_ips = _ipv4_list([i["ip"] for i in ingress if isinstance(i, Mapping) and i.get("ip")], kind, key, "ingress")
    affinity: int | None = None
    if spec.get("sessionAffinity") == "ClientIP":
        config = ((spec.get("sessionAffinityConfig") or {}).get("clientIP")) or {}
        affinity = config.get("timeoutSeconds", DEFAULT_AFFINITY_TIMEOUT)
        if isinstance(affinity, bool) or not isinstance(affinity, int) or not 0 < affinity <= MAX_AFFINITY_TIMEOUT:
            raise InvalidObject(kind, key, f"sessionAffinityConfig.clientIP.timeoutSeconds: {affinity!r}")
    elif spec.get("sessionAffinity") not in (None, "None"):
        raise InvalidObject(kind, key, f"spec.sessionAffinity: {spec.get('sessionAffinity')!r}")
    accessible_types = svc_type in ("NodePort", "LoadBalancer")
    hc_port = _port_number(spec.get("healthCheckNodePort", 0), kind, key, "spec.healthCheckNodePort", allow_zero=True)
    raw_ports = spec.get("ports") or []
    if not isinstance(raw_ports, list):
        raise InvalidObject(kind, key, "spec.ports must be a list")
    ports = []
    seen: set[tuple[str, str]] = set()
    for i, raw in enumerate(raw_ports):
        where = f"spec.ports[{i}]"
        if not isinstance(raw, Mapping):
            raise InvalidObject(kind, key, f"{where} must be an object")
        name = str(raw.get("name") or "")
        protocol = _protocol(raw.get("protocol"), kind, key, f"{where}.protocol")
        if (name, protocol) in seen:
            raise InvalidObject(kind, key, f"{where}: duplicate port {name!r}/{protocol}")
        seen.add((name, protocol))
        port = _port_number(raw.get("port"), kind, key, f"{where}.port")
        target = raw.get("targetPort", port)
        if not isinstance(target, str):
            target = _port_number(target, kind, key, f"{where}.targetPort")
        node_port = _port_number(raw.get("nodePort", 0), kind, key, f"{where}.nodePort", allow_zero=True)
        sp = ServicePort(
            name=ServicePortName(namespace, svc_name, name, protocol),
            cluster_ip=cluster_ip,
            port=port,
            target_port=target,
            node_port=node_port if accessible_types else 0,
            external_ips=external_ips,
            load_balancer_ips=lb_ips if svc_type == "LoadBalancer" else (),
            session_affinity_timeout=affinity,
            internal_policy_local=spec.get("internalTrafficPolicy") == "Local",
            health_check_node_port=hc_port,
        )
        external_local = spec.get("externalTrafficPolicy") == "Local" and sp.externally_accessible
        ports.append(replace(sp, external_policy_local=True) if external_local else sp)
    return tuple(p for p in ports if p.cluster_ip is not None or p.externally_accessible)


def slice_service(slc: Mapping[str, Any]) -> str | None:
    """`ns/name` of the Service an EndpointSlice belongs to; None for slices not owned by a Service."""
    key = object_key(slc, "EndpointSlice")
    name = ((slc.get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME_LABEL)
    return f"{key.split('/')[0]}/{name}" if name else None


def _condition(conditions: Mapping[str, Any], name: str, default: bool) -> bool:
    value = conditions.get(name)
    return default if value is None else bool(value)


def slice_endpoints(slc: Mapping[str, Any]) -> dict[tuple[str, str], tuple[Endpoint, ...]]:
    """Endpoints per (port name, protocol) of one EndpointSlice dict. Non-IPv4 slices give `{}`.
    Readiness defaults follow the API: nil `ready` means ready, nil `serving` means `ready`."""
    key = object_key(slc, "EndpointSlice")
    with _malformed("EndpointSlice", key):
        return _slice_endpoints(slc, key)


def _slice_endpoints(slc: Mapping[str, Any], key: str) -> dict[tuple[str, str], tuple[Endpoint, ...]]:
    kind = "EndpointSlice"
    if slc.get("addressType", "IPv4") != "IPv4":
        return {}
    out: dict[tuple[str, str], tuple[Endpoint, ...]] = {}
    raw_eps = slc.get("endpoints") or []
    if not isinstance(raw_eps, list):
        raise InvalidObject(kind, key, "endpoints must be a list")
    for i, raw_port in enumerate(slc.get("ports") or []):
        if not isinstance(raw_port, Mapping) or raw_port.get("port") is None:
            continue  # a nil port means "all ports": only for selector-less services, never proxied
        port = _port_number(raw_port.get("port"), kind, key, f"ports[{i}].port")
        protocol = _protocol(raw_port.get("protocol"), kind, key, f"ports[{i}].protocol")
        eps = []
        for j, raw in enumerate(raw_eps):
            if not isinstance(raw, Mapping):
                raise InvalidObject(kind, key, f"endpoints[{j}] must be an object")
            conditions = raw.get("conditions") or {}
            ready = _condition(conditions, "ready", True)
            for addr in raw.get("addresses") or []:
                ip = _ipv4(addr, kind, key, f"endpoints[{j}].addresses")
                if ip is None:
                    raise InvalidObject(kind, key, f"endpoints[{j}]: {addr!r} in an IPv4 slice")
                eps.append(
                    Endpoint(
                        ip=ip,
                        port=port,
                        ready=ready,
                        serving=_condition(conditions, "serving", ready),
                        terminating=_condition(conditions, "terminating", False),
                        node_name=raw.get("nodeName"),
                        zone=raw.get("zone"),
                    )
                )
        out[(str(raw_port.get("name") or ""), protocol)] = tuple(eps)
    return out


def merge_slices(slices: Sequence[Mapping[tuple[str, str], tuple[Endpoint, ...]]]) -> EndpointsByPort:
    """One Service's endpoints from all its slices; an address in two slices counts once (first wins),
    sorted so that the same endpoints always render the same rules."""
    merged: dict[tuple[str, str], dict[tuple[str, int], Endpoint]] = {}
    for by_port in slices:
        for port_key, eps in by_port.items():
            bucket = merged.setdefault(port_key, {})
            for ep in eps:
                bucket.setdefault((ep.ip, ep.port), ep)
    return {
        k: tuple(sorted(v.values(), key=lambda e: (socket.inet_aton(e.ip), e.port))) for k, v in merged.items() if v
    }
