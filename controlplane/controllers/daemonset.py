"""DaemonSet: one pod on every node the template fits (nodeSelector, required affinity, taints).

Pods are pinned with required node affinity on `metadata.name` (as Kubernetes ≥ 1.12 does) and
placed by the scheduler. Template changes roll out node by node (RollingUpdate, maxUnavailable
default 1) using the `controller-revision-hash` label; `OnDelete` waits for the user.
"""

from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import dataclass, field
from typing import Any

from controlplane.client import NotFound, split_key
from controlplane.controllers.base import Context, Controller, Obj, controller_of, is_deleting, owner_ref
from controlplane.controllers.deploymentutil import template_hash
from controlplane.controllers.expectations import created_seen, wait_cache
from controlplane.controllers.podutil import is_active, is_available, is_ready, phase, pod_from_template, random_suffix
from controlplane.controllers.selectors import SelectorError, matches
from controlplane.resources import DAEMONSETS, NODES, PODS
from controlplane.scheduler.filters import node_selector_and_affinity, taints_tolerated
from controlplane.scheduler.types import node_info, pod_info

REVISION_LABEL = "controller-revision-hash"

# What the DaemonSet controller adds to every daemon pod: daemons stay through node trouble.
DAEMON_TOLERATIONS: tuple[Obj, ...] = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)


def daemon_pod_template(ds: Obj) -> Obj:
    """The template with the daemon tolerations added (what every daemon pod gets)."""
    template = copy.deepcopy((ds.get("spec") or {}).get("template") or {})
    spec = template.setdefault("spec", {})
    tolerations = list(spec.get("tolerations") or [])
    tolerations += [t for t in DAEMON_TOLERATIONS if t not in tolerations]
    spec["tolerations"] = tolerations
    return template


def should_run(template: Obj, node: Obj) -> bool:
    pod = pod_info({"metadata": {"name": "probe", "namespace": "x"}, "spec": template.get("spec") or {}})
    info = node_info(node)
    return node_selector_and_affinity(pod, info) is None and taints_tolerated(pod, info) is None


