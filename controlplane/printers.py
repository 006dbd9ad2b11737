"""Server-side printing: `meta.k8s.io/v1` Table responses for `kubectl get`.

kubectl asks for `application/json;as=Table;v=v1;g=meta.k8s.io` and prints the cells as they come, so
the columns here are what users of `kubectl get` expect (the column sets of Kubernetes' internal
printers). Columns with priority 1 are shown by kubectl only with `-o wide`; kubectl filters them
itself, which is why `wide` defaults to True (the server cannot tell a wide request from a plain one).
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from controlplane.resources import Resource
from controlplane.validation.shapes import as_dict, as_list, dict_items

__all__ = ["Column", "human_duration", "to_table"]

Obj = dict[str, Any]
Cell = str | int | float | bool | None
NONE = "<none>"


@dataclass(frozen=True)
class Column:
    name: str
    type: str = "string"
    priority: int = 0
    format: str = ""
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


def _parse_time(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return _parse_timestamp(value)


@functools.lru_cache(maxsize=8192)
def _parse_timestamp(value: str) -> datetime.datetime | None:
    """Cached: objects listed together share creation seconds, and parsing dominated large tables."""
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def human_duration(seconds: float) -> str:
    """apimachinery's HumanDuration: "45s", "5m30s", "3h", "2d5h", "1y30d"."""
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    total = int(seconds)
    if total < 120:
        return f"{total}s"
    minutes = total // 60
    if minutes < 10:
        sec = total % 60
        return f"{minutes}m" if sec == 0 else f"{minutes}m{sec}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


class _Ctx:
    def __init__(self, now: datetime.datetime) -> None:
        self.now = now

    def since(self, value: Any) -> str:
        when = _parse_time(value)
        if when is None:
            return "<unknown>"
        return human_duration((self.now - when).total_seconds())


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _spec(obj: Obj) -> Obj:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _status(obj: Obj) -> Obj:
    status = obj.get("status")
    return status if isinstance(status, dict) else {}


def _age(obj: Obj, ctx: _Ctx) -> str:
    return ctx.since(_meta(obj).get("creationTimestamp"))


