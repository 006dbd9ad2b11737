"""Filters: can this pod run on this node? Each returns None (fits) or the reason it does not, in
the wording `kubectl describe pod` shows after "0/N nodes are available:"."""

from __future__ import annotations

from collections.abc import Callable

from controlplane.scheduler.types import NodeInfo, PodInfo

INSUFFICIENT_CPU = "Insufficient cpu"
INSUFFICIENT_MEMORY = "Insufficient memory"
TOO_MANY_PODS = "Too many pods"
SELECTOR_MISMATCH = "node(s) didn't match Pod's node affinity/selector"
UNTOLERATED_TAINT = "node(s) had untolerated taint(s)"
PORTS_IN_USE = "node(s) didn't have free ports for the requested pod ports"
UNSCHEDULABLE = "node(s) were unschedulable"

Filter = Callable[[PodInfo, NodeInfo], str | None]


def node_unschedulable(pod: PodInfo, node: NodeInfo) -> str | None:
    if not node.unschedulable:
        return None
    # `kubectl cordon` also adds this taint; a pod tolerating it may still go there.
    for tol in pod.tolerations:
        if tol.key == "node.kubernetes.io/unschedulable" and tol.effect in ("", "NoSchedule"):
            return None
    return UNSCHEDULABLE


def resources_fit(pod: PodInfo, node: NodeInfo) -> str | None:
    if node.pods + 1 > node.alloc_pods:
        return TOO_MANY_PODS
    if pod.cpu and node.req_cpu + pod.cpu > node.alloc_cpu:
        return INSUFFICIENT_CPU
    if pod.mem and node.req_mem + pod.mem > node.alloc_mem:
        return INSUFFICIENT_MEMORY
    return None


def node_selector_and_affinity(pod: PodInfo, node: NodeInfo) -> str | None:
    labels = node.labels
    for key, value in pod.node_selector:
        if labels.get(key) != value:
            return SELECTOR_MISMATCH
    if pod.affinity and not any(term.matches(node.name, labels) for term in pod.affinity):
        return SELECTOR_MISMATCH
    return None


def taints_tolerated(pod: PodInfo, node: NodeInfo) -> str | None:
    for taint in node.taints:
        if taint.effect not in ("NoSchedule", "NoExecute"):
            continue  # PreferNoSchedule only lowers a score
        if not any(tol.tolerates(taint) for tol in pod.tolerations):
            return UNTOLERATED_TAINT
    return None


def host_ports_free(pod: PodInfo, node: NodeInfo) -> str | None:
    for want in pod.host_ports:
        for used in node.host_ports:
            if (
                used.protocol == want.protocol
                and used.port == want.port
                and (
                    not used.ip
                    or not want.ip
                    or used.ip in ("0.0.0.0", "::")
                    or want.ip in ("0.0.0.0", "::")
                    or used.ip == want.ip
                )
            ):
                return PORTS_IN_USE
    return None


# Cheapest and most selective first: the loop stops at the first failing filter.
DEFAULT_FILTERS: tuple[Filter, ...] = (
    node_unschedulable,
    resources_fit,
    node_selector_and_affinity,
    taints_tolerated,
    host_ports_free,
)


def first_failure(pod: PodInfo, node: NodeInfo, filters: tuple[Filter, ...] = DEFAULT_FILTERS) -> str | None:
    for f in filters:
        reason = f(pod, node)
        if reason is not None:
            return reason
    return None
