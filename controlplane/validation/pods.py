"""Validation of pod specs (pods and every controller's pod template) and pod update rules."""

from __future__ import annotations

import re
from typing import Any, TypeGuard

from controlplane.validation.errors import (
    FieldError,
    duplicate,
    forbidden,
    invalid,
    not_supported,
    required,
)
from controlplane.validation.names import dns1123_label, dns1123_subdomain, validate_labels
from controlplane.validation.quantity import QuantityError, parse_quantity
from controlplane.validation.shapes import as_dict, as_list

__all__ = ["is_int", "validate_pod_spec", "validate_pod_update", "validate_port_name", "validate_resources"]

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PROTOCOLS = ("TCP", "UDP", "SCTP")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
TOLERATION_OPERATORS = ("Exists", "Equal")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_PORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_VOLUME_SOURCES = (
    "emptyDir",
    "hostPath",
    "configMap",
    "secret",
    "projected",
    "persistentVolumeClaim",
    "downwardAPI",
    "nfs",
    "csi",
    "ephemeral",
    "local",
    "image",
)


def is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_port_name(name: str, path: str) -> list[FieldError]:
    """IANA service names: at most 15 characters, lower case, at least one letter, no '--'."""
    msgs = []
    if len(name) > 15:
        msgs.append("must be no more than 15 characters")
    if not _PORT_NAME.match(name):
        msgs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in name:
        msgs.append("must not contain consecutive hyphens")
    if not re.search("[a-z]", name):
        msgs.append("must contain at least one letter (a-z)")
    return [invalid(path, name, m) for m in msgs]


def validate_resources(resources: Any, path: str) -> list[FieldError]:
    if not resources:
        return []
    if not isinstance(resources, dict):
        return [invalid(path, resources, "must be an object")]
    errs: list[FieldError] = []
    parsed: dict[str, dict[str, Any]] = {}
    for part in ("limits", "requests"):
        values = as_dict(resources.get(part))
        if not isinstance(values, dict):
            errs.append(invalid(f"{path}.{part}", values, "must be a map"))
            continue
        parsed[part] = {}
        for name, text in values.items():
            try:
                quantity = parse_quantity(text)
            except QuantityError as err:
                errs.append(invalid(f"{path}.{part}[{name}]", text, str(err)))
                continue
            if quantity < 0:
                errs.append(invalid(f"{path}.{part}[{name}]", text, "must be greater than or equal to 0"))
            parsed[part][name] = quantity
    for name, request in parsed.get("requests", {}).items():
        limit = parsed.get("limits", {}).get(name)
        if limit is not None and request > limit:
            errs.append(
                invalid(
                    f"{path}.requests",
                    resources["requests"][name],
                    f"must be less than or equal to {name} limit of {resources['limits'][name]}",
                )
            )
    return errs


def _validate_probe(probe: Any, path: str) -> list[FieldError]:
    if probe is None:
        return []
    if not isinstance(probe, dict):
        return [invalid(path, probe, "must be an object")]
    handlers = [k for k in ("exec", "httpGet", "tcpSocket", "grpc") if probe.get(k) is not None]
    errs: list[FieldError] = []
    if not handlers:
        errs.append(required(path, "must specify a handler type"))
    elif len(handlers) > 1:
        errs.append(forbidden(f"{path}.{handlers[1]}", "may not specify more than 1 handler type"))
    for key in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
        value = probe.get(key)
        if value is not None and (not is_int(value) or value < 0):
            errs.append(invalid(f"{path}.{key}", value, "must be greater than or equal to 0"))
    return errs


