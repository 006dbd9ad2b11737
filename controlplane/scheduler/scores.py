"""Scores in 0..100 (higher is better) for nodes that passed the filters."""

from __future__ import annotations

from controlplane.scheduler.types import NodeInfo, PodInfo

MAX_SCORE = 100


def least_allocated(pod: PodInfo, node: NodeInfo) -> float:
    """Prefers emptier nodes: the mean of the free fractions of CPU and memory after placing the pod."""
    total = 0.0
    for alloc, used in ((node.alloc_cpu, node.nz_cpu + pod.nz_cpu), (node.alloc_mem, node.nz_mem + pod.nz_mem)):
        if alloc > 0 and used < alloc:
            total += (alloc - used) * MAX_SCORE / alloc
    return total / 2


def balanced_allocation(pod: PodInfo, node: NodeInfo) -> float:
    """Prefers nodes where CPU and memory stay equally used, so neither is stranded."""
    if node.alloc_cpu <= 0 or node.alloc_mem <= 0:
        return 0.0
    cpu = min(1.0, (node.nz_cpu + pod.nz_cpu) / node.alloc_cpu)
    mem = min(1.0, (node.nz_mem + pod.nz_mem) / node.alloc_mem)
    return (1.0 - abs(cpu - mem)) * MAX_SCORE


def owner_spread(pod: PodInfo, node: NodeInfo, max_count: int) -> float:
    """Prefers nodes with fewer pods of the same controller; `max_count` is the most any feasible
    node has (0 → every node scores the same)."""
    if pod.owner_uid is None or max_count <= 0:
        return MAX_SCORE
    return (max_count - node.owners.get(pod.owner_uid, 0)) * MAX_SCORE / max_count


# Weights (kube-scheduler gives topology spreading twice the weight of the resource scores).
W_LEAST, W_BALANCED, W_SPREAD = 1.0, 1.0, 2.0


def weighted_score(pod: PodInfo, node: NodeInfo, max_count: int) -> float:
    """W_LEAST·least_allocated + W_BALANCED·balanced_allocation + W_SPREAD·owner_spread, computed in
    one pass: this runs for every feasible node of every pod, so the shared fractions matter."""
    alloc_cpu, alloc_mem = node.alloc_cpu, node.alloc_mem
    used_cpu, used_mem = node.nz_cpu + pod.nz_cpu, node.nz_mem + pod.nz_mem
    least = 0.0
    if alloc_cpu > 0 and used_cpu < alloc_cpu:
        least += (alloc_cpu - used_cpu) * MAX_SCORE / alloc_cpu
    if alloc_mem > 0 and used_mem < alloc_mem:
        least += (alloc_mem - used_mem) * MAX_SCORE / alloc_mem
    balanced = 0.0
    if alloc_cpu > 0 and alloc_mem > 0:
        balanced = (1.0 - abs(min(1.0, used_cpu / alloc_cpu) - min(1.0, used_mem / alloc_mem))) * MAX_SCORE
    if pod.owner_uid is None or max_count <= 0:
        spread = float(MAX_SCORE)
    else:
        spread = (max_count - node.owners.get(pod.owner_uid, 0)) * MAX_SCORE / max_count
    return W_LEAST * least / 2 + W_BALANCED * balanced + W_SPREAD * spread
