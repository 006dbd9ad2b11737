"""Pod spec → what the runtime is asked to run: the sandbox config, and for each container its env
(literal, configMap/secret keys, envFrom, fieldRef, resourceFieldRef), mounts and cgroup resources.
Only reading configMaps/secrets touches the API; everything else is pure."""

from __future__ import annotations

import base64
import math
import os
import re
from fractions import Fraction
from typing import Any

from controlplane.client.errors import NotFound
from controlplane.resources import CONFIGMAPS, SECRETS
from noded.errors import PodSpecError
from noded.interfaces import ApiClient
from noded.quantity import linux_resources, parse_quantity
from noded.types import (
    ANNOTATION_CONTAINER_KIND,
    ANNOTATION_TERMINATION_GRACE,
    LABEL_CONTAINER_NAME,
    LABEL_MANAGED,
    LABEL_POD_NAME,
    LABEL_POD_NAMESPACE,
    LABEL_POD_UID,
    ContainerConfig,
    Mount,
    PortMapping,
    SandboxConfig,
)

_BRACKET = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")
_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")


def pod_labels(pod: dict[str, Any]) -> dict[str, str]:
    meta = pod["metadata"]
    return {
        LABEL_POD_NAME: meta["name"],
        LABEL_POD_NAMESPACE: meta.get("namespace", "default"),
        LABEL_POD_UID: meta["uid"],
        LABEL_MANAGED: "true",
    }


def pod_log_dir(log_root: str, pod: dict[str, Any]) -> str:
    """`/var/log/pods/<ns>_<name>_<uid>`, the kubelet's layout (tools like `crictl logs` expect it)."""
    meta = pod["metadata"]
    return os.path.join(log_root, f"{meta.get('namespace', 'default')}_{meta['name']}_{meta['uid']}")


def sandbox_config(pod: dict[str, Any], *, attempt: int, log_root: str, cgroup_parent: str = "") -> SandboxConfig:
    meta, spec = pod["metadata"], pod.get("spec") or {}
    ports = tuple(
        PortMapping(int(p["containerPort"]), int(p["hostPort"]), p.get("protocol", "TCP"))
        for c in spec.get("containers") or []
        for p in c.get("ports") or []
        if p.get("hostPort")
    )
    hostname = spec.get("hostname") or meta["name"]
    return SandboxConfig(
        name=meta["name"],
        namespace=meta.get("namespace", "default"),
        uid=meta["uid"],
        attempt=attempt,
        hostname=hostname[:63],
        log_directory=pod_log_dir(log_root, pod),
        labels={**(meta.get("labels") or {}), **pod_labels(pod)},
        annotations=dict(meta.get("annotations") or {}),
        port_mappings=ports,
        cgroup_parent=cgroup_parent,
        host_network=bool(spec.get("hostNetwork")),
    )


def field_value(pod: dict[str, Any], path: str) -> str:
    """The downward API's fieldRef paths."""
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    m = _BRACKET.match(path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    simple: dict[str, Any] = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace", "default"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": status.get("podIP"),
        "status.hostIP": status.get("hostIP"),
        "status.podIPs": ",".join(x["ip"] for x in status.get("podIPs") or []),
        "status.hostIPs": ",".join(x["ip"] for x in status.get("hostIPs") or []),
    }
    if path == "metadata.labels":
        return "\n".join(f'{k}="{v}"' for k, v in sorted((meta.get("labels") or {}).items()))
    if path == "metadata.annotations":
        return "\n".join(f'{k}="{v}"' for k, v in sorted((meta.get("annotations") or {}).items()))
    if path not in simple:
        raise PodSpecError("CreateContainerConfigError", f"unsupported fieldRef {path!r}")
    return "" if simple[path] is None else str(simple[path])


def resource_value(container: dict[str, Any], ref: dict[str, Any], node_allocatable: dict[str, str]) -> str:
    """resourceFieldRef: `limits.cpu` etc., divided by `divisor`, rounded up; a missing limit reads the
    node's allocatable (as the kubelet does)."""
    kind, _, name = str(ref["resource"]).partition(".")
    res = container.get("resources") or {}
    value = (res.get(kind) or {}).get(name)
    if value is None and kind == "requests":
        value = (res.get("limits") or {}).get(name)
    if value is None:
        value = node_allocatable.get(name, "0")
    divisor = parse_quantity(ref.get("divisor", "1") or "1")
    if divisor == 0:
        divisor = Fraction(1)
    return str(math.ceil(parse_quantity(value) / divisor))


