"""Timings of the control loops, in one place so tests can shrink them (defaults match Kubernetes)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ControllerConfig:
    # Node lifecycle: a node whose Lease and Ready heartbeat are older than this becomes Ready=Unknown.
    node_monitor_grace: float = 40.0
    node_monitor_period: float = 5.0
    # tolerationSeconds the DefaultTolerationSeconds admission gives pods for not-ready/unreachable.
    default_toleration_seconds: int = 300
    # Leader election (client-go defaults: 15 s lease, 10 s renew deadline, 2 s retry).
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    lease_namespace: str = "kube-system"
    lease_name: str = "tinykube-controller-manager"
    # Work queues: per-key exponential back-off after a failed reconcile.
    queue_base_delay: float = 0.005
    queue_max_delay: float = 60.0
    workers: int = 2
    # Informer watch timeout (server-side), after which it re-watches from the last version.
    watch_timeout: int = 300
