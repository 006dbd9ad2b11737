"""Kubernetes defaulting for the fields that change behaviour or show up in `kubectl get -o yaml`.

Applied on create and update before validation (like the API server's defaulting during decoding), so
a field a client omits reads back with the value Kubernetes would give it. Each kind's function only
fills what is missing; it never overwrites a value the client set.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from controlplane.resources import Resource
from controlplane.validation.shapes import as_dict

__all__ = ["apply_defaults", "default_pod_spec", "drop_type_dependent_fields", "image_pull_policy"]

Obj = dict[str, Any]


def _sub(obj: Obj, key: str) -> Obj:
    """The dict under `key`, created when missing (or replaced when the client sent null)."""
    value = obj.get(key)
    if not isinstance(value, dict):
        value = obj[key] = {}
    return value


def _items(obj: Obj, key: str) -> list[Obj]:
    value = obj.get(key)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def image_pull_policy(image: str) -> str:
    """Always for `:latest` or untagged images (unless pinned by digest), IfNotPresent otherwise."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.rpartition(":")[2] if ":" in last else ""
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _default_container(container: Obj) -> None:
    container.setdefault("imagePullPolicy", image_pull_policy(str(container.get("image", ""))))
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})
    for port in _items(container, "ports"):
        port.setdefault("protocol", "TCP")
    for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = container.get(probe_name)
        if isinstance(probe, dict):
            probe.setdefault("timeoutSeconds", 1)
            probe.setdefault("periodSeconds", 10)
            probe.setdefault("successThreshold", 1)
            probe.setdefault("failureThreshold", 3)
            http = probe.get("httpGet")
            if isinstance(http, dict):
                http.setdefault("path", "/")
                http.setdefault("scheme", "HTTP")
    resources = container["resources"]
    # Limits without requests: requests default to the limits (kube's SetDefaults_Container path).
    if isinstance(resources, dict) and isinstance(resources.get("limits"), dict):
        requests = _sub(resources, "requests")
        for name, value in resources["limits"].items():
            requests.setdefault(name, value)


def default_pod_spec(spec: Obj) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    for key in ("containers", "initContainers"):
        for container in _items(spec, key):
            _default_container(container)
    for volume in _items(spec, "volumes"):
        for source, mode_key in (("configMap", "defaultMode"), ("secret", "defaultMode"), ("projected", "defaultMode")):
            if isinstance(volume.get(source), dict):
                volume[source].setdefault(mode_key, 0o644)
        if not any(k != "name" for k in volume):
            volume["emptyDir"] = {}