def target_node(pod: Obj) -> str | None:
    """The node a daemon pod belongs to: its nodeName, or the name its affinity pins it to."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    for term in required.get("nodeSelectorTerms") or ():
        for f in term.get("matchFields") or ():
            if f.get("key") == "metadata.name" and f.get("values"):
                return str(f["values"][0])
    return None


def pin_to_node(template: Obj, node: str) -> Obj:
    out = copy.deepcopy(template)
    spec = out.setdefault("spec", {})
    affinity = spec.setdefault("affinity", {})
    affinity["nodeAffinity"] = {
        **(affinity.get("nodeAffinity") or {}),
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]
        },
    }
    return out


@dataclass
class DaemonPlan:
    create_on: list[str] = field(default_factory=list)
    delete: list[Obj] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)


def plan_daemons(ds: Obj, nodes: list[Obj], pods: list[Obj], *, now: float) -> DaemonPlan:
    """Pure: which nodes need a daemon pod, which pods must go, and the status to report."""
    spec = ds.get("spec") or {}
    template = daemon_pod_template(ds)
    revision = template_hash(template)
    min_ready = int(spec.get("minReadySeconds") or 0)
    by_node: dict[str, list[Obj]] = {}
    plan = DaemonPlan()
    for pod in pods:
        if phase(pod) == "Failed" and not is_deleting(pod):
            plan.delete.append(pod)  # replaced on the next pass
            continue
        node = target_node(pod)
        if node is not None and is_active(pod):
            by_node.setdefault(node, []).append(pod)
    wanted = {n["metadata"]["name"] for n in nodes if should_run(template, n)}
    scheduled = misscheduled = ready = available = updated = 0
    outdated: list[Obj] = []
    for name in sorted(wanted):
        running = by_node.get(name, [])
        if not running:
            plan.create_on.append(name)
            continue
        running.sort(key=lambda p: str(p["metadata"].get("creationTimestamp") or ""))
        plan.delete += running[1:]
        pod = running[0]
        scheduled += 1
        ready += is_ready(pod)
        available += is_available(pod, min_ready, now)
        if (pod["metadata"].get("labels") or {}).get(REVISION_LABEL) == revision:
            updated += 1
        else:
            outdated.append(pod)
    for name, running in by_node.items():
        if name not in wanted:
            misscheduled += len(running)
            plan.delete += running
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") == "RollingUpdate" and outdated:
        raw = (strategy.get("rollingUpdate") or {}).get("maxUnavailable", 1)
        if isinstance(raw, str) and raw.endswith("%"):
            max_unavailable = max(1, math.floor(int(raw[:-1]) * len(wanted) / 100))
        else:
            max_unavailable = max(1, int(raw))
        budget = max_unavailable - (len(wanted) - available)
        # Unavailable outdated pods go first: replacing them costs no availability.
        outdated.sort(key=lambda p: is_available(p, min_ready, now))
        for pod in outdated:
            if not is_available(pod, min_ready, now):
                plan.delete.append(pod)
            elif budget > 0:
                plan.delete.append(pod)
                budget -= 1
    plan.status = {
        "desiredNumberScheduled": len(wanted),
        "currentNumberScheduled": scheduled,
        "numberMisscheduled": misscheduled,
        "numberReady": ready,
        "numberAvailable": available,
        "numberUnavailable": max(len(wanted) - available, 0),
        "updatedNumberScheduled": updated,
        "observedGeneration": int((ds.get("metadata") or {}).get("generation") or 1),
    }
    return plan


class DaemonSetController(Controller):
    name = "daemonset"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.daemonsets = self.watch_own(DAEMONSETS)
        self.nodes = self.watch_related(
            NODES, lambda _n: [f"{d['metadata']['namespace']}/{d['metadata']['name']}" for d in self.daemonsets.list()]
        )
        self.pods = self.watch_related(PODS, self._owner_of)

    @staticmethod
    def _owner_of(pod: Obj) -> list[str]:
        ref = controller_of(pod)
        if ref is None or ref.get("kind") != "DaemonSet":
            return []
        return [f"{pod['metadata'].get('namespace')}/{ref['name']}"]

    async def reconcile(self, key: str) -> float | None:
        ds = self.daemonsets.get(key)
        if ds is None or is_deleting(ds):
            return None
        ns, _ = split_key(key)
        assert ns is not None
        try:
            if not matches(
                (ds.get("spec") or {}).get("selector"),
                ((ds["spec"].get("template") or {}).get("metadata") or {}).get("labels"),
            ):
                return None  # validation should have refused a selector its template does not match
        except SelectorError:
            return None
        uid = ds["metadata"]["uid"]
        pods = [
            p
            for p in self.pods.list()
            if p["metadata"].get("namespace") == ns and (controller_of(p) or {}).get("uid") == uid
        ]
        plan = plan_daemons(ds, self.nodes.list(), pods, now=self.ctx.now())
        template = daemon_pod_template(ds)
        template.setdefault("metadata", {}).setdefault("labels", {})[REVISION_LABEL] = template_hash(template)
        made: list[str] = []
        for node in plan.create_on:
            name = f"{ds['metadata']['name']}-{random_suffix()}"
            body = pod_from_template(pin_to_node(template, node), name=name, namespace=ns, owner_ref=owner_ref(ds))
            await self.client.create(PODS, body, ns)
            made.append(f"{ns}/{name}")
        await wait_cache(self.pods, created_seen(self.pods, made))
        for pod in plan.delete:
            with contextlib.suppress(NotFound):
                await self.client.delete(PODS, pod["metadata"]["name"], ns)
        current = ds.get("status") or {}
        if any(current.get(k, 0) != v for k, v in plan.status.items()):
            with contextlib.suppress(NotFound):
                await self.client.patch(
                    DAEMONSETS, ds["metadata"]["name"], {"status": plan.status}, ns, subresource="status"
                )
        return None