def expand(value: str, env: dict[str, str]) -> str:
    """`$(VAR)` references to earlier variables; `$$` escapes; unknown references stay verbatim."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _VAR_REF.sub(sub, value)


async def _source(api: ApiClient, kind: str, name: str, namespace: str, optional: bool) -> dict[str, str] | None:
    res = CONFIGMAPS if kind == "configMap" else SECRETS
    try:
        obj = await api.get(res, name, namespace)
    except NotFound as err:
        if optional:
            return None
        raise PodSpecError("CreateContainerConfigError", f"{kind} {name!r} not found") from err
    if kind == "secret":
        return {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}
    return {**(obj.get("binaryData") or {}), **(obj.get("data") or {})}


async def resolve_env(
    api: ApiClient,
    pod: dict[str, Any],
    container: dict[str, Any],
    *,
    base: dict[str, str] | None = None,
    node_allocatable: dict[str, str] | None = None,
) -> list[tuple[str, str]]:
    """The container's environment in the order the API defines: envFrom first, then env."""
    namespace = pod["metadata"].get("namespace", "default")
    env: dict[str, str] = dict(base or {})
    for src in container.get("envFrom") or []:
        prefix = src.get("prefix", "")
        for kind in ("configMap", "secret"):
            ref = src.get(f"{kind}Ref")
            if ref:
                data = await _source(api, kind, ref["name"], namespace, bool(ref.get("optional")))
                env.update({prefix + k: v for k, v in (data or {}).items()})
    for var in container.get("env") or []:
        name = var["name"]
        if "valueFrom" not in var:
            env[name] = expand(str(var.get("value", "")), env)
            continue
        vf = var["valueFrom"]
        if "fieldRef" in vf:
            env[name] = field_value(pod, vf["fieldRef"]["fieldPath"])
        elif "resourceFieldRef" in vf:
            env[name] = resource_value(container, vf["resourceFieldRef"], node_allocatable or {})
        else:
            kind = "configMap" if "configMapKeyRef" in vf else "secret"
            ref = vf.get(f"{kind}KeyRef") or {}
            data = await _source(api, kind, ref["name"], namespace, bool(ref.get("optional")))
            if data is not None and ref["key"] in data:
                env[name] = data[ref["key"]]
            elif not ref.get("optional"):
                raise PodSpecError("CreateContainerConfigError", f"key {ref['key']!r} not in {kind} {ref['name']!r}")
    return list(env.items())


def container_mounts(container: dict[str, Any], volume_paths: dict[str, str]) -> tuple[Mount, ...]:
    """volumeMounts → host paths of the pod's prepared volumes (subPath joins below the volume)."""
    mounts = []
    for vm in container.get("volumeMounts") or []:
        host = volume_paths.get(vm["name"])
        if host is None:
            raise PodSpecError("CreateContainerConfigError", f"volume {vm['name']!r} is not defined")
        sub = vm.get("subPath")
        if sub:
            if os.path.isabs(sub) or ".." in sub.split("/"):
                raise PodSpecError("CreateContainerConfigError", f"invalid subPath {sub!r}")
            host = os.path.join(host, sub)
        mounts.append(Mount(vm["mountPath"], host, bool(vm.get("readOnly"))))
    return tuple(mounts)


def container_config(
    pod: dict[str, Any],
    container: dict[str, Any],
    *,
    kind: str,
    attempt: int,
    env: list[tuple[str, str]],
    mounts: tuple[Mount, ...],
) -> ContainerConfig:
    """One container's CRI config; `$(VAR)` in command/args expands from its env."""
    env_map = dict(env)
    name = container["name"]
    grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
    return ContainerConfig(
        name=name,
        attempt=attempt,
        image=container["image"],
        command=tuple(expand(str(x), env_map) for x in container.get("command") or []),
        args=tuple(expand(str(x), env_map) for x in container.get("args") or []),
        working_dir=container.get("workingDir", ""),
        env=tuple(env),
        mounts=mounts,
        labels={**pod_labels(pod), LABEL_CONTAINER_NAME: name},
        annotations={ANNOTATION_CONTAINER_KIND: kind, ANNOTATION_TERMINATION_GRACE: str(grace)},
        # CRI: relative to the sandbox's log_directory.
        log_path=f"{name}/{attempt}.log",
        stdin=bool(container.get("stdin")),
        tty=bool(container.get("tty")),
        resources=linux_resources(container.get("resources")),
    )
