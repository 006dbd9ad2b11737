"""`validate(resource, obj, old)`: the field errors of an object about to be stored.

Metadata rules apply to every kind; per-kind functions check what makes the object unusable or unsafe
(a controller whose selector misses its own template, a port out of range) and the fields Kubernetes
makes immutable on update. Call after `apply_defaults`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from controlplane.resources import Resource
from controlplane.validation.errors import (
    FieldError,
    duplicate,
    forbidden,
    invalid,
    not_supported,
    required,
    too_long,
)
from controlplane.validation.names import (
    NameCheck,
    dns1035_label,
    dns1123_label,
    dns1123_subdomain,
    path_segment_name,
    validate_label_selector,
    validate_labels,
    validate_object_meta,
    validate_selector_matches,
)
from controlplane.validation.pods import (
    PROTOCOLS,
    TAINT_EFFECTS,
    is_int,
    validate_pod_spec,
    validate_pod_update,
    validate_port_name,
    validate_resources,
)
from controlplane.validation.quantity import QuantityError, parse_quantity
from controlplane.validation.shapes import as_dict, as_list, dict_items

__all__ = ["validate"]

Obj = dict[str, Any]
_IMMUTABLE = "field is immutable"
_DATA_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_DATA_MAX = 1024 * 1024


def _non_negative(obj: Obj, key: str, path: str) -> list[FieldError]:
    value = obj.get(key)
    if value is not None and (not is_int(value) or value < 0):
        return [invalid(f"{path}.{key}", value, "must be greater than or equal to 0")]
    return []


def _immutable(new: Any, old: Any, path: str) -> list[FieldError]:
    return [] if new == old else [invalid(path, new, _IMMUTABLE)]


def _int_or_percent(value: Any, path: str) -> list[FieldError]:
    if is_int(value):
        return [] if value >= 0 else [invalid(path, value, "must be greater than or equal to 0")]
    if isinstance(value, str) and re.fullmatch(r"\d+%", value):
        return [] if int(value[:-1]) <= 100 else [invalid(path, value, "must not be greater than 100%")]
    return [invalid(path, value, "a valid percent string must be a numeric string followed by an ending '%'")]


def _template(spec: Obj, path: str, *, restart_policies: tuple[str, ...] | None = None) -> list[FieldError]:
    template = spec.get("template")
    if not isinstance(template, dict):
        return [required(f"{path}.template")]
    errs = validate_labels(as_dict(template.get("metadata")).get("labels"), f"{path}.template.metadata.labels")
    kwargs = {"restart_policies": restart_policies} if restart_policies else {}
    errs.extend(validate_pod_spec(template.get("spec"), f"{path}.template.spec", **kwargs))
    return errs


def _selector_and_template(spec: Obj, path: str, *, restart: tuple[str, ...] | None = None) -> list[FieldError]:
    errs: list[FieldError] = []
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        errs.append(required(f"{path}.selector"))
    else:
        errs.extend(validate_label_selector(selector, f"{path}.selector"))
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            errs.append(invalid(f"{path}.selector", selector, "empty selector is invalid for deployment"))
        template = spec.get("template")
        if isinstance(template, dict):
            labels = as_dict(template.get("metadata")).get("labels")
            errs.extend(validate_selector_matches(selector, labels, f"{path}.template.metadata.labels"))
    errs.extend(_template(spec, path, restart_policies=restart))
    return errs


def _pod(obj: Obj, old: Obj | None) -> list[FieldError]:
    errs = validate_pod_spec(obj.get("spec"), "spec")
    if old is not None:
        errs.extend(validate_pod_update(obj, old))
    return errs


def _deployment(obj: Obj, old: Obj | None) -> list[FieldError]:
    spec = as_dict(obj.get("spec"))
    errs = _non_negative(spec, "replicas", "spec")
    errs.extend(_selector_and_template(spec, "spec", restart=("Always",)))
    for key in ("revisionHistoryLimit", "minReadySeconds", "progressDeadlineSeconds"):
        errs.extend(_non_negative(spec, key, "spec"))
    strategy = as_dict(spec.get("strategy"))
    kind = strategy.get("type")
    if kind not in ("RollingUpdate", "Recreate"):
        errs.append(not_supported("spec.strategy.type", kind, ("Recreate", "RollingUpdate")))
    elif kind == "Recreate" and strategy.get("rollingUpdate"):
        errs.append(forbidden("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"))
    elif kind == "RollingUpdate":
        rolling = as_dict(strategy.get("rollingUpdate"))
        surge, unavailable = rolling.get("maxSurge", "25%"), rolling.get("maxUnavailable", "25%")
        errs.extend(_int_or_percent(surge, "spec.strategy.rollingUpdate.maxSurge"))
        errs.extend(_int_or_percent(unavailable, "spec.strategy.rollingUpdate.maxUnavailable"))
        if str(surge) in ("0", "0%") and str(unavailable) in ("0", "0%"):
            errs.append(
                invalid("spec.strategy.rollingUpdate.maxUnavailable", unavailable, "may not be 0 when `maxSurge` is 0")
            )
    if old is not None:
        errs.extend(_immutable(spec.get("selector"), as_dict(old.get("spec")).get("selector"), "spec.selector"))
    return errs


def _replicaset(obj: Obj, old: Obj | None) -> list[FieldError]:
    spec = as_dict(obj.get("spec"))
    errs = _non_negative(spec, "replicas", "spec")
    errs.extend(_non_negative(spec, "minReadySeconds", "spec"))
    errs.extend(_selector_and_template(spec, "spec", restart=("Always",)))
    if old is not None:
        errs.extend(_immutable(spec.get("selector"), as_dict(old.get("spec")).get("selector"), "spec.selector"))
    return errs


def _replication_controller(obj: Obj, old: Obj | None) -> list[FieldError]:
    spec = as_dict(obj.get("spec"))
    errs = _non_negative(spec, "replicas", "spec")
    selector = spec.get("selector")
    if not selector:
        errs.append(required("spec.selector"))
    else:
        errs.extend(validate_labels(selector, "spec.selector"))
        errs.extend(
            validate_selector_matches(
                {"matchLabels": selector},
                as_dict(as_dict(spec.get("template")).get("metadata")).get("labels"),
                "spec.template.metadata.labels",
            )
        )
    errs.extend(_template(spec, "spec", restart_policies=("Always",)))
    return errs


def _daemonset(obj: Obj, old: Obj | None) -> list[FieldError]:
    spec = as_dict(obj.get("spec"))
    errs = _selector_and_template(spec, "spec", restart=("Always",))
    kind = as_dict(spec.get("updateStrategy")).get("type")
    if kind not in ("RollingUpdate", "OnDelete"):
        errs.append(not_supported("spec.updateStrategy.type", kind, ("OnDelete", "RollingUpdate")))
    if old is not None:
        errs.extend(_immutable(spec.get("selector"), as_dict(old.get("spec")).get("selector"), "spec.selector"))
    return errs


_STS_MUTABLE = (
    "replicas",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
    "ordinals",
    "revisionHistoryLimit",
)


def _statefulset(obj: Obj, old: Obj | None) -> list[FieldError]:
    spec = as_dict(obj.get("spec"))
    errs = _non_negative(spec, "replicas", "spec")
    errs.extend(_selector_and_template(spec, "spec", restart=("Always",)))
    policy = spec.get("podManagementPolicy")
    if policy not in ("OrderedReady", "Parallel"):
        errs.append(not_supported("spec.podManagementPolicy", policy, ("OrderedReady", "Parallel")))
    if old is not None:
        old_spec = as_dict(old.get("spec"))
        new_rest = {k: v for k, v in spec.items() if k not in _STS_MUTABLE}
        old_rest = {k: v for k, v in old_spec.items() if k not in _STS_MUTABLE}
        if new_rest != old_rest:
            errs.append(
                forbidden(
                    "spec",
                    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
                    "'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and "
                    "'minReadySeconds' are forbidden",
                )
            )
    return errs


def _job_spec(spec: Obj, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for key in ("parallelism", "completions", "backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished"):
        errs.extend(_non_negative(spec, key, path))
    if spec.get("selector") is not None:
        errs.extend(validate_label_selector(spec["selector"], f"{path}.selector"))
    errs.extend(_template(spec, path, restart_policies=("OnFailure", "Never")))
    return errs


def _job(obj: Obj, old: Obj | None) -> list[FieldError]:
    spec = as_dict(obj.get("spec"))
    errs = _job_spec(spec, "spec")
    if old is not None:
        old_spec = as_dict(old.get("spec"))
        errs.extend(_immutable(spec.get("selector"), old_spec.get("selector"), "spec.selector"))
        errs.extend(_immutable(spec.get("completions"), old_spec.get("completions"), "spec.completions"))
        errs.extend(_immutable(spec.get("template"), old_spec.get("template"), "spec.template"))
    return errs


def _cron_field_ok(field: str) -> bool:
    return bool(
        re.fullmatch(r"(\*|\?|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/\d+)?(,(\*|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/\d+)?)*", field)
    )


def _cronjob(obj: Obj, old: Obj | None) -> list[FieldError]:
    spec = as_dict(obj.get("spec"))
    errs: list[FieldError] = []
    schedule = spec.get("schedule")
    if not schedule:
        errs.append(required("spec.schedule"))
    elif not str(schedule).startswith("@"):
        fields = str(schedule).split()
        if fields and fields[0].startswith(("TZ=", "CRON_TZ=")):
            errs.append(invalid("spec.schedule", schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field"))
        elif len(fields) != 5 or not all(_cron_field_ok(f) for f in fields):
            errs.append(
                invalid("spec.schedule", schedule, f"expected exactly 5 fields, found {len(fields)}: {schedule}")
            )
    policy = spec.get("concurrencyPolicy")
    if policy not in ("Allow", "Forbid", "Replace"):
        errs.append(not_supported("spec.concurrencyPolicy", policy, ("Allow", "Forbid", "Replace")))
    for key in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit", "startingDeadlineSeconds"):
        errs.extend(_non_negative(spec, key, "spec"))
    job_template = spec.get("jobTemplate")
    if not isinstance(job_template, dict):
        errs.append(required("spec.jobTemplate"))
    else:
        errs.extend(_job_spec(as_dict(job_template.get("spec")), "spec.jobTemplate.spec"))
    return errs


_SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")


def _service(obj: Obj, old: Obj | None) -> list[FieldError]:
    spec = as_dict(obj.get("spec"))
    errs: list[FieldError] = []
    kind = spec.get("type", "ClusterIP")
    if kind not in _SERVICE_TYPES:
        errs.append(not_supported("spec.type", kind, _SERVICE_TYPES))
    ports = as_list(spec.get("ports"))
    if kind == "ExternalName":
        name = spec.get("externalName")
        if not name:
            errs.append(required("spec.externalName"))
        else:
            errs.extend(invalid("spec.externalName", name, m) for m in dns1123_subdomain(str(name).rstrip(".")))
    elif not ports and spec.get("clusterIP") != "None":
        errs.append(required("spec.ports"))
    names: set[str] = set()
    seen: set[tuple[str, str]] = set()
    for i, port in enumerate(ports):
        at = f"spec.ports[{i}]"
        if not isinstance(port, dict):
            errs.append(invalid(at, port, "must be an object"))
            continue
        name = port.get("name")
        if len(ports) > 1 and not name:
            errs.append(required(f"{at}.name"))
        elif name:
            errs.extend(invalid(f"{at}.name", name, m) for m in dns1123_label(str(name)))
            if str(name) in names:
                errs.append(duplicate(f"{at}.name", name))
            names.add(str(name))
        number = port.get("port")
        if number is None:
            errs.append(required(f"{at}.port"))
        elif not is_int(number) or not 1 <= number <= 65535:
            errs.append(invalid(f"{at}.port", number, "must be between 1 and 65535, inclusive"))
        protocol = port.get("protocol", "TCP")
        if protocol not in PROTOCOLS:
            errs.append(not_supported(f"{at}.protocol", protocol, PROTOCOLS))
        if (repr(number), repr(protocol)) in seen:
            errs.append(duplicate(at, {"port": number, "protocol": protocol}))
        seen.add((repr(number), repr(protocol)))
        target = port.get("targetPort")
        if is_int(target):
            if not 1 <= target <= 65535:
                errs.append(invalid(f"{at}.targetPort", target, "must be between 1 and 65535, inclusive"))
        elif isinstance(target, str):
            errs.extend(validate_port_name(target, f"{at}.targetPort"))
        elif target is not None:
            errs.append(invalid(f"{at}.targetPort", target, "must be an integer or a port name"))
        node_port = port.get("nodePort")
        if node_port is not None and node_port != 0:
            if kind not in ("NodePort", "LoadBalancer"):
                errs.append(forbidden(f"{at}.nodePort", "may not be used when `type` is 'ClusterIP'"))
            elif not is_int(node_port) or not 1 <= node_port <= 65535:
                errs.append(invalid(f"{at}.nodePort", node_port, "must be between 1 and 65535, inclusive"))
    errs.extend(validate_labels(spec.get("selector"), "spec.selector"))
    affinity = spec.get("sessionAffinity", "None")
    if affinity not in ("None", "ClientIP"):
        errs.append(not_supported("spec.sessionAffinity", affinity, ("ClientIP", "None")))
    for key in ("externalTrafficPolicy", "internalTrafficPolicy"):
        value = spec.get(key)
        if value is not None and value not in ("Cluster", "Local"):
            errs.append(not_supported(f"spec.{key}", value, ("Cluster", "Local")))
    if old is not None:
        old_spec = as_dict(old.get("spec"))
        old_ip, new_ip = old_spec.get("clusterIP"), spec.get("clusterIP")
        # Changing to/from ExternalName is the one case where the cluster IP may go or come.
        # A client that omits it keeps the allocated address (the registry copies it over).
        if old_ip and new_ip and new_ip != old_ip and "ExternalName" not in (kind, old_spec.get("type")):
            errs.append(invalid("spec.clusterIPs[0]", new_ip, "may not change once set"))
    return errs


def _namespace(obj: Obj, old: Obj | None) -> list[FieldError]:
    return []


def _data_map(obj: Obj, old: Obj | None, *, other_key: str, base64_fields: tuple[str, ...]) -> list[FieldError]:
    errs: list[FieldError] = []
    total = 0
    seen: set[str] = set()
    for field in ("data", other_key):
        values = as_dict(obj.get(field))
        if not isinstance(values, dict):
            errs.append(invalid(field, values, "must be a map"))
            continue
        for key, value in values.items():
            if len(key) > 253 or not _DATA_KEY.match(key):
                errs.append(
                    invalid(
                        field,
                        key,
                        "a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
                        "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
                        "'[-._a-zA-Z0-9]+')",
                    )
                )
            if key in seen:
                errs.append(
                    invalid(field, key, "duplicate of key present in " + ("data" if field != "data" else field))
                )
            seen.add(key)
            if not isinstance(value, str):
                errs.append(invalid(f"{field}[{key}]", value, "must be a string"))
                continue
            if field in base64_fields:
                try:
                    total += len(base64.b64decode(value, validate=True))
                except (ValueError, binascii.Error):
                    errs.append(invalid(f"{field}[{key}]", "<value omitted>", "must be base64-encoded"))
            else:
                total += len(value)
    if total > _DATA_MAX:
        errs.append(too_long("data", _DATA_MAX))
    if old is not None and old.get("immutable"):
        for field in ("data", other_key, "immutable"):
            if obj.get(field) != old.get(field):
                errs.append(forbidden(field, "field is immutable when `immutable` is set"))
    return errs


def _configmap(obj: Obj, old: Obj | None) -> list[FieldError]:
    return _data_map(obj, old, other_key="binaryData", base64_fields=("binaryData",))


def _secret(obj: Obj, old: Obj | None) -> list[FieldError]:
    errs = _data_map(obj, old, other_key="stringData", base64_fields=("data",))
    if old is not None:
        errs.extend(_immutable(obj.get("type"), old.get("type"), "type"))
    return errs


def _node(obj: Obj, old: Obj | None) -> list[FieldError]:
    spec = as_dict(obj.get("spec"))
    errs: list[FieldError] = []
    for i, taint in enumerate(as_list(spec.get("taints"))):
        at = f"spec.taints[{i}]"
        if not isinstance(taint, dict) or not taint.get("key"):
            errs.append(required(f"{at}.key"))
            continue
        if taint.get("effect") not in TAINT_EFFECTS:
            errs.append(not_supported(f"{at}.effect", taint.get("effect"), TAINT_EFFECTS))
    if old is not None:
        old_cidr = as_dict(old.get("spec")).get("podCIDR")
        if old_cidr and spec.get("podCIDR") != old_cidr:
            errs.append(forbidden("spec.podCIDR", 'node updates may not change podCIDR except from "" to valid'))
    return errs


def _quantities(values: Any, path: str) -> tuple[dict[str, Fraction], list[FieldError]]:
    """Parsed non-negative quantities by resource name, and the errors of the rest."""
    parsed: dict[str, Fraction] = {}
    errs: list[FieldError] = []
    for name, text in as_dict(values).items():
        try:
            value = parse_quantity(text)
        except QuantityError as err:
            errs.append(invalid(f"{path}[{name}]", text, str(err)))
            continue
        if value < 0:
            errs.append(invalid(f"{path}[{name}]", text, "must be greater than or equal to 0"))
        else:
            parsed[name] = value
    return parsed, errs


def _resourcequota(obj: Obj, old: Obj | None) -> list[FieldError]:
    return _quantities(as_dict(obj.get("spec")).get("hard"), "spec.hard")[1]


# LimitRange bounds must nest: min <= defaultRequest <= default <= max (Kubernetes' order of checks).
_LIMIT_ORDER = (
    ("min", "defaultRequest"),
    ("defaultRequest", "default"),
    ("min", "default"),
    ("default", "max"),
    ("defaultRequest", "max"),
    ("min", "max"),
)


def _limitrange(obj: Obj, old: Obj | None) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, limit in enumerate(as_list(as_dict(obj.get("spec")).get("limits"))):
        at = f"spec.limits[{i}]"
        if not isinstance(limit, dict):
            errs.append(invalid(at, limit, "must be an object"))
            continue
        if limit.get("type") not in ("Container", "Pod", "PersistentVolumeClaim"):
            errs.append(not_supported(f"{at}.type", limit.get("type"), ("Container", "Pod", "PersistentVolumeClaim")))
        bounds: dict[str, dict[str, Fraction]] = {}
        for key in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
            bounds[key], key_errs = _quantities(limit.get(key), f"{at}.{key}")
            errs.extend(key_errs)
        for low, high in _LIMIT_ORDER:
            for name, low_value in bounds[low].items():
                high_value = bounds[high].get(name)
                if high_value is not None and low_value > high_value:
                    errs.append(
                        invalid(
                            f"{at}.{high}[{name}]", limit[high][name], f"must be greater than or equal to {low} value"
                        )
                    )
        for name, ratio in bounds["maxLimitRequestRatio"].items():
            if ratio < 1:
                errs.append(
                    invalid(f"{at}.maxLimitRequestRatio[{name}]", ratio, "ratio must be greater than or equal to 1")
                )
    return errs


def _role(obj: Obj, old: Obj | None) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, rule in enumerate(as_list(obj.get("rules"))):
        at = f"rules[{i}]"
        if not isinstance(rule, dict) or not rule.get("verbs"):
            errs.append(required(f"{at}.verbs", "verbs must contain at least one value"))
            continue
        if rule.get("nonResourceURLs") and obj.get("kind") == "Role":
            errs.append(
                invalid(
                    f"{at}.nonResourceURLs",
                    rule["nonResourceURLs"],
                    "namespaced rules cannot apply to non-resource URLs",
                )
            )
        if not rule.get("nonResourceURLs") and not rule.get("resources"):
            errs.append(required(f"{at}.resources", "resource rules must supply at least one resource"))
    return errs


def _binding(obj: Obj, old: Obj | None) -> list[FieldError]:
    errs: list[FieldError] = []
    ref = obj.get("roleRef")
    if not isinstance(ref, dict) or not ref.get("name"):
        errs.append(required("roleRef.name"))
    elif ref.get("kind") not in ("Role", "ClusterRole") or (
        obj.get("kind") == "ClusterRoleBinding" and ref.get("kind") != "ClusterRole"
    ):
        errs.append(
            not_supported(
                "roleRef.kind",
                ref.get("kind"),
                ("ClusterRole",) if obj.get("kind") == "ClusterRoleBinding" else ("Role", "ClusterRole"),
            )
        )
    for i, subject in enumerate(as_list(obj.get("subjects"))):
        at = f"subjects[{i}]"
        if not isinstance(subject, dict) or not subject.get("name"):
            errs.append(required(f"{at}.name"))
            continue
        kind = subject.get("kind")
        if kind not in ("User", "Group", "ServiceAccount"):
            errs.append(not_supported(f"{at}.kind", kind, ("ServiceAccount", "User", "Group")))
        elif kind == "ServiceAccount" and obj.get("kind") == "ClusterRoleBinding" and not subject.get("namespace"):
            errs.append(required(f"{at}.namespace"))
    if old is not None and obj.get("roleRef") != old.get("roleRef"):
        errs.append(invalid("roleRef", obj.get("roleRef"), "cannot change roleRef"))
    return errs


def _endpointslice(obj: Obj, old: Obj | None) -> list[FieldError]:
    errs: list[FieldError] = []
    if obj.get("addressType") not in ("IPv4", "IPv6", "FQDN"):
        errs.append(not_supported("addressType", obj.get("addressType"), ("IPv4", "IPv6", "FQDN")))
    for i, endpoint in enumerate(as_list(obj.get("endpoints"))):
        if not isinstance(endpoint, dict) or not endpoint.get("addresses"):
            errs.append(required(f"endpoints[{i}].addresses", "must contain at least 1 address"))
    if old is not None:
        errs.extend(_immutable(obj.get("addressType"), old.get("addressType"), "addressType"))
    return errs


def _lease(obj: Obj, old: Obj | None) -> list[FieldError]:
    spec = as_dict(obj.get("spec"))
    value = spec.get("leaseDurationSeconds")
    if value is not None and (not is_int(value) or value <= 0):
        return [invalid("spec.leaseDurationSeconds", value, "must be greater than 0")]
    return []


def _pvc(obj: Obj, old: Obj | None) -> list[FieldError]:
    spec = as_dict(obj.get("spec"))
    errs: list[FieldError] = []
    if not spec.get("accessModes"):
        errs.append(required("spec.accessModes", "at least 1 access mode is required"))
    storage = as_dict(as_dict(spec.get("resources")).get("requests")).get("storage")
    if storage is None:
        errs.append(required("spec.resources[storage]"))
    errs.extend(validate_resources(spec.get("resources"), "spec.resources"))
    return errs


def _hpa(obj: Obj, old: Obj | None) -> list[FieldError]:
    spec = as_dict(obj.get("spec"))
    errs: list[FieldError] = []
    ref = spec.get("scaleTargetRef")
    if not isinstance(ref, dict) or not ref.get("kind") or not ref.get("name"):
        errs.append(required("spec.scaleTargetRef", "kind and name are required"))
    low, high = spec.get("minReplicas", 1), spec.get("maxReplicas")
    if not is_int(high) or high < 1:
        errs.append(invalid("spec.maxReplicas", high, "must be greater than or equal to 1"))
    if not is_int(low) or low < 1:
        errs.append(invalid("spec.minReplicas", low, "must be greater than or equal to 1"))
    elif is_int(high) and low > high:
        errs.append(invalid("spec.maxReplicas", high, "must be greater than or equal to `minReplicas`"))
    return errs


def _networkpolicy(obj: Obj, old: Obj | None) -> list[FieldError]:
    spec = as_dict(obj.get("spec"))
    errs: list[FieldError] = []
    if "podSelector" not in spec:
        errs.append(required("spec.podSelector", "use {} to select every pod of the namespace"))
    else:
        errs.extend(validate_label_selector(spec["podSelector"], "spec.podSelector"))
    for i, kind in enumerate(as_list(spec.get("policyTypes"))):
        if kind not in ("Ingress", "Egress"):
            errs.append(not_supported(f"spec.policyTypes[{i}]", kind, ("Ingress", "Egress")))
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(as_list(spec.get(direction))):
            at = f"spec.{direction}[{i}]"
            for j, port in enumerate(dict_items(as_dict(rule).get("ports"))):
                protocol = port.get("protocol", "TCP")
                if protocol not in PROTOCOLS:
                    errs.append(not_supported(f"{at}.ports[{j}].protocol", protocol, PROTOCOLS))
            for j, peer in enumerate(as_list(as_dict(rule).get(peers_key))):
                for key in ("podSelector", "namespaceSelector"):
                    if isinstance(peer, dict) and key in peer:
                        errs.extend(validate_label_selector(peer[key], f"{at}.{peers_key}[{j}].{key}"))
    return errs


_BY_KIND: dict[str, Callable[[Obj, Obj | None], list[FieldError]]] = {
    "Pod": _pod,
    "Deployment": _deployment,
    "ReplicaSet": _replicaset,
    "ReplicationController": _replication_controller,
    "DaemonSet": _daemonset,
    "StatefulSet": _statefulset,
    "Job": _job,
    "CronJob": _cronjob,
    "Service": _service,
    "Namespace": _namespace,
    "ConfigMap": _configmap,
    "Secret": _secret,
    "Node": _node,
    "ResourceQuota": _resourcequota,
    "LimitRange": _limitrange,
    "Role": _role,
    "ClusterRole": _role,
    "RoleBinding": _binding,
    "ClusterRoleBinding": _binding,
    "EndpointSlice": _endpointslice,
    "Lease": _lease,
    "PersistentVolumeClaim": _pvc,
    "HorizontalPodAutoscaler": _hpa,
    "NetworkPolicy": _networkpolicy,
}

# Name rules per kind (apimachinery: most kinds are subdomains; these differ).
_NAME_CHECKS: dict[str, NameCheck] = {
    "Namespace": dns1123_label,
    "Service": dns1035_label,
    "Role": path_segment_name,
    "ClusterRole": path_segment_name,
    "RoleBinding": path_segment_name,
    "ClusterRoleBinding": path_segment_name,
}


def validate(resource: Resource, obj: Obj, old: Obj | None = None) -> list[FieldError]:
    """All field errors of `obj` (empty when valid). `old` is the stored object on update, None on create."""
    name_check = _NAME_CHECKS.get(resource.kind, dns1123_subdomain)
    errs = validate_object_meta(obj.get("metadata"), namespaced=resource.namespaced, name_check=name_check)
    check = _BY_KIND.get(resource.kind)
    if check is not None:
        errs.extend(check(obj, old))
    return errs
