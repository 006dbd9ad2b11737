"""EndpointSlices and legacy Endpoints of Services with a selector, from the selected pods.

`service_endpoints` (pure) resolves each pod's ports by name and its conditions (ready = Ready and
not terminating; serving = Ready; terminating = being deleted); `plan_slices` (pure) groups them by
address type and port set into slices of at most 100 endpoints, reusing existing slices.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from controlplane.client import AlreadyExists, NotFound, split_key
from controlplane.client.informer import Informer
from controlplane.controllers.base import Context, Controller, Obj, owner_ref
from controlplane.controllers.podutil import is_ready, phase, random_suffix
from controlplane.controllers.selectors import map_matches
from controlplane.resources import ENDPOINTS, ENDPOINTSLICES, PODS, SERVICES

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"
MAX_ENDPOINTS_PER_SLICE = 100

PortKey = tuple[tuple[str, str, int], ...]  # (name, protocol, port), sorted


@dataclass(frozen=True)
class Endpoint:
    ip: str
    address_type: str
    ports: PortKey
    ready: bool
    serving: bool
    terminating: bool
    node_name: str | None
    pod_name: str
    pod_namespace: str
    pod_uid: str | None
    hostname: str | None = None

    def to_slice_endpoint(self) -> Obj:
        ep: Obj = {
            "addresses": [self.ip],
            "conditions": {"ready": self.ready, "serving": self.serving, "terminating": self.terminating},
            "targetRef": {"kind": "Pod", "namespace": self.pod_namespace, "name": self.pod_name, "uid": self.pod_uid},
        }
        if self.node_name:
            ep["nodeName"] = self.node_name
        if self.hostname:
            ep["hostname"] = self.hostname
        return ep

    def to_address(self) -> Obj:
        addr: Obj = {
            "ip": self.ip,
            "targetRef": {"kind": "Pod", "namespace": self.pod_namespace, "name": self.pod_name, "uid": self.pod_uid},
        }
        if self.node_name:
            addr["nodeName"] = self.node_name
        if self.hostname:
            addr["hostname"] = self.hostname
        return addr


def _resolve_port(target: Any, pod: Obj, protocol: str) -> int | None:
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for c in (pod.get("spec") or {}).get("containers") or ():
        for p in c.get("ports") or ():
            if p.get("name") == target and (p.get("protocol") or "TCP") == protocol:
                return int(p["containerPort"])
    return None


def service_endpoints(service: Obj, pods: Iterable[Obj]) -> list[Endpoint]:
    """The endpoints of a selector Service: one per selected pod that has an IP and is not finished."""
    spec = service.get("spec") or {}
    selector = spec.get("selector") or {}
    if not selector:
        return []
    publish_not_ready = bool(spec.get("publishNotReadyAddresses"))
    out: list[Endpoint] = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        status = pod.get("status") or {}
        ip = status.get("podIP")
        if not ip or phase(pod) in ("Succeeded", "Failed") or not map_matches(selector, meta.get("labels")):
            continue
        ports: list[tuple[str, str, int]] = []
        for sp in spec.get("ports") or ():
            protocol = str(sp.get("protocol") or "TCP")
            port = _resolve_port(sp.get("targetPort", sp.get("port")), pod, protocol)
            if port is not None:
                ports.append((str(sp.get("name") or ""), protocol, port))
        terminating = bool(meta.get("deletionTimestamp"))
        ready = is_ready(pod)
        pod_spec = pod.get("spec") or {}
        out.append(
            Endpoint(
                ip=str(ip),
                address_type="IPv6" if ":" in str(ip) else "IPv4",
                ports=tuple(sorted(ports)),
                ready=(ready or publish_not_ready) and not terminating,
                serving=ready or publish_not_ready,
                terminating=terminating,
                node_name=pod_spec.get("nodeName"),
                pod_name=str(meta.get("name")),
                pod_namespace=str(meta.get("namespace")),
                pod_uid=meta.get("uid"),
                hostname=pod_spec.get("hostname") if pod_spec.get("subdomain") == service["metadata"]["name"] else None,
            )
        )
    out.sort(key=lambda e: (e.pod_name, e.ip))
    return out


def _ports_json(ports: PortKey) -> list[Obj]:
    return [{"name": n, "protocol": p, "port": port} for n, p, port in ports]


def _slice_key(s: Obj) -> tuple[str, PortKey]:
    ports = tuple(
        sorted(
            (str(p.get("name") or ""), str(p.get("protocol") or "TCP"), int(p.get("port") or 0))
            for p in s.get("ports") or ()
        )
    )
    return str(s.get("addressType") or "IPv4"), ports


@dataclass
class SlicePlan:
    create: list[Obj] = field(default_factory=list)
    update: list[Obj] = field(default_factory=list)
    delete: list[Obj] = field(default_factory=list)


def plan_slices(
    service: Obj, endpoints: list[Endpoint], existing: list[Obj], *, max_per_slice: int = MAX_ENDPOINTS_PER_SLICE
) -> SlicePlan:
    """Slices (≤ max_per_slice endpoints each) per (address type, port set); existing slices of the
    same kind are rewritten in place, extras deleted. A selector Service with no endpoints still
    gets one empty slice (consumers then know the service exists but has no backends)."""
    meta = service["metadata"]
    groups: dict[tuple[str, PortKey], list[Endpoint]] = {}
    for ep in endpoints:
        groups.setdefault((ep.address_type, ep.ports), []).append(ep)
    if not groups:
        groups[("IPv4", ())] = []  # the placeholder slice: no ports, no endpoints
    spare: dict[tuple[str, PortKey], list[Obj]] = {}
    for s in sorted(existing, key=lambda s: s["metadata"]["name"]):
        spare.setdefault(_slice_key(s), []).append(s)
    plan = SlicePlan()
    labels = {**(meta.get("labels") or {}), SERVICE_NAME_LABEL: meta["name"], MANAGED_BY_LABEL: MANAGED_BY}
    for (addr_type, ports), eps in sorted(groups.items()):
        chunks = [eps[i : i + max_per_slice] for i in range(0, len(eps), max_per_slice)] or [[]]
        for chunk in chunks:
            body_endpoints = [e.to_slice_endpoint() for e in chunk]
            reuse = spare.get((addr_type, ports))
            if reuse:
                current = reuse.pop(0)
                if (current.get("endpoints") or []) != body_endpoints or (
                    current["metadata"].get("labels") or {}
                ) != labels:
                    plan.update.append(
                        {**current, "metadata": {**current["metadata"], "labels": labels}, "endpoints": body_endpoints}
                    )
                continue
            plan.create.append(
                {
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {
                        "name": f"{meta['name']}-{random_suffix()}",
                        "namespace": meta["namespace"],
                        "labels": labels,
                        "ownerReferences": [owner_ref(service)],
                    },
                    "addressType": addr_type,
                    "ports": _ports_json(ports),
                    "endpoints": body_endpoints,
                }
            )
    plan.delete = [s for rest in spare.values() for s in rest]
    return plan


def endpoints_subsets(endpoints: list[Endpoint]) -> list[Obj]:
    """Legacy Endpoints: one subset per port set; ready addresses and not-ready ones (terminating
    pods are left out, as the Endpoints controller does)."""
    subsets: dict[PortKey, Obj] = {}
    for ep in endpoints:
        if ep.terminating:
            continue
        sub = subsets.setdefault(ep.ports, {"addresses": [], "notReadyAddresses": [], "ports": _ports_json(ep.ports)})
        sub["addresses" if ep.ready else "notReadyAddresses"].append(ep.to_address())
    out = []
    for ports in sorted(subsets):
        sub = {k: v for k, v in subsets[ports].items() if v}
        if sub.get("addresses") or sub.get("notReadyAddresses"):
            out.append(sub)
    return out


class _ServicePodController(Controller):
    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.services = self.watch_own(SERVICES)
        self.pods: Informer = self.watch_related(PODS, self._service_keys_of_pod)

    def _service_keys_of_pod(self, pod: Obj) -> list[str]:
        meta = pod.get("metadata") or {}
        ns = meta.get("namespace")
        out = []
        for svc in self.services.list():
            smeta = svc["metadata"]
            selector = (svc.get("spec") or {}).get("selector")
            if smeta.get("namespace") == ns and selector and map_matches(selector, meta.get("labels")):
                out.append(f"{ns}/{smeta['name']}")
        return out

    def endpoints_of(self, svc: Obj) -> list[Endpoint]:
        ns = svc["metadata"]["namespace"]
        return service_endpoints(svc, (p for p in self.pods.list() if p["metadata"].get("namespace") == ns))


class EndpointSliceController(_ServicePodController):
    name = "endpointslice"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.slices = self.watch_related(ENDPOINTSLICES, self._service_key_of_slice)

    @staticmethod
    def _service_key_of_slice(s: Obj) -> list[str]:
        labels = s["metadata"].get("labels") or {}
        if labels.get(MANAGED_BY_LABEL) != MANAGED_BY or not labels.get(SERVICE_NAME_LABEL):
            return []
        return [f"{s['metadata'].get('namespace')}/{labels[SERVICE_NAME_LABEL]}"]

    async def reconcile(self, key: str) -> float | None:
        ns, _name = split_key(key)
        ours = [
            s
            for s in self.slices.list()
            if s["metadata"].get("namespace") == ns and self._service_key_of_slice(s) == [key]
        ]
        svc = self.services.get(key)
        if svc is None or not (svc.get("spec") or {}).get("selector"):
            plan = SlicePlan(delete=ours)
        else:
            plan = plan_slices(svc, self.endpoints_of(svc), ours)
        for s in plan.delete:
            with contextlib.suppress(NotFound):
                await self.client.delete(ENDPOINTSLICES, s["metadata"]["name"], ns)
        for s in plan.update:
            await self.client.update(ENDPOINTSLICES, s)  # Conflict → back-off and recompute
        for s in plan.create:
            await self.client.create(ENDPOINTSLICES, s, ns)
        return None


class EndpointsController(_ServicePodController):
    name = "endpoints"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.endpoints = self.watch_own(ENDPOINTS)

    async def reconcile(self, key: str) -> float | None:
        ns, name = split_key(key)
        assert ns is not None
        svc = self.services.get(key)
        current = self.endpoints.get(key)
        if svc is None or not (svc.get("spec") or {}).get("selector"):
            # Only Endpoints we made (a selector Service existed) are ours to remove.
            if (
                svc is None
                and current is not None
                and (current["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY
            ):
                with contextlib.suppress(NotFound):
                    await self.client.delete(ENDPOINTS, name, ns)
            return None
        subsets = endpoints_subsets(self.endpoints_of(svc))
        labels = {**(svc["metadata"].get("labels") or {}), MANAGED_BY_LABEL: MANAGED_BY}
        if current is None:
            body = {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {"name": name, "namespace": ns, "labels": labels},
                "subsets": subsets,
            }
            with contextlib.suppress(AlreadyExists):
                await self.client.create(ENDPOINTS, body, ns)
            return None
        if (current.get("subsets") or []) != subsets or (current["metadata"].get("labels") or {}) != labels:
            body = {**current, "metadata": {**current["metadata"], "labels": labels}, "subsets": subsets}
            await self.client.update(ENDPOINTS, body)
        return None