def _qos_class(spec: Obj) -> str:
    """Guaranteed when every container's limits equal its requests for cpu and memory, BestEffort when
    no container sets any, Burstable otherwise (the Kubernetes QoS rules)."""
    containers = _items(spec, "containers") + _items(spec, "initContainers")
    any_set = False
    guaranteed = True
    for container in containers:
        res = as_dict(container.get("resources"))
        requests, limits = as_dict(res.get("requests")), as_dict(res.get("limits"))
        if any(k in requests or k in limits for k in ("cpu", "memory")):
            any_set = True
        for name in ("cpu", "memory"):
            if name not in limits or str(requests.get(name, limits[name])) != str(limits[name]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _template(obj: Obj, *path: str) -> None:
    node = obj
    for key in path:
        node = _sub(node, key)
    default_pod_spec(_sub(node, "spec"))


def _pod(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    default_pod_spec(spec)
    status = _sub(obj, "status")
    status.setdefault("phase", "Pending")
    status.setdefault("qosClass", _qos_class(spec))


def _deployment(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    spec.setdefault("replicas", 1)
    strategy = _sub(spec, "strategy")
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _sub(strategy, "rollingUpdate")
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    _template(spec, "template")


def _replicaset(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    spec.setdefault("replicas", 1)
    _template(spec, "template")


def _replication_controller(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    spec.setdefault("replicas", 1)
    template = spec.get("template")
    if isinstance(template, dict):
        labels = as_dict(template.get("metadata")).get("labels")
        if not spec.get("selector") and isinstance(labels, dict):
            spec["selector"] = dict(labels)
        _template(spec, "template")


def _daemonset(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    strategy = _sub(spec, "updateStrategy")
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _sub(strategy, "rollingUpdate")
        rolling.setdefault("maxUnavailable", 1)
        rolling.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    _template(spec, "template")


def _statefulset(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    spec.setdefault("replicas", 1)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    strategy = _sub(spec, "updateStrategy")
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        _sub(strategy, "rollingUpdate").setdefault("partition", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    retention = _sub(spec, "persistentVolumeClaimRetentionPolicy")
    retention.setdefault("whenDeleted", "Retain")
    retention.setdefault("whenScaled", "Retain")
    _template(spec, "template")


def _job_spec(spec: Obj, uid: str | None) -> None:
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    _template(spec, "template")
    if uid and not spec.get("manualSelector") and not spec.get("selector"):
        # Like Kubernetes, a Job selects its pods by its own uid so two Jobs never share pods.
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        labels = _sub(_sub(_sub(spec, "template"), "metadata"), "labels")
        labels.setdefault("batch.kubernetes.io/controller-uid", uid)
        labels.setdefault("controller-uid", uid)
        labels.setdefault("batch.kubernetes.io/job-name", "")
        labels.setdefault("job-name", "")


def _job(obj: Obj) -> None:
    meta = as_dict(obj.get("metadata"))
    spec = _sub(obj, "spec")
    _job_spec(spec, meta.get("uid"))
    name = meta.get("name")
    labels = as_dict(as_dict(spec.get("template")).get("metadata")).get("labels")
    if name and isinstance(labels, dict):
        for key in ("batch.kubernetes.io/job-name", "job-name"):
            if labels.get(key) == "":
                labels[key] = name


def _cronjob(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    job_spec = _sub(_sub(spec, "jobTemplate"), "spec")
    _job_spec(job_spec, None)


def _service(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    spec.setdefault("type", "ClusterIP")
    if spec["type"] == "ExternalName":
        return
    spec.setdefault("sessionAffinity", "None")
    if spec["sessionAffinity"] == "ClientIP":
        config = _sub(_sub(spec, "sessionAffinityConfig"), "clientIP")
        config.setdefault("timeoutSeconds", 10800)
    spec.setdefault("internalTrafficPolicy", "Cluster")
    # Single-stack IPv4, like the default service CIDR (10.96.0.0/16); dual-stack is not served.
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("ipFamilies", ["IPv4"])
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    for port in _items(spec, "ports"):
        port.setdefault("protocol", "TCP")
        if "targetPort" not in port and "port" in port:
            port["targetPort"] = port["port"]


def drop_type_dependent_fields(new: Obj, old: Obj) -> None:
    """On a Service update that leaves NodePort/LoadBalancer, forget the node ports the server had
    allocated (those equal to the old ones) instead of rejecting them, as Kubernetes' service strategy
    does: `kubectl apply` of `type: ClusterIP` over a NodePort Service sends the old ports back."""
    new_spec, old_spec = as_dict(new.get("spec")), as_dict(old.get("spec"))
    if new_spec.get("type", "ClusterIP") in ("NodePort", "LoadBalancer"):
        return
    if old_spec.get("type") not in ("NodePort", "LoadBalancer"):
        return
    old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort") for p in _items(old_spec, "ports")}
    for port in _items(new_spec, "ports"):
        allocated = old_ports.get((port.get("port"), port.get("protocol", "TCP")))
        if allocated is not None and port.get("nodePort") == allocated:
            del port["nodePort"]
    if new_spec.get("externalTrafficPolicy") == old_spec.get("externalTrafficPolicy"):
        new_spec.pop("externalTrafficPolicy", None)


def _namespace(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    spec.setdefault("finalizers", ["kubernetes"])
    _sub(obj, "status").setdefault("phase", "Active")


def _ports_tcp(obj: Obj) -> None:
    for subset in _items(obj, "subsets"):
        for port in _items(subset, "ports"):
            port.setdefault("protocol", "TCP")


def _endpointslice(obj: Obj) -> None:
    for port in _items(obj, "ports"):
        port.setdefault("protocol", "TCP")


def _secret(obj: Obj) -> None:
    obj.setdefault("type", "Opaque")
    # stringData is write-only: Kubernetes folds it into data (base64) when decoding, winning over data.
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict):
        data = _sub(obj, "data")
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode() if isinstance(value, str) else value


def _pvc(obj: Obj) -> None:
    _sub(obj, "spec").setdefault("volumeMode", "Filesystem")
    _sub(obj, "status").setdefault("phase", "Pending")


def _pv(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
    spec.setdefault("volumeMode", "Filesystem")
    _sub(obj, "status").setdefault("phase", "Pending")


def _networkpolicy(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    if "policyTypes" not in spec:
        spec["policyTypes"] = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]
    for rule in _items(spec, "ingress") + _items(spec, "egress"):
        for port in _items(rule, "ports"):
            port.setdefault("protocol", "TCP")


def _role_binding(obj: Obj) -> None:
    for subject in _items(obj, "subjects"):
        if subject.get("kind") in ("User", "Group"):
            subject.setdefault("apiGroup", "rbac.authorization.k8s.io")


def _hpa(obj: Obj) -> None:
    _sub(obj, "spec").setdefault("minReplicas", 1)


_BY_KIND: dict[str, Callable[[Obj], None]] = {
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
    "Endpoints": _ports_tcp,
    "EndpointSlice": _endpointslice,
    "Secret": _secret,
    "PersistentVolumeClaim": _pvc,
    "PersistentVolume": _pv,
    "NetworkPolicy": _networkpolicy,
    "RoleBinding": _role_binding,
    "ClusterRoleBinding": _role_binding,
    "HorizontalPodAutoscaler": _hpa,
}


def apply_defaults(resource: Resource, obj: Obj) -> None:
    """Fill defaults in place. Call on create and update of the main resource, before `validate`."""
    defaulter = _BY_KIND.get(resource.kind)
    if defaulter is not None:
        defaulter(obj)