def _validate_container(c: Any, path: str, volumes: set[str], *, init: bool) -> list[FieldError]:
    if not isinstance(c, dict):
        return [invalid(path, c, "must be an object")]
    errs: list[FieldError] = []
    name = c.get("name")
    if not name:
        errs.append(required(f"{path}.name"))
    else:
        errs.extend(invalid(f"{path}.name", name, m) for m in dns1123_label(str(name)))
    if not c.get("image"):
        errs.append(required(f"{path}.image"))
    policy = c.get("imagePullPolicy")
    if policy is not None and policy not in PULL_POLICIES:
        errs.append(not_supported(f"{path}.imagePullPolicy", policy, PULL_POLICIES))
    for key in ("command", "args"):
        value = c.get(key)
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            errs.append(invalid(f"{path}.{key}", value, "must be a list of strings"))
    port_names: set[str] = set()
    for i, port in enumerate(as_list(c.get("ports"))):
        at = f"{path}.ports[{i}]"
        if not isinstance(port, dict):
            errs.append(invalid(at, port, "must be an object"))
            continue
        number = port.get("containerPort")
        if number is None:
            errs.append(required(f"{at}.containerPort"))
        elif not is_int(number) or not 1 <= number <= 65535:
            errs.append(invalid(f"{at}.containerPort", number, "must be between 1 and 65535, inclusive"))
        host = port.get("hostPort")
        if host is not None and (not is_int(host) or not 0 <= host <= 65535):
            errs.append(invalid(f"{at}.hostPort", host, "must be between 1 and 65535, inclusive"))
        protocol = port.get("protocol")
        if protocol is not None and protocol not in PROTOCOLS:
            errs.append(not_supported(f"{at}.protocol", protocol, PROTOCOLS))
        pname = port.get("name")
        if pname:
            errs.extend(validate_port_name(str(pname), f"{at}.name"))
            if str(pname) in port_names:
                errs.append(duplicate(f"{at}.name", pname))
            port_names.add(str(pname))
    for i, env in enumerate(as_list(c.get("env"))):
        at = f"{path}.env[{i}]"
        if not isinstance(env, dict) or not env.get("name"):
            errs.append(required(f"{at}.name"))
            continue
        if not _ENV_NAME.match(str(env["name"])):
            errs.append(
                invalid(
                    f"{at}.name",
                    env["name"],
                    "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', "
                    "or '.', and must not start with a digit",
                )
            )
        if env.get("value") is not None and env.get("valueFrom") is not None:
            errs.append(invalid(f"{at}.valueFrom", "", "may not be specified when `value` is not empty"))
    mount_paths: set[str] = set()
    for i, mount in enumerate(as_list(c.get("volumeMounts"))):
        at = f"{path}.volumeMounts[{i}]"
        if not isinstance(mount, dict):
            errs.append(invalid(at, mount, "must be an object"))
            continue
        if not mount.get("name"):
            errs.append(required(f"{at}.name"))
        elif str(mount["name"]) not in volumes:
            errs.append(FieldError("FieldValueNotFound", f"{at}.name", mount["name"]))
        mpath = mount.get("mountPath")
        if not mpath:
            errs.append(required(f"{at}.mountPath"))
        elif str(mpath) in mount_paths:
            errs.append(invalid(f"{at}.mountPath", mpath, "must be unique"))
        else:
            mount_paths.add(str(mpath))
    errs.extend(validate_resources(c.get("resources"), f"{path}.resources"))
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if init and c.get(probe) is not None and c.get("restartPolicy") != "Always":
            errs.append(forbidden(f"{path}.{probe}", "may not be set for init containers without restartPolicy=Always"))
        else:
            errs.extend(_validate_probe(c.get(probe), f"{path}.{probe}"))
    return errs


