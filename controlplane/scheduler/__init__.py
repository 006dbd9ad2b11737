"""The scheduler: pure filters and scores over in-memory node state (`core`), and the loop that
binds pending pods (`scheduler`)."""

from controlplane.scheduler.core import ClusterState, ScheduleResult
from controlplane.scheduler.scheduler import Scheduler
from controlplane.scheduler.types import NodeInfo, PodInfo, node_info, pod_info

__all__ = ["ClusterState", "NodeInfo", "PodInfo", "ScheduleResult", "Scheduler", "node_info", "pod_info"]