def _selector_text(selector: Any) -> str:
    """metav1.LabelSelector or a plain map, as `kubectl get -o wide` prints selectors."""
    if not isinstance(selector, dict) or not selector:
        return NONE
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        return ",".join(f"{k}={v}" for k, v in selector.items())
    parts = [f"{k}={v}" for k, v in as_dict(selector.get("matchLabels")).items()]
    for expr in dict_items(selector.get("matchExpressions")):
        op, key, values = expr.get("operator"), expr.get("key"), ",".join(str(v) for v in as_list(expr.get("values")))
        if op == "In":
            parts.append(f"{key} in ({values})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts) or NONE


def _containers_images(template_spec: Obj) -> list[Cell]:
    containers = [c for c in dict_items(template_spec.get("containers")) if isinstance(c, dict)]
    return [",".join(str(c.get("name", "")) for c in containers), ",".join(str(c.get("image", "")) for c in containers)]


def _template_spec(spec: Obj) -> Obj:
    return _spec(as_dict(spec.get("template")))


# --- pods ---------------------------------------------------------------------------------------


def _pod_row(pod: Obj, ctx: _Ctx) -> list[Cell]:
    spec, status, meta = _spec(pod), _status(pod), _meta(pod)
    restarts = 0
    last_restart: datetime.datetime | None = None
    ready = 0
    reason = status.get("reason") or status.get("phase") or ""

    def note_restart(cs: Obj) -> None:
        nonlocal restarts, last_restart
        count = cs.get("restartCount")
        restarts += count if isinstance(count, int) else 0
        finished = _parse_time(as_dict(as_dict(cs.get("lastState")).get("terminated")).get("finishedAt"))
        if finished is not None and (last_restart is None or finished > last_restart):
            last_restart = finished

    initializing = False
    init_specs = as_list(spec.get("initContainers"))
    for i, cs in enumerate(dict_items(status.get("initContainerStatuses"))):
        note_restart(cs)
        state = as_dict(cs.get("state"))
        terminated, waiting = _opt_dict(state.get("terminated")), _opt_dict(state.get("waiting"))
        if terminated is not None and terminated.get("exitCode") == 0:
            continue
        if terminated is not None:
            if terminated.get("reason"):
                reason = f"Init:{terminated['reason']}"
            elif terminated.get("signal"):
                reason = f"Init:Signal:{terminated['signal']}"
            else:
                reason = f"Init:ExitCode:{terminated.get('exitCode')}"
        elif waiting is not None and waiting.get("reason") and waiting.get("reason") != "PodInitializing":
            reason = f"Init:{waiting['reason']}"
        elif cs.get("started") and as_dict(cs.get("state")).get("running") is not None and _is_sidecar(init_specs, i):
            continue
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing:
        restarts = 0  # like kubectl: once running, only app containers' restarts count
        has_running = False
        for cs in reversed(dict_items(status.get("containerStatuses"))):
            note_restart(cs)
            state = as_dict(cs.get("state"))
            waiting, terminated = _opt_dict(state.get("waiting")), _opt_dict(state.get("terminated"))
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated is not None:
                reason = (
                    f"Signal:{terminated['signal']}"
                    if terminated.get("signal")
                    else f"ExitCode:{terminated.get('exitCode')}"
                )
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            ready_cond = any(
                c.get("type") == "Ready" and c.get("status") == "True" for c in dict_items(status.get("conditions"))
            )
            reason = "Running" if ready_cond else "NotReady"

    if meta.get("deletionTimestamp"):
        reason = "Unknown" if status.get("reason") == "NodeLost" else "Terminating"

    restarts_text = str(restarts)
    if restarts and last_restart is not None:
        restarts_text = f"{restarts} ({ctx.since(last_restart.isoformat())} ago)"
    gates = dict_items(spec.get("readinessGates"))
    if gates:
        true_conditions = {
            str(c.get("type")) for c in dict_items(status.get("conditions")) if c.get("status") == "True"
        }
        gates_text = f"{sum(1 for g in gates if str(g.get('conditionType')) in true_conditions)}/{len(gates)}"
    else:
        gates_text = NONE
    return [
        meta.get("name", ""),
        f"{ready}/{len(dict_items(spec.get('containers')))}",
        reason,
        restarts_text,
        _age(pod, ctx),
        status.get("podIP") or NONE,
        spec.get("nodeName") or NONE,
        status.get("nominatedNodeName") or NONE,
        gates_text,
    ]


def _opt_dict(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _is_sidecar(init_specs: Sequence[Any], index: int) -> bool:
    return (
        index < len(init_specs)
        and isinstance(init_specs[index], dict)
        and (init_specs[index].get("restartPolicy") == "Always")
    )


# --- workloads ------------------------------------------------------------------------------------


def _deployment_row(obj: Obj, ctx: _Ctx) -> list[Cell]:
    spec, status = _spec(obj), _status(obj)
    return [
        _meta(obj).get("name", ""),
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        _age(obj, ctx),
        *_containers_images(_template_spec(spec)),
        _selector_text(spec.get("selector")),
    ]


def _replicaset_row(obj: Obj, ctx: _Ctx) -> list[Cell]:
    spec, status = _spec(obj), _status(obj)
    return [
        _meta(obj).get("name", ""),
        spec.get("replicas", 0),
        status.get("replicas", 0),
        status.get("readyReplicas", 0),
        _age(obj, ctx),
        *_containers_images(_template_spec(spec)),
        _selector_text(spec.get("selector")),
    ]


def _daemonset_row(obj: Obj, ctx: _Ctx) -> list[Cell]:
    spec, status = _spec(obj), _status(obj)
    node_selector = as_dict(_template_spec(spec).get("nodeSelector"))
    return [
        _meta(obj).get("name", ""),
        status.get("desiredNumberScheduled", 0),
        status.get("currentNumberScheduled", 0),
        status.get("numberReady", 0),
        status.get("updatedNumberScheduled", 0),
        status.get("numberAvailable", 0),
        ",".join(f"{k}={v}" for k, v in node_selector.items()) or NONE,
        _age(obj, ctx),
        *_containers_images(_template_spec(spec)),
        _selector_text(spec.get("selector")),
    ]


def _statefulset_row(obj: Obj, ctx: _Ctx) -> list[Cell]:
    spec, status = _spec(obj), _status(obj)
    return [
        _meta(obj).get("name", ""),
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
        _age(obj, ctx),
        *_containers_images(_template_spec(spec)),
    ]


def _job_status(status: Obj) -> str:
    conditions = {str(c.get("type")): c.get("status") for c in dict_items(status.get("conditions"))}
    for kind, text in (
        ("Complete", "Complete"),
        ("Failed", "Failed"),
        ("FailureTarget", "FailureTarget"),
        ("SuccessCriteriaMet", "SuccessCriteriaMet"),
        ("Suspended", "Suspended"),
    ):
        if conditions.get(kind) == "True":
            return text
    return "Running"


def _job_row(obj: Obj, ctx: _Ctx) -> list[Cell]:
    spec, status = _spec(obj), _status(obj)
    completions = spec.get("completions")
    succeeded = status.get("succeeded", 0)
    if completions is not None:
        completions_text = f"{succeeded}/{completions}"
    else:
        parallelism = spec.get("parallelism", 0)
        completions_text = f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"
    start, end = _parse_time(status.get("startTime")), _parse_time(status.get("completionTime"))
    duration = "" if start is None else human_duration(((end or ctx.now) - start).total_seconds())
    return [
        _meta(obj).get("name", ""),
        _job_status(status),
        completions_text,
        duration,
        _age(obj, ctx),
        *_containers_images(_template_spec(spec)),
        _selector_text(spec.get("selector")),
    ]


def _cronjob_row(obj: Obj, ctx: _Ctx) -> list[Cell]:
    spec, status = _spec(obj), _status(obj)
    job_spec = _spec(as_dict(spec.get("jobTemplate")))
    last = status.get("lastScheduleTime")
    return [
        _meta(obj).get("name", ""),
        spec.get("schedule", ""),
        spec.get("timeZone") or NONE,
        "True" if spec.get("suspend") else "False",
        len(dict_items(status.get("active"))),
        ctx.since(last) if last else NONE,
        _age(obj, ctx),
        *_containers_images(_template_spec(job_spec)),
        _selector_text(job_spec.get("selector")),
    ]


# --- services and networking ----------------------------------------------------------------------


def _service_row(obj: Obj, ctx: _Ctx) -> list[Cell]:
    spec, status = _spec(obj), _status(obj)
    kind = spec.get("type", "ClusterIP")
    external: list[str] = [str(ip) for ip in as_list(spec.get("externalIPs"))]
    if kind == "LoadBalancer":
        ingress = [
            i.get("ip") or i.get("hostname") for i in dict_items(as_dict(status.get("loadBalancer")).get("ingress"))
        ]
        external = [*(i for i in ingress if i), *external] or ["<pending>"]
    elif kind == "ExternalName":
        external = [spec.get("externalName", "")]
    ports = []
    for port in dict_items(spec.get("ports")):
        text = f"{port.get('port')}"
        if port.get("nodePort"):
            text += f":{port['nodePort']}"
        ports.append(f"{text}/{port.get('protocol', 'TCP')}")
    return [
        _meta(obj).get("name", ""),
        kind,
        spec.get("clusterIP") or NONE,
        ",".join(external) or NONE,
        ",".join(ports) or NONE,
        _age(obj, ctx),
        _selector_text(spec.get("selector")),
    ]


def _limited(items: list[str], limit: int = 3) -> str:
    if not items:
        return NONE
    if len(items) > limit:
        return ",".join(items[:limit]) + f" + {len(items) - limit} more..."
    return ",".join(items)


def _endpoints_row(obj: Obj, ctx: _Ctx) -> list[Cell]:
    items: list[str] = []
    for subset in dict_items(obj.get("subsets")):
        ports = [p.get("port") for p in dict_items(subset.get("ports"))] or [None]
        for address in dict_items(subset.get("addresses")):
            for port in ports:
                items.append(f"{address.get('ip')}:{port}" if port is not None else str(address.get("ip")))
    return [_meta(obj).get("name", ""), _limited(items), _age(obj, ctx)]


def _endpointslice_row(obj: Obj, ctx: _Ctx) -> list[Cell]:
    ports = [str(p.get("port")) if p.get("port") is not None else "<unset>" for p in dict_items(obj.get("ports"))]
    addresses = [str(a) for e in dict_items(obj.get("endpoints")) for a in as_list(e.get("addresses"))]
    return [
        _meta(obj).get("name", ""),
        obj.get("addressType", ""),
        _limited(ports) if ports else "<unset>",
        _limited(addresses),
        _age(obj, ctx),
    ]


def _networkpolicy_row(obj: Obj, ctx: _Ctx) -> list[Cell]:
    return [_meta(obj).get("name", ""), _selector_text(_spec(obj).get("podSelector")), _age(obj, ctx)]


# --- cluster ------------------------------------------------------------------------------------


def _node_row(obj: Obj, ctx: _Ctx) -> list[Cell]:
    spec, status, meta = _spec(obj), _status(obj), _meta(obj)
    ready = next((c for c in dict_items(status.get("conditions")) if c.get("type") == "Ready"), None)
    state = "Unknown"
    if ready is not None:
        state = {"True": "Ready", "False": "NotReady"}.get(str(ready.get("status")), "Unknown")
    if spec.get("unschedulable"):
        state += ",SchedulingDisabled"
    labels = as_dict(meta.get("labels"))
    roles = sorted(
        {k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/") and "/" in k}
        | ({str(labels["kubernetes.io/role"])} if labels.get("kubernetes.io/role") else set())
    )
    addresses = {str(a.get("type")): a.get("address") for a in dict_items(status.get("addresses"))}
    info = as_dict(status.get("nodeInfo"))
    return [
        meta.get("name", ""),
        state,
        ",".join(r for r in roles if r) or NONE,
        _age(obj, ctx),
        info.get("kubeletVersion", ""),
        addresses.get("InternalIP") or NONE,
        addresses.get("ExternalIP") or NONE,
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


def _namespace_row(obj: Obj, ctx: _Ctx) -> list[Cell]:
    return [_meta(obj).get("name", ""), _status(obj).get("phase", ""), _age(obj, ctx)]


def _event_row(obj: Obj, ctx: _Ctx) -> list[Cell]:
    involved = as_dict(obj.get("involvedObject") or obj.get("regarding"))
    series = as_dict(obj.get("series"))
    last = obj.get("lastTimestamp") or obj.get("deprecatedLastTimestamp") or series.get("lastObservedTime")
    last = last or obj.get("eventTime")
    first = obj.get("firstTimestamp") or obj.get("deprecatedFirstTimestamp") or obj.get("eventTime")
    source = as_dict(obj.get("source") or obj.get("deprecatedSource"))
    source_text = str(source.get("component", "")) + (f", {source['host']}" if source.get("host") else "")
    count = obj.get("count") or obj.get("deprecatedCount") or series.get("count") or 1
    return [
        ctx.since(last) if last else "<unknown>",
        obj.get("type", ""),
        obj.get("reason", ""),
        f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
        involved.get("fieldPath", ""),
        source_text or obj.get("reportingController", ""),
        obj.get("message") or obj.get("note") or "",
        ctx.since(first) if first else "<unknown>",
        count,
        _meta(obj).get("name", ""),
    ]


def _configmap_row(obj: Obj, ctx: _Ctx) -> list[Cell]:
    data = len(as_dict(obj.get("data"))) + len(as_dict(obj.get("binaryData")))
    return [_meta(obj).get("name", ""), data, _age(obj, ctx)]


def _secret_row(obj: Obj, ctx: _Ctx) -> list[Cell]:
    return [_meta(obj).get("name", ""), obj.get("type", ""), len(as_dict(obj.get("data"))), _age(obj, ctx)]


def _serviceaccount_row(obj: Obj, ctx: _Ctx) -> list[Cell]:
    return [_meta(obj).get("name", ""), len(dict_items(obj.get("secrets"))), _age(obj, ctx)]


def _lease_row(obj: Obj, ctx: _Ctx) -> list[Cell]:
    return [_meta(obj).get("name", ""), _spec(obj).get("holderIdentity") or "", _age(obj, ctx)]


def _quota_row(obj: Obj, ctx: _Ctx) -> list[Cell]:
    hard, used = as_dict(_spec(obj).get("hard")), as_dict(_status(obj).get("used"))
    requests: list[str] = []
    limits: list[str] = []
    for key in sorted(hard):
        text = f"{key}: {used.get(key, '0')}/{hard[key]}"
        (limits if key.startswith("limits.") else requests).append(text)
    return [_meta(obj).get("name", ""), _age(obj, ctx), ", ".join(requests), ", ".join(limits)]


def _created_at_row(obj: Obj, ctx: _Ctx) -> list[Cell]:
    return [_meta(obj).get("name", ""), _meta(obj).get("creationTimestamp", "")]


def _binding_row(obj: Obj, ctx: _Ctx) -> list[Cell]:
    ref = as_dict(obj.get("roleRef"))
    subjects = dict_items(obj.get("subjects"))

    def names(kind: str) -> str:
        found = [
            (f"{s.get('namespace', '')}/{s.get('name')}" if kind == "ServiceAccount" else str(s.get("name")))
            for s in subjects
            if s.get("kind") == kind
        ]
        return ", ".join(found)

    return [
        _meta(obj).get("name", ""),
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        _age(obj, ctx),
        names("User"),
        names("Group"),
        names("ServiceAccount"),
    ]


def _pv_row(obj: Obj, ctx: _Ctx) -> list[Cell]:
    spec, status = _spec(obj), _status(obj)
    claim = as_dict(spec.get("claimRef"))
    return [
        _meta(obj).get("name", ""),
        as_dict(spec.get("capacity")).get("storage", ""),
        _access_modes(spec.get("accessModes")),
        spec.get("persistentVolumeReclaimPolicy", ""),
        status.get("phase", ""),
        f"{claim.get('namespace')}/{claim.get('name')}" if claim else "",
        spec.get("storageClassName", ""),
        spec.get("volumeAttributesClassName") or NONE,
        status.get("reason", ""),
        _age(obj, ctx),
        spec.get("volumeMode", "Filesystem"),
    ]


def _access_modes(modes: Any) -> str:
    short = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}
    return ",".join(short.get(str(m), str(m)) for m in as_list(modes))


def _pvc_row(obj: Obj, ctx: _Ctx) -> list[Cell]:
    spec, status = _spec(obj), _status(obj)
    return [
        _meta(obj).get("name", ""),
        status.get("phase", ""),
        spec.get("volumeName", ""),
        as_dict(status.get("capacity")).get("storage", ""),
        _access_modes(status.get("accessModes")),
        spec.get("storageClassName", ""),
        spec.get("volumeAttributesClassName") or NONE,
        _age(obj, ctx),
        spec.get("volumeMode", "Filesystem"),
    ]


def _hpa_row(obj: Obj, ctx: _Ctx) -> list[Cell]:
    spec, status = _spec(obj), _status(obj)
    ref = as_dict(spec.get("scaleTargetRef"))
    targets = []
    current = {
        str(as_dict(m.get("resource")).get("name")): as_dict(as_dict(m.get("resource")).get("current"))
        for m in dict_items(status.get("currentMetrics"))
        if m.get("type") == "Resource"
    }
    for metric in dict_items(spec.get("metrics")):
        if metric.get("type") != "Resource":
            continue
        resource = as_dict(metric.get("resource"))
        target = as_dict(resource.get("target"))
        now = current.get(str(resource.get("name")), {})
        if target.get("averageUtilization") is not None:
            value = now.get("averageUtilization")
            shown = f"{value}%" if value is not None else "<unknown>"
            targets.append(f"{resource.get('name')}: {shown}/{target['averageUtilization']}%")
        else:
            value = now.get("averageValue")
            targets.append(f"{resource.get('name')}: {value or '<unknown>'}/{target.get('averageValue')}")
    return [
        _meta(obj).get("name", ""),
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        ", ".join(targets) or NONE,
        spec.get("minReplicas", 1),
        spec.get("maxReplicas", 0),
        status.get("currentReplicas", 0),
        _age(obj, ctx),
    ]


def _revision_row(obj: Obj, ctx: _Ctx) -> list[Cell]:
    owner = next((o for o in dict_items(_meta(obj).get("ownerReferences")) if o.get("controller")), None)
    controller = NONE
    if owner is not None:
        group = str(owner.get("apiVersion", "")).split("/")[0] if "/" in str(owner.get("apiVersion", "")) else ""
        kind = str(owner.get("kind", "")).lower()
        controller = f"{kind}.{group}/{owner.get('name')}" if group else f"{kind}/{owner.get('name')}"
    return [_meta(obj).get("name", ""), controller, obj.get("revision", 0), _age(obj, ctx)]


def _default_row(obj: Obj, ctx: _Ctx) -> list[Cell]:
    return [_meta(obj).get("name", ""), _age(obj, ctx)]


_NAME = Column("Name", format="name", description="Name must be unique within a namespace.")
_AGE = Column(
    "Age", description="CreationTimestamp is a timestamp representing the server time when this object was created."
)
_CONTAINERS = Column("Containers", priority=1, description="Names of each container in the template.")
_IMAGES = Column("Images", priority=1, description="Images referenced by each container in the template.")
_SELECTOR = Column("Selector", priority=1, description="Label selector for pods.")
_CREATED_AT = Column("Created At", type="date")

Printer = tuple[tuple[Column, ...], Callable[[Obj, _Ctx], list[Cell]]]

# RoleBindings and ClusterRoleBindings print alike (kubectl's columns for both).
_BINDING_PRINTER = (
    (
        _NAME,
        Column("Role"),
        _AGE,
        Column("Users", priority=1),
        Column("Groups", priority=1),
        Column("ServiceAccounts", priority=1),
    ),
    _binding_row,
)

_PRINTERS: dict[str, Printer] = {
    "Pod": (
        (
            _NAME,
            Column("Ready"),
            Column("Status"),
            Column("Restarts"),
            _AGE,
            Column("IP", priority=1),
            Column("Node", priority=1),
            Column("Nominated Node", priority=1),
            Column("Readiness Gates", priority=1),
        ),
        _pod_row,
    ),
    "Deployment": (
        (
            _NAME,
            Column("Ready"),
            Column("Up-to-date", "integer"),
            Column("Available", "integer"),
            _AGE,
            _CONTAINERS,
            _IMAGES,
            _SELECTOR,
        ),
        _deployment_row,
    ),
    "ReplicaSet": (
        (
            _NAME,
            Column("Desired", "integer"),
            Column("Current", "integer"),
            Column("Ready", "integer"),
            _AGE,
            _CONTAINERS,
            _IMAGES,
            _SELECTOR,
        ),
        _replicaset_row,
    ),
    "ReplicationController": (
        (
            _NAME,
            Column("Desired", "integer"),
            Column("Current", "integer"),
            Column("Ready", "integer"),
            _AGE,
            _CONTAINERS,
            _IMAGES,
            _SELECTOR,
        ),
        _replicaset_row,
    ),
    "DaemonSet": (
        (
            _NAME,
            Column("Desired", "integer"),
            Column("Current", "integer"),
            Column("Ready", "integer"),
            Column("Up-to-date", "integer"),
            Column("Available", "integer"),
            Column("Node Selector"),
            _AGE,
            _CONTAINERS,
            _IMAGES,
            _SELECTOR,
        ),
        _daemonset_row,
    ),
    "StatefulSet": ((_NAME, Column("Ready"), _AGE, _CONTAINERS, _IMAGES), _statefulset_row),
    "Job": (
        (_NAME, Column("Status"), Column("Completions"), Column("Duration"), _AGE, _CONTAINERS, _IMAGES, _SELECTOR),
        _job_row,
    ),
    "CronJob": (
        (
            _NAME,
            Column("Schedule"),
            Column("Timezone"),
            Column("Suspend", "boolean"),
            Column("Active", "integer"),
            Column("Last Schedule"),
            _AGE,
            _CONTAINERS,
            _IMAGES,
            _SELECTOR,
        ),
        _cronjob_row,
    ),
    "Service": (
        (
            _NAME,
            Column("Type"),
            Column("Cluster-IP"),
            Column("External-IP"),
            Column("Port(s)"),
            _AGE,
            Column("Selector", priority=1),
        ),
        _service_row,
    ),
    "Endpoints": ((_NAME, Column("Endpoints"), _AGE), _endpoints_row),
    "EndpointSlice": ((_NAME, Column("AddressType"), Column("Ports"), Column("Endpoints"), _AGE), _endpointslice_row),
    "NetworkPolicy": ((_NAME, Column("Pod-Selector"), _AGE), _networkpolicy_row),
    "Node": (
        (
            _NAME,
            Column("Status"),
            Column("Roles"),
            _AGE,
            Column("Version"),
            Column("Internal-IP", priority=1),
            Column("External-IP", priority=1),
            Column("OS-Image", priority=1),
            Column("Kernel-Version", priority=1),
            Column("Container-Runtime", priority=1),
        ),
        _node_row,
    ),
    "Namespace": ((_NAME, Column("Status"), _AGE), _namespace_row),
    "Event": (
        (
            Column("Last Seen"),
            Column("Type"),
            Column("Reason"),
            Column("Object"),
            Column("Subobject", priority=1),
            Column("Source", priority=1),
            Column("Message"),
            Column("First Seen", priority=1),
            Column("Count", "integer", priority=1),
            Column("Name", priority=1),
        ),
        _event_row,
    ),
    "ConfigMap": ((_NAME, Column("Data", "integer"), _AGE), _configmap_row),
    "Secret": ((_NAME, Column("Type"), Column("Data", "integer"), _AGE), _secret_row),
    "ServiceAccount": ((_NAME, Column("Secrets", "integer"), _AGE), _serviceaccount_row),
    "Lease": ((_NAME, Column("Holder"), _AGE), _lease_row),
    "ResourceQuota": ((_NAME, _AGE, Column("Request"), Column("Limit")), _quota_row),
    "LimitRange": ((_NAME, _CREATED_AT), _created_at_row),
    "Role": ((_NAME, _CREATED_AT), _created_at_row),
    "ClusterRole": ((_NAME, _CREATED_AT), _created_at_row),
    "RoleBinding": _BINDING_PRINTER,
    "ClusterRoleBinding": _BINDING_PRINTER,
    "PersistentVolume": (
        (
            _NAME,
            Column("Capacity"),
            Column("Access Modes"),
            Column("Reclaim Policy"),
            Column("Status"),
            Column("Claim"),
            Column("StorageClass"),
            Column("VolumeAttributesClass"),
            Column("Reason"),
            _AGE,
            Column("VolumeMode", priority=1),
        ),
        _pv_row,
    ),
    "PersistentVolumeClaim": (
        (
            _NAME,
            Column("Status"),
            Column("Volume"),
            Column("Capacity"),
            Column("Access Modes"),
            Column("StorageClass"),
            Column("VolumeAttributesClass"),
            _AGE,
            Column("VolumeMode", priority=1),
        ),
        _pvc_row,
    ),
    "HorizontalPodAutoscaler": (
        (
            _NAME,
            Column("Reference"),
            Column("Targets"),
            Column("MinPods", "integer"),
            Column("MaxPods", "integer"),
            Column("Replicas", "integer"),
            _AGE,
        ),
        _hpa_row,
    ),
    "ControllerRevision": ((_NAME, Column("Controller"), Column("Revision", "integer"), _AGE), _revision_row),
}


def _partial_metadata(obj: Obj) -> Obj:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": _meta(obj)}


def to_table(
    resource: Resource,
    objects: Iterable[Obj],
    *,
    wide: bool = True,
    include_object: str = "Metadata",
    resource_version: str = "",
    continue_token: str = "",
    now: datetime.datetime | None = None,
) -> dict[str, Any]:
    """A Table of `objects` (all of `resource`'s kind). `include_object` is the request's
    `includeObject` parameter: None, Object or Metadata (kubectl's default)."""
    columns, row_fn = _PRINTERS.get(resource.kind, ((_NAME, _AGE), _default_row))
    keep = [i for i, col in enumerate(columns) if wide or col.priority == 0]
    ctx = _Ctx(now or datetime.datetime.now(datetime.UTC))
    rows = []
    for obj in objects:
        cells = row_fn(obj, ctx)
        row: dict[str, Any] = {"cells": [cells[i] for i in keep]}
        if include_object == "Object":
            row["object"] = obj
        elif include_object == "Metadata":
            row["object"] = _partial_metadata(obj)
        rows.append(row)
    metadata: dict[str, Any] = {}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    if continue_token:
        metadata["continue"] = continue_token
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": [columns[i].to_json() for i in keep],
        "rows": rows,
    }