def validate_pod_spec(
    spec: Any, path: str, *, restart_policies: tuple[str, ...] = RESTART_POLICIES
) -> list[FieldError]:
    if not isinstance(spec, dict):
        return [required(path)]
    errs: list[FieldError] = []
    volume_names: set[str] = set()
    for i, volume in enumerate(as_list(spec.get("volumes"))):
        at = f"{path}.volumes[{i}]"
        if not isinstance(volume, dict) or not volume.get("name"):
            errs.append(required(f"{at}.name"))
            continue
        vname = str(volume["name"])
        errs.extend(invalid(f"{at}.name", vname, m) for m in dns1123_label(vname))
        if vname in volume_names:
            errs.append(duplicate(f"{at}.name", vname))
        volume_names.add(vname)
        sources = [k for k in _VOLUME_SOURCES if volume.get(k) is not None]
        if len(sources) > 1:
            errs.append(forbidden(f"{at}.{sources[1]}", "may not specify more than 1 volume type"))
    containers = spec.get("containers")
    if not containers:
        errs.append(required(f"{path}.containers"))
    names: set[str] = set()
    for key, init in (("initContainers", True), ("containers", False)):
        for i, container in enumerate(as_list(spec.get(key))):
            errs.extend(_validate_container(container, f"{path}.{key}[{i}]", volume_names, init=init))
            name = container.get("name") if isinstance(container, dict) else None
            if name:
                if str(name) in names:
                    errs.append(duplicate(f"{path}.{key}[{i}].name", name))
                names.add(str(name))
    restart = spec.get("restartPolicy")
    if restart is not None and restart not in restart_policies:
        errs.append(not_supported(f"{path}.restartPolicy", restart, restart_policies))
    dns = spec.get("dnsPolicy")
    if dns is not None and dns not in DNS_POLICIES:
        errs.append(not_supported(f"{path}.dnsPolicy", dns, DNS_POLICIES))
    for key in ("terminationGracePeriodSeconds", "activeDeadlineSeconds"):
        value = spec.get(key)
        if value is not None and (not is_int(value) or value < (1 if key == "activeDeadlineSeconds" else 0)):
            errs.append(invalid(f"{path}.{key}", value, "must be a non-negative integer"))
    errs.extend(validate_labels(spec.get("nodeSelector"), f"{path}.nodeSelector"))
    node_name = spec.get("nodeName")
    if node_name:
        errs.extend(invalid(f"{path}.nodeName", node_name, m) for m in dns1123_subdomain(str(node_name)))
    sa = spec.get("serviceAccountName")
    if sa:
        errs.extend(invalid(f"{path}.serviceAccountName", sa, m) for m in dns1123_subdomain(str(sa)))
    for i, tol in enumerate(as_list(spec.get("tolerations"))):
        at = f"{path}.tolerations[{i}]"
        if not isinstance(tol, dict):
            errs.append(invalid(at, tol, "must be an object"))
            continue
        op = tol.get("operator", "Equal")
        if op not in TOLERATION_OPERATORS:
            errs.append(not_supported(f"{at}.operator", op, TOLERATION_OPERATORS))
        if op == "Exists" and tol.get("value"):
            errs.append(invalid(f"{at}.operator", op, "value must be empty when `operator` is 'Exists'"))
        if not tol.get("key") and op != "Exists":
            errs.append(invalid(f"{at}.operator", op, "operator must be Exists when `key` is empty"))
        effect = tol.get("effect")
        if effect and effect not in TAINT_EFFECTS:
            errs.append(not_supported(f"{at}.effect", effect, TAINT_EFFECTS))
    return errs


_UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)


def validate_pod_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    """A pod's spec is immutable except images, activeDeadlineSeconds (set or shortened), added
    tolerations and scheduling gates being removed; compare with those fields masked out."""
    new_spec, old_spec = as_dict(new.get("spec")), as_dict(old.get("spec"))
    errs: list[FieldError] = []

    old_deadline, new_deadline = old_spec.get("activeDeadlineSeconds"), new_spec.get("activeDeadlineSeconds")
    if is_int(old_deadline) and (not is_int(new_deadline) or new_deadline > old_deadline):
        errs.append(invalid("spec.activeDeadlineSeconds", new_deadline, "must be less than or equal to previous value"))
    old_tols = as_list(old_spec.get("tolerations"))
    new_tols = as_list(new_spec.get("tolerations"))
    if any(t not in new_tols for t in old_tols):
        errs.append(
            forbidden("spec.tolerations", "existing toleration can not be modified except its tolerationSeconds")
        )
    old_gates = as_list(old_spec.get("schedulingGates"))
    if any(g not in old_gates for g in as_list(new_spec.get("schedulingGates"))):
        errs.append(forbidden("spec.schedulingGates", "only deletion is allowed, but found new scheduling gate"))

    def masked(spec: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in spec.items() if k not in ("activeDeadlineSeconds", "tolerations", "schedulingGates")}
        if not old_spec.get("nodeName"):
            out.pop("nodeName", None)  # binding an unscheduled pod sets it once
        for key in ("containers", "initContainers"):
            if isinstance(out.get(key), list):
                out[key] = [
                    {k: v for k, v in c.items() if k != "image"} if isinstance(c, dict) else c for c in out[key]
                ]
        grace = old_spec.get("terminationGracePeriodSeconds", 0)
        if is_int(grace) and grace < 0:
            out.pop("terminationGracePeriodSeconds", None)
        return out

    if masked(new_spec) != masked(old_spec):
        errs.append(forbidden("spec", _UPDATE_FORBIDDEN))
    return errs
