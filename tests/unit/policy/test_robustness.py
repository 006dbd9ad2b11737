"""Defaulting, validation, admission and printing take whatever JSON a client sends: wrong types at
any depth must come back as field errors (a 422), never as an exception (a 500)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.admission import AdmissionError, default_chain
from controlplane.admission.testing import FakeAttributes, FakeReader
from controlplane.patch import PatchError, strategic_merge
from controlplane.printers import to_table
from controlplane.resources import ALL_RESOURCES, LIMITRANGES, NAMESPACES, PODS, RESOURCEQUOTAS, SERVICEACCOUNTS
from controlplane.validation import apply_defaults, validate

# Real field names, so generated trees reach deep into the per-kind code paths.
_FIELDS = [
    "metadata",
    "name",
    "namespace",
    "labels",
    "annotations",
    "ownerReferences",
    "spec",
    "status",
    "template",
    "containers",
    "initContainers",
    "image",
    "ports",
    "containerPort",
    "port",
    "targetPort",
    "nodePort",
    "protocol",
    "env",
    "value",
    "valueFrom",
    "volumeMounts",
    "mountPath",
    "volumes",
    "resources",
    "limits",
    "requests",
    "cpu",
    "memory",
    "selector",
    "matchLabels",
    "matchExpressions",
    "key",
    "operator",
    "values",
    "replicas",
    "strategy",
    "type",
    "rollingUpdate",
    "maxSurge",
    "maxUnavailable",
    "restartPolicy",
    "tolerations",
    "effect",
    "data",
    "stringData",
    "binaryData",
    "rules",
    "verbs",
    "resources",
    "roleRef",
    "subjects",
    "kind",
    "hard",
    "schedule",
    "jobTemplate",
    "conditions",
    "phase",
    "containerStatuses",
    "state",
    "waiting",
    "terminated",
    "reason",
    "addresses",
    "endpoints",
    "addressType",
    "subsets",
    "taints",
    "updateStrategy",
    "livenessProbe",
    "httpGet",
    "scaleTargetRef",
    "minReplicas",
    "maxReplicas",
    "podSelector",
    "ingress",
    "egress",
    "from",
    "involvedObject",
    "creationTimestamp",
    "deletionTimestamp",
    "nodeInfo",
    "capacity",
    "accessModes",
    "claimRef",
    "holderIdentity",
    "completions",
    "parallelism",
]
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 70000), st.sampled_from(["", "x", "500m", "Always", "TCP", "1Gi"])
)
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(_FIELDS), inner, max_size=5)),
    max_leaves=25,
)
_objects = st.dictionaries(st.sampled_from(_FIELDS), _json, max_size=6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(obj=_objects, old=_objects, index=st.integers(0, len(ALL_RESOURCES) - 1))
def test_any_json_gives_field_errors_not_exceptions(obj: dict[str, Any], old: dict[str, Any], index: int) -> None:
    res = ALL_RESOURCES[index]
    apply_defaults(res, obj)
    validate(res, obj, None)
    validate(res, obj, old)
    to_table(res, [obj, old])


@settings(max_examples=150, deadline=None)
@given(obj=_objects, index=st.integers(0, len(ALL_RESOURCES) - 1))
def test_admission_takes_any_json(obj: dict[str, Any], index: int) -> None:
    reader = FakeReader()
    reader.add(NAMESPACES, {"metadata": {"name": "ns"}})
    reader.add(SERVICEACCOUNTS, {"metadata": {"name": "default", "namespace": "ns"}})
    reader.add(
        RESOURCEQUOTAS, {"metadata": {"name": "q", "namespace": "ns"}, "spec": {"hard": {"pods": "9", "cpu": "9"}}}
    )
    reader.add(
        LIMITRANGES,
        {
            "metadata": {"name": "l", "namespace": "ns"},
            "spec": {"limits": [{"type": "Container", "default": {"cpu": "1"}}]},
        },
    )
    res = ALL_RESOURCES[index]
    attrs = FakeAttributes("CREATE", res, "ns" if res.namespaced else None, "x", copy.deepcopy(obj))
    with contextlib.suppress(AdmissionError):
        asyncio.run(default_chain(reader).admit(attrs))


_POD_SPEC: dict[str, Any] = {
    "restartPolicy": "Always",
    "initContainers": [{"name": "i", "image": "b", "resources": {"limits": {"cpu": "1"}}}],
    "containers": [
        {
            "name": "c",
            "image": "b",
            "ports": [{"containerPort": 80, "name": "http"}],
            "env": [{"name": "A", "value": "1"}],
            "volumeMounts": [{"name": "v", "mountPath": "/v"}],
            "resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "1", "memory": "1Gi"}},
            "livenessProbe": {"httpGet": {"port": 80}},
        }
    ],
    "volumes": [{"name": "v", "emptyDir": {}}],
    "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
    "nodeSelector": {"a": "b"},
}
_TEMPLATE = {"metadata": {"labels": {"app": "a"}}, "spec": _POD_SPEC}
_SELECTOR = {"matchLabels": {"app": "a"}, "matchExpressions": [{"key": "app", "operator": "In", "values": ["a"]}]}
_META = {
    "name": "x",
    "namespace": "ns",
    "labels": {"a": "b"},
    "creationTimestamp": "2026-01-01T00:00:00Z",
    "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "o", "uid": "u", "controller": True}],
}
_SAMPLES: dict[str, dict[str, Any]] = {
    "Pod": {
        "spec": _POD_SPEC,
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {
                    "name": "c",
                    "restartCount": 1,
                    "state": {"running": {}},
                    "lastState": {"terminated": {"finishedAt": "2026-01-01T00:00:00Z"}},
                }
            ],
            "initContainerStatuses": [{"name": "i", "state": {"terminated": {"exitCode": 0}}}],
        },
    },
    "Deployment": {
        "spec": {
            "replicas": 1,
            "selector": _SELECTOR,
            "template": _TEMPLATE,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
        }
    },
    "ReplicaSet": {"spec": {"replicas": 1, "selector": _SELECTOR, "template": _TEMPLATE}},
    "StatefulSet": {"spec": {"replicas": 1, "selector": _SELECTOR, "template": _TEMPLATE, "serviceName": "s"}},
    "DaemonSet": {"spec": {"selector": _SELECTOR, "template": _TEMPLATE}},
    "ReplicationController": {"spec": {"replicas": 1, "selector": {"app": "a"}, "template": _TEMPLATE}},
    "Job": {"spec": {"template": {"spec": {**_POD_SPEC, "restartPolicy": "Never"}}}},
    "CronJob": {
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": _POD_SPEC}}}},
        "status": {"active": [{"name": "j"}], "lastScheduleTime": "2026-01-01T00:00:00Z"},
    },
    "Service": {
        "spec": {"type": "NodePort", "selector": {"a": "b"}, "ports": [{"port": 80, "nodePort": 30000}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}},
    },
    "Node": {
        "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP"}],
            "nodeInfo": {"kubeletVersion": "v1"},
        },
    },
    "Secret": {"data": {"a": "YQ=="}, "stringData": {"b": "c"}},
    "ConfigMap": {"data": {"a": "b"}, "binaryData": {"c": "YQ=="}},
    "ResourceQuota": {"spec": {"hard": {"pods": "1"}}, "status": {"used": {"pods": "0"}}},
    "LimitRange": {"spec": {"limits": [{"type": "Container", "max": {"cpu": "1"}}]}},
    "ClusterRole": {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]},
    "Role": {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]},
    "RoleBinding": {"roleRef": {"kind": "Role", "name": "r"}, "subjects": [{"kind": "User", "name": "u"}]},
    "ClusterRoleBinding": {
        "roleRef": {"kind": "ClusterRole", "name": "r"},
        "subjects": [{"kind": "ServiceAccount", "name": "u", "namespace": "n"}],
    },
    "EndpointSlice": {"addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}], "ports": [{"port": 80}]},
    "Endpoints": {"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]},
    "Event": {"involvedObject": {"kind": "Pod", "name": "p"}, "source": {"component": "c"}, "count": 2},
    "HorizontalPodAutoscaler": {
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "d"},
            "maxReplicas": 3,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"averageUtilization": 50}}}],
        }
    },
    "NetworkPolicy": {"spec": {"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}], "ports": [{}]}]}},
    "PersistentVolumeClaim": {"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1"}}}},
    "PersistentVolume": {"spec": {"capacity": {"storage": "1"}, "claimRef": {"name": "c"}}},
    "Lease": {"spec": {"holderIdentity": "h", "leaseDurationSeconds": 10}},
}


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += _paths(item, (*prefix, i))
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> None:
    for step in path[:-1]:
        value = value[step]
    value[path[-1]] = new


@settings(max_examples=400, deadline=None)
@given(data=st.data(), replacement=_json)
def test_one_wrong_value_anywhere_in_a_valid_object_is_handled(data: st.DataObject, replacement: Any) -> None:
    res = data.draw(st.sampled_from([r for r in ALL_RESOURCES if r.kind in _SAMPLES]))
    obj = copy.deepcopy({"metadata": _META, **_SAMPLES[res.kind]})
    old = copy.deepcopy(obj)
    path = data.draw(st.sampled_from(_paths(obj)))
    _replace(obj, path, replacement)
    apply_defaults(res, obj)
    validate(res, obj, None)
    validate(res, obj, old)
    validate(res, old, obj)
    to_table(res, [obj])
    reader = FakeReader()
    reader.add(NAMESPACES, {"metadata": {"name": "ns"}})
    reader.add(SERVICEACCOUNTS, {"metadata": {"name": "default", "namespace": "ns"}})
    attrs = FakeAttributes("CREATE", res, "ns" if res.namespaced else None, "x", obj)
    with contextlib.suppress(AdmissionError):
        asyncio.run(default_chain(reader).admit(attrs))


_PATCH_KEYS = [
    *_FIELDS,
    "$patch",
    "$retainKeys",
    "$setElementOrder/containers",
    "$deleteFromPrimitiveList/finalizers",
    "finalizers",
    "$setElementOrder/ports",
]
_patch_json = st.recursive(
    st.one_of(_scalars, st.sampled_from(["replace", "delete", "merge"])),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(_PATCH_KEYS), inner, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(original=_objects, patch=st.dictionaries(st.sampled_from(_PATCH_KEYS), _patch_json, max_size=6))
def test_strategic_merge_rejects_bad_patches_only_with_patch_error(
    original: dict[str, Any], patch: dict[str, Any]
) -> None:
    try:
        result = strategic_merge(original, patch, PODS)
    except PatchError:
        return
    assert isinstance(result, dict)
