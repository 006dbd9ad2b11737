"""Scheduler throughput: 5,000 pods onto 1,000 hollow nodes with the real filter/score core over
in-memory state (no API round trips), like kube-scheduler's scheduler_perf "SchedulingBasic".

    .venv/bin/python -m bench.scheduler [--nodes 1000] [--pods 5000]

Prints pods/s; the goal is ≥ 500 (scheduler_perf thresholds are 570–1,100 pods/s)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from controlplane.scheduler.core import ClusterState
from controlplane.scheduler.types import PodInfo, node_info, pod_info

GOAL_PODS_PER_SECOND = 500


def hollow_node(i: int) -> dict[str, Any]:
    return {
        "metadata": {"name": f"hollow-{i}", "labels": {"zone": f"z{i % 3}"}},
        "spec": {},
        "status": {"allocatable": {"cpu": "4", "memory": "32Gi", "pods": "110"}},
    }


def bench_pod(i: int, owners: int) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"pod-{i}",
            "namespace": "bench",
            "ownerReferences": [{"uid": f"rs-{i % owners}", "controller": True, "kind": "ReplicaSet", "name": "rs"}],
        },
        "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}}}]},
    }


def run(nodes: int, pods: int, owners: int = 50) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, pods scheduled); CPU time shows the cost when the machine is busy."""
    state = ClusterState(seed=42)
    for i in range(nodes):
        state.set_node(node_info(hollow_node(i)))
    infos: list[PodInfo] = [pod_info(bench_pod(i, owners)) for i in range(pods)]
    scheduled = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for info in infos:
        result = state.schedule(info)
        if result.node is not None:
            state.add_pod(result.node, info)
            scheduled += 1
    return time.perf_counter() - start, time.process_time() - cpu_start, scheduled


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--pods", type=int, default=5000)
    args = p.parse_args(argv)
    elapsed, cpu, scheduled = run(args.nodes, args.pods)
    rate = scheduled / elapsed if elapsed else float("inf")
    cpu_rate = scheduled / cpu if cpu else float("inf")
    verdict = "met" if rate >= GOAL_PODS_PER_SECOND else "NOT met"
    print(
        f"scheduled {scheduled}/{args.pods} pods on {args.nodes} nodes in {elapsed:.2f}s: {rate:.0f} pods/s, "
        f"{cpu_rate:.0f} pods per CPU-second (goal >= {GOAL_PODS_PER_SECOND}: {verdict})"
    )
    return 0 if scheduled == args.pods else 1


if __name__ == "__main__":
    sys.exit(main())
