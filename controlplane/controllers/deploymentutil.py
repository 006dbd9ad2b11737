"""Pure Deployment arithmetic: template hashes, revisions, surge/unavailable bounds, the rolling
update steps and the status/conditions `kubectl rollout status` reads."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import orjson

from controlplane.controllers.timeutil import parse_time, rfc3339

Obj = dict[str, Any]

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
# Deployment annotations that are not copied onto its ReplicaSets (kubectl's rollback skips the same).
NOT_COPIED = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        "deployment.kubernetes.io/revision-history",
        DESIRED_REPLICAS,
        MAX_REPLICAS,
        "deprecated.deployment.rollback.to",
    }
)
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def _fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def template_hash(template: Obj, collision_count: int = 0) -> str:
    """Stable short hash of a pod template (the `pod-template-hash` label and the RS name suffix)."""
    data = orjson.dumps(strip_hash(template), option=orjson.OPT_SORT_KEYS)
    if collision_count:
        data += str(collision_count).encode()
    return "".join(_SAFE[int(ch) % len(_SAFE)] for ch in str(_fnv32a(data)).encode())


def _drop_nulls(value: Any) -> Any:
    """Nulls and absent fields mean the same in the API (kubectl sends `creationTimestamp: null`)."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def strip_hash(template: Obj) -> Obj:
    """The template as compared and hashed: without the hash label and without null fields."""
    out: Obj = _drop_nulls(copy.deepcopy(template))
    labels = (out.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(HASH_LABEL, None)
    return out


def same_template(a: Obj, b: Obj) -> bool:
    """Equal ignoring the hash label (what makes an RS the deployment's "new" one)."""
    return orjson.dumps(strip_hash(a), option=orjson.OPT_SORT_KEYS) == orjson.dumps(
        strip_hash(b), option=orjson.OPT_SORT_KEYS
    )


def revision(obj: Obj) -> int:
    try:
        return int(((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION, 0))
    except ValueError:
        return 0


def resolve_fenceposts(replicas: int, strategy: Obj) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as pod counts: percentages of replicas, surge rounded up and
    unavailable down; both zero would deadlock, so unavailable becomes 1."""
    ru = strategy.get("rollingUpdate") or {}

    def scaled(value: Any, default: str, round_up: bool) -> int:
        value = default if value is None else value
        if isinstance(value, str) and value.endswith("%"):
            exact = int(value[:-1]) * replicas / 100
            return math.ceil(exact) if round_up else math.floor(exact)
        return int(value)

    surge = scaled(ru.get("maxSurge"), "25%", True)
    unavailable = scaled(ru.get("maxUnavailable"), "25%", False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def spec_replicas(rs: Obj) -> int:
    return int((rs.get("spec") or {}).get("replicas", 0) or 0)


def st(rs: Obj, field: str) -> int:
    return int((rs.get("status") or {}).get(field, 0) or 0)


def new_rs_replicas(replicas: int, max_surge: int, new_rs: Obj, all_rs: list[Obj]) -> int:
    """Rolling update: how many replicas the new RS may have now (total ≤ replicas + maxSurge)."""
    current = spec_replicas(new_rs)
    if current >= replicas:
        return replicas
    total = sum(spec_replicas(rs) for rs in all_rs)
    room = replicas + max_surge - total
    if room <= 0:
        return current
    return current + min(room, replicas - current)


@dataclass(frozen=True)
class ScaleDown:
    name: str
    replicas: int


def old_rs_scale_down(replicas: int, max_unavailable: int, new_rs: Obj | None, old_rs: list[Obj]) -> list[ScaleDown]:
    """Rolling update: the old RSs' new sizes keeping at least replicas − maxUnavailable available.
    First drops old pods that are not available anyway, then available ones, oldest RS first."""
    all_rs = [*old_rs, *([new_rs] if new_rs else [])]
    all_pods = sum(spec_replicas(rs) for rs in all_rs)
    min_available = replicas - max_unavailable
    new_unavailable = (spec_replicas(new_rs) - st(new_rs, "availableReplicas")) if new_rs else 0
    sizes = {rs["metadata"]["name"]: spec_replicas(rs) for rs in old_rs}
    ordered = sorted(old_rs, key=lambda rs: (str(rs["metadata"].get("creationTimestamp") or ""), revision(rs)))
    budget = all_pods - min_available - max(new_unavailable, 0)
    for rs in ordered:
        if budget <= 0:
            break
        name = rs["metadata"]["name"]
        unhealthy = sizes[name] - st(rs, "availableReplicas")
        if unhealthy <= 0:
            continue
        cut = min(budget, unhealthy)
        sizes[name] -= cut
        budget -= cut
    available = sum(st(rs, "availableReplicas") for rs in all_rs)
    budget = available - min_available
    for rs in ordered:
        if budget <= 0:
            break
        name = rs["metadata"]["name"]
        cut = min(budget, sizes[name], st(rs, "availableReplicas"))
        if cut <= 0:
            continue
        sizes[name] -= cut
        budget -= cut
    before = {rs["metadata"]["name"]: spec_replicas(rs) for rs in old_rs}
    return [ScaleDown(n, s) for n, s in sizes.items() if s != before[n]]


def history_to_delete(old_rs: list[Obj], limit: int) -> list[Obj]:
    """Old, fully scaled-down RSs beyond revisionHistoryLimit, oldest revision first."""
    idle = [rs for rs in old_rs if spec_replicas(rs) == 0 and st(rs, "replicas") == 0]
    idle.sort(key=revision)
    excess = len(idle) - max(limit, 0)
    return idle[:excess] if excess > 0 else []


def make_condition(type_: str, status: str, reason: str, message: str, now: str) -> Obj:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
    }


def set_condition(conditions: list[Obj], cond: Obj) -> list[Obj]:
    """Replace the same-typed condition; keep lastTransitionTime when the status did not change, and
    lastUpdateTime too when nothing about it changed (so an idle reconcile writes nothing)."""
    out = []
    for c in conditions:
        if c.get("type") != cond["type"]:
            out.append(c)
            continue
        if c.get("status") == cond["status"]:
            cond = {**cond, "lastTransitionTime": c.get("lastTransitionTime", cond["lastTransitionTime"])}
            if c.get("reason") == cond["reason"] and c.get("message") == cond["message"]:
                cond = {**cond, "lastUpdateTime": c.get("lastUpdateTime", cond["lastUpdateTime"])}
    return [*out, cond]


def get_condition(status: Obj | None, type_: str) -> Obj | None:
    for c in (status or {}).get("conditions") or ():
        if c.get("type") == type_:
            return dict(c)
    return None


def rollout_complete(replicas: int, status: Obj) -> bool:
    return bool(
        status.get("updatedReplicas", 0) == replicas
        and status.get("replicas", 0) == replicas
        and status.get("availableReplicas", 0) == replicas
    )


def _progressed(prev: Obj, cur: Obj) -> bool:
    def old_pods(s: Obj) -> int:
        return int(s.get("replicas", 0) or 0) - int(s.get("updatedReplicas", 0) or 0)

    return (
        cur.get("updatedReplicas", 0) > prev.get("updatedReplicas", 0)
        or cur.get("readyReplicas", 0) > prev.get("readyReplicas", 0)
        or cur.get("availableReplicas", 0) > prev.get("availableReplicas", 0)
        or old_pods(cur) < old_pods(prev)
    )


def compute_status(
    deployment: Obj,
    new_rs: Obj | None,
    all_rs: list[Obj],
    *,
    max_unavailable: int,
    now: float,
    created_new: bool = False,
) -> Obj:
    """The Deployment's next status: counts summed over its ReplicaSets plus the `Available` and
    `Progressing` conditions (including the progress deadline)."""
    spec = deployment.get("spec") or {}
    prev = deployment.get("status") or {}
    replicas = int(spec.get("replicas", 1))
    available = sum(st(rs, "availableReplicas") for rs in all_rs)
    status: Obj = {
        "observedGeneration": int((deployment.get("metadata") or {}).get("generation") or 1),
        "replicas": sum(st(rs, "replicas") for rs in all_rs),
        "updatedReplicas": st(new_rs, "replicas") if new_rs else 0,
        "readyReplicas": sum(st(rs, "readyReplicas") for rs in all_rs),
        "availableReplicas": available,
        "unavailableReplicas": max(sum(spec_replicas(rs) for rs in all_rs) - available, 0),
    }
    if prev.get("collisionCount") is not None:
        status["collisionCount"] = prev["collisionCount"]
    stamp = rfc3339(now)
    conds = list(prev.get("conditions") or [])
    if available >= replicas - max_unavailable:
        conds = set_condition(
            conds,
            make_condition(
                "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.", stamp
            ),
        )
    else:
        conds = set_condition(
            conds,
            make_condition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                stamp,
            ),
        )
    rs_name = new_rs["metadata"]["name"] if new_rs else ""
    prog = get_condition(prev, "Progressing")
    deadline = spec.get("progressDeadlineSeconds")
    old_active = any(spec_replicas(rs) or st(rs, "replicas") for rs in all_rs if rs is not new_rs)
    new_cond: Obj | None = None
    if spec.get("paused"):
        new_cond = make_condition("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", stamp)
    elif new_rs is not None and not old_active and rollout_complete(replicas, status):
        new_cond = make_condition(
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            f'ReplicaSet "{rs_name}" has successfully progressed.',
            stamp,
        )
    elif created_new:
        new_cond = make_condition(
            "Progressing", "True", "NewReplicaSetCreated", f'Created new replica set "{rs_name}"', stamp
        )
    elif prog is None or prog.get("reason") == "DeploymentPaused" or _progressed(prev, status):
        new_cond = make_condition(
            "Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.', stamp
        )
    elif (
        deadline is not None
        and prog.get("reason") not in ("NewReplicaSetAvailable", "ProgressDeadlineExceeded")
        and (parse_time(prog.get("lastUpdateTime")) or now) + float(deadline) <= now
    ):
        new_cond = make_condition(
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            f'ReplicaSet "{rs_name}" has timed out progressing.',
            stamp,
        )
    if new_cond is not None:
        touch = new_cond["reason"] == "ReplicaSetUpdated" and prog is not None and _progressed(prev, status)
        conds = set_condition(conds, new_cond)
        if touch:
            conds = [{**c, "lastUpdateTime": stamp} if c.get("type") == "Progressing" else c for c in conds]
    status["conditions"] = conds
    return status


def deadline_in(deployment: Obj, status: Obj, now: float) -> float | None:
    """Seconds until the progress deadline would pass (to re-check then), if it is running."""
    deadline = (deployment.get("spec") or {}).get("progressDeadlineSeconds")
    prog = get_condition(status, "Progressing")
    if (
        deadline is None
        or prog is None
        or prog.get("status") != "True"
        or prog.get("reason") == "NewReplicaSetAvailable"
    ):
        return None
    start = parse_time(prog.get("lastUpdateTime")) or now
    return max(start + float(deadline) - now, 0.0) + 0.5
