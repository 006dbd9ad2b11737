"""Pod facts the workload controllers agree on: active, ready, available, and which to delete first."""

from __future__ import annotations

import copy
import secrets
from typing import Any

from controlplane.controllers.timeutil import parse_time

Obj = dict[str, Any]

_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # no vowels: generated names never spell words


def random_suffix(n: int = 5) -> str:
    return "".join(secrets.choice(_NAME_ALPHABET) for _ in range(n))


def phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def is_active(pod: Obj) -> bool:
    """Counts towards replicas: not being deleted and not finished."""
    return not (pod.get("metadata") or {}).get("deletionTimestamp") and phase(pod) not in ("Succeeded", "Failed")


def condition(obj: Obj, type_: str) -> Obj | None:
    for c in (obj.get("status") or {}).get("conditions") or ():
        if c.get("type") == type_:
            return dict(c)
    return None


def is_ready(pod: Obj) -> bool:
    c = condition(pod, "Ready")
    return c is not None and c.get("status") == "True"


def ready_since(pod: Obj) -> float | None:
    c = condition(pod, "Ready")
    if c is None or c.get("status") != "True":
        return None
    return parse_time(c.get("lastTransitionTime")) or 0.0


def is_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    since = ready_since(pod)
    if since is None:
        return False
    return min_ready_seconds <= 0 or since + min_ready_seconds <= now


def seconds_until_available(pod: Obj, min_ready_seconds: int, now: float) -> float | None:
    """For a ready-but-not-yet-available pod, when to look again; None otherwise."""
    since = ready_since(pod)
    if since is None or min_ready_seconds <= 0 or since + min_ready_seconds <= now:
        return None
    return since + min_ready_seconds - now


def deletion_rank(pod: Obj) -> tuple[int, int, int, float, int, float]:
    """Sort key: pods earlier in the order are deleted first (unscheduled < pending < not ready <
    ready for a shorter time < more restarts < newer), as the ReplicaSet controller ranks them."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    phase_order = {"Pending": 0, "Unknown": 1, "Running": 2}.get(phase(pod), 0)
    since = ready_since(pod)
    restarts = sum(int(c.get("restartCount") or 0) for c in status.get("containerStatuses") or ())
    created = parse_time((pod.get("metadata") or {}).get("creationTimestamp")) or 0.0
    return (
        1 if spec.get("nodeName") else 0,
        phase_order,
        1 if since is not None else 0,
        -(since or 0.0),
        -restarts,
        -created,
    )


def pod_from_template(template: Obj, *, name: str, namespace: str, owner_ref: Obj) -> Obj:
    tmeta = template.get("metadata") or {}
    meta: Obj = {
        "name": name,
        "namespace": namespace,
        "labels": dict(tmeta.get("labels") or {}),
        "ownerReferences": [owner_ref],
    }
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": copy.deepcopy(template.get("spec") or {})}
