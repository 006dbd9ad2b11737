"""The scheduler's view of nodes and pods, extracted once from API objects so the filter/score loop
touches only plain attributes (it runs nodes × pods times)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from controlplane.validation.quantity import QuantityError, parse_quantity

# Scoring treats a container without requests as asking for this much (as kube-scheduler does), so
# request-less pods still spread instead of all landing on the first node.
DEFAULT_CPU_MILLI = 100
DEFAULT_MEMORY = 200 * 1024 * 1024
DEFAULT_MAX_PODS = 110


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str
    effect: str


@dataclass(frozen=True, slots=True)
class HostPort:
    protocol: str
    port: int
    ip: str  # "" = every address


@dataclass(frozen=True, slots=True)
class Toleration:
    key: str
    operator: str  # "Equal" | "Exists"
    value: str
    effect: str  # "" = every effect
    seconds: int | None = None  # tolerationSeconds, for NoExecute

    def tolerates(self, taint: Taint) -> bool:
        if self.effect and self.effect != taint.effect:
            return False
        if self.operator == "Exists":
            return not self.key or self.key == taint.key
        return self.key == taint.key and self.value == taint.value


@dataclass(frozen=True, slots=True)
class NodeSelectorRequirement:
    key: str
    operator: str  # In NotIn Exists DoesNotExist Gt Lt
    values: tuple[str, ...]

    def matches(self, labels: dict[str, str]) -> bool:
        value = labels.get(self.key)
        op = self.operator
        if op == "In":
            return value is not None and value in self.values
        if op == "NotIn":
            return value is None or value not in self.values
        if op == "Exists":
            return value is not None
        if op == "DoesNotExist":
            return value is None
        if op in ("Gt", "Lt") and value is not None and self.values:
            try:
                have, want = int(value), int(self.values[0])
            except ValueError:
                return False
            return have > want if op == "Gt" else have < want
        return False


@dataclass(frozen=True, slots=True)
class NodeSelectorTerm:
    """matchExpressions against labels and matchFields against `metadata.name`, ANDed."""

    expressions: tuple[NodeSelectorRequirement, ...]
    fields: tuple[NodeSelectorRequirement, ...]

    def matches(self, name: str, labels: dict[str, str]) -> bool:
        if not self.expressions and not self.fields:
            return False  # an empty term selects nothing (API semantics)
        return all(r.matches(labels) for r in self.expressions) and all(
            r.matches({"metadata.name": name}) for r in self.fields
        )


@dataclass(slots=True)
class NodeInfo:
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    unschedulable: bool = False
    alloc_cpu: int = 0  # millicores
    alloc_mem: int = 0  # bytes
    alloc_pods: int = DEFAULT_MAX_PODS
    # Sums over the pods on this node (bound or assumed), kept by ClusterState.
    req_cpu: int = 0
    req_mem: int = 0
    nz_cpu: int = 0
    nz_mem: int = 0
    pods: int = 0
    host_ports: Counter[HostPort] = field(default_factory=Counter)
    owners: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class PodInfo:
    key: str
    cpu: int = 0
    mem: int = 0
    nz_cpu: int = DEFAULT_CPU_MILLI
    nz_mem: int = DEFAULT_MEMORY
    node_selector: tuple[tuple[str, str], ...] = ()
    affinity: tuple[NodeSelectorTerm, ...] = ()  # ORed; empty = no required affinity
    tolerations: tuple[Toleration, ...] = ()
    host_ports: tuple[HostPort, ...] = ()
    owner_uid: str | None = None


def _milli(value: Any) -> int:
    try:
        return int(parse_quantity(value) * 1000)
    except (QuantityError, ValueError, TypeError, ZeroDivisionError):
        return 0


def _bytes(value: Any) -> int:
    try:
        return int(parse_quantity(value))
    except (QuantityError, ValueError, TypeError, ZeroDivisionError):
        return 0


def _requirements(items: Any) -> tuple[NodeSelectorRequirement, ...]:
    return tuple(
        NodeSelectorRequirement(
            str(r.get("key", "")), str(r.get("operator", "")), tuple(map(str, r.get("values") or ()))
        )
        for r in items or ()
    )


def toleration_from(t: dict[str, Any]) -> Toleration:
    seconds = t.get("tolerationSeconds")
    return Toleration(
        key=str(t.get("key") or ""),
        operator=str(t.get("operator") or "Equal"),
        value=str(t.get("value") or ""),
        effect=str(t.get("effect") or ""),
        seconds=int(seconds) if seconds is not None else None,
    )


def taint_from(t: dict[str, Any]) -> Taint:
    return Taint(str(t.get("key") or ""), str(t.get("value") or ""), str(t.get("effect") or ""))


def pod_info(pod: dict[str, Any]) -> PodInfo:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    cpu = mem = nz_cpu = nz_mem = 0
    ports: list[HostPort] = []
    for c in spec.get("containers") or ():
        req = (c.get("resources") or {}).get("requests") or {}
        c_cpu, c_mem = _milli(req.get("cpu", 0)), _bytes(req.get("memory", 0))
        cpu, mem = cpu + c_cpu, mem + c_mem
        nz_cpu += c_cpu or DEFAULT_CPU_MILLI
        nz_mem += c_mem or DEFAULT_MEMORY
        for p in c.get("ports") or ():
            if p.get("hostPort"):
                ports.append(HostPort(str(p.get("protocol") or "TCP"), int(p["hostPort"]), str(p.get("hostIP") or "")))
    # Init containers run one at a time before the app containers: the pod needs the larger of both.
    for c in spec.get("initContainers") or ():
        req = (c.get("resources") or {}).get("requests") or {}
        cpu = max(cpu, _milli(req.get("cpu", 0)))
        mem = max(mem, _bytes(req.get("memory", 0)))
    terms: tuple[NodeSelectorTerm, ...] = ()
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    if required:
        terms = tuple(
            NodeSelectorTerm(_requirements(t.get("matchExpressions")), _requirements(t.get("matchFields")))
            for t in required.get("nodeSelectorTerms") or ()
        )
        if not terms:
            terms = (NodeSelectorTerm((), ()),)  # required but empty: matches no node
    owner = next((r.get("uid") for r in meta.get("ownerReferences") or () if r.get("controller")), None)
    ns, name = meta.get("namespace") or "default", meta.get("name") or ""
    return PodInfo(
        key=f"{ns}/{name}",
        cpu=cpu,
        mem=mem,
        nz_cpu=max(nz_cpu, cpu),
        nz_mem=max(nz_mem, mem),
        node_selector=tuple(sorted((str(k), str(v)) for k, v in (spec.get("nodeSelector") or {}).items())),
        affinity=terms,
        tolerations=tuple(toleration_from(t) for t in spec.get("tolerations") or ()),
        host_ports=tuple(ports),
        owner_uid=str(owner) if owner else None,
    )


def node_info(node: dict[str, Any]) -> NodeInfo:
    """Static part of a node (the per-pod sums start at zero)."""
    meta = node.get("metadata") or {}
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    alloc = status.get("allocatable") or status.get("capacity") or {}
    pods = _bytes(alloc.get("pods", DEFAULT_MAX_PODS)) if alloc.get("pods") is not None else DEFAULT_MAX_PODS
    return NodeInfo(
        name=str(meta.get("name", "")),
        labels={str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
        taints=tuple(taint_from(t) for t in spec.get("taints") or ()),
        unschedulable=bool(spec.get("unschedulable")),
        alloc_cpu=_milli(alloc.get("cpu", 0)),
        alloc_mem=_bytes(alloc.get("memory", 0)),
        alloc_pods=pods,
    )
