"""The scheduling algorithm over in-memory state: filter → score → pick, plus the bookkeeping of
what each node already runs. Pure (no I/O), so the benchmark and unit tests drive it directly."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from controlplane.scheduler.filters import DEFAULT_FILTERS, Filter, host_ports_free, node_selector_and_affinity
from controlplane.scheduler.scores import weighted_score
from controlplane.scheduler.types import NodeInfo, PodInfo


@dataclass(frozen=True)
class ScheduleResult:
    node: str | None
    feasible: int
    evaluated: int
    reasons: Counter[str] = field(default_factory=Counter)

    def message(self, total_nodes: int) -> str:
        """`0/3 nodes are available: 1 Insufficient cpu, 2 node(s) were unschedulable.`"""
        parts = ", ".join(f"{n} {r}" for r, n in sorted(self.reasons.items(), key=lambda rn: (-rn[1], rn[0])))
        return f"0/{total_nodes} nodes are available: {parts or 'no nodes registered'}."


def nodes_to_find(total: int, percentage: int = 0) -> int:
    """How many feasible nodes are enough (kube-scheduler's adaptive percentageOfNodesToScore):
    all of them below 100 nodes, else 50% shrinking by 1% per 125 nodes, at least 5% and 100 nodes."""
    if total < 100:
        return total
    pct = percentage or max(5, 50 - total // 125)
    return max(100, total * pct // 100)


def relevant_filters(pod: PodInfo, filters: tuple[Filter, ...]) -> tuple[Filter, ...]:
    """Drops filters that cannot fail for this pod (kube-scheduler's PreFilter "Skip"): no selector
    or affinity, no host ports. They run nodes × pods times, so skipping them is most of the win."""
    skip: set[Filter] = set()
    if not pod.node_selector and not pod.affinity:
        skip.add(node_selector_and_affinity)
    if not pod.host_ports:
        skip.add(host_ports_free)
    return tuple(f for f in filters if f not in skip)


class ClusterState:
    def __init__(self, *, filters: tuple[Filter, ...] = DEFAULT_FILTERS, seed: int | None = None) -> None:
        self.filters = filters
        self.nodes: dict[str, NodeInfo] = {}
        self._order: list[str] = []
        self._next_start = 0
        self.assigned: dict[str, tuple[str, PodInfo]] = {}  # pod key → (node, pod)
        self._rng = random.Random(seed)

    # -- nodes -----------------------------------------------------------------------------------

    def set_node(self, info: NodeInfo) -> None:
        """Adds a node or refreshes its static part, keeping the sums of the pods it runs."""
        old = self.nodes.get(info.name)
        if old is None:
            self._order.append(info.name)
            self.nodes[info.name] = info
            for node, pod in self.assigned.values():
                if node == info.name:
                    self._account(info, pod, +1)
            return
        old.labels, old.taints, old.unschedulable = info.labels, info.taints, info.unschedulable
        old.alloc_cpu, old.alloc_mem, old.alloc_pods = info.alloc_cpu, info.alloc_mem, info.alloc_pods

    def remove_node(self, name: str) -> None:
        if self.nodes.pop(name, None) is not None:
            self._order.remove(name)

    # -- pods ------------------------------------------------------------------------------------

    def add_pod(self, node: str, pod: PodInfo) -> None:
        """Counts a bound (or assumed) pod against its node; re-adding a key moves it."""
        self.remove_pod(pod.key)
        self.assigned[pod.key] = (node, pod)
        info = self.nodes.get(node)
        if info is not None:
            self._account(info, pod, +1)

    def remove_pod(self, key: str) -> None:
        entry = self.assigned.pop(key, None)
        if entry is not None and (info := self.nodes.get(entry[0])) is not None:
            self._account(info, entry[1], -1)

    @staticmethod
    def _account(info: NodeInfo, pod: PodInfo, sign: int) -> None:
        info.req_cpu += sign * pod.cpu
        info.req_mem += sign * pod.mem
        info.nz_cpu += sign * pod.nz_cpu
        info.nz_mem += sign * pod.nz_mem
        info.pods += sign
        for hp in pod.host_ports:
            info.host_ports[hp] += sign
            if info.host_ports[hp] <= 0:
                del info.host_ports[hp]
        if pod.owner_uid:
            info.owners[pod.owner_uid] += sign
            if info.owners[pod.owner_uid] <= 0:
                del info.owners[pod.owner_uid]

    # -- the algorithm ---------------------------------------------------------------------------

    def schedule(self, pod: PodInfo) -> ScheduleResult:
        nodes = [self.nodes[name] for name in self._order]
        total = len(nodes)
        want = nodes_to_find(total)
        feasible: list[NodeInfo] = []
        reasons: Counter[str] = Counter()
        filters = relevant_filters(pod, self.filters)
        start = self._next_start % total if total else 0
        evaluated = 0
        for node in nodes[start:] + nodes[:start]:
            evaluated += 1
            for f in filters:
                reason = f(pod, node)
                if reason is not None:
                    reasons[reason] += 1
                    break
            else:
                feasible.append(node)
                if len(feasible) >= want:
                    break
        # Rotate the starting point so a partial search does not always favour the same nodes.
        self._next_start = (start + evaluated) % total if total else 0
        if not feasible:
            return ScheduleResult(None, 0, evaluated, reasons)
        max_owned = max((n.owners.get(pod.owner_uid, 0) for n in feasible), default=0) if pod.owner_uid else 0
        best: list[NodeInfo] = []
        best_score = -1.0
        for node in feasible:
            score = weighted_score(pod, node, max_owned)
            if score > best_score + 1e-9:
                best, best_score = [node], score
            elif abs(score - best_score) <= 1e-9:
                best.append(node)
        chosen = best[0] if len(best) == 1 else self._rng.choice(best)
        return ScheduleResult(chosen.name, len(feasible), evaluated, reasons)
