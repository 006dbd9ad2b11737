"""Defaulting, validation and the 422 Status."""

from __future__ import annotations

import copy
from fractions import Fraction
from typing import Any

import pytest

from controlplane.resources import (
    CLUSTERROLES,
    CONFIGMAPS,
    CRONJOBS,
    DEPLOYMENTS,
    JOBS,
    NAMESPACES,
    PODS,
    ROLEBINDINGS,
    SECRETS,
    SERVICES,
)
from controlplane.validation import (
    FieldError,
    apply_defaults,
    format_quantity,
    image_pull_policy,
    parse_quantity,
    status_for,
    validate,
)


def _pod(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"containers": [{"name": "app", "image": "busybox:1.36"}]}
    base.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"}, "spec": base}


def _deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "w", "image": "n"}]}},
        },
    }


def _fields(errors: list[FieldError]) -> set[str]:
    return {e.field for e in errors}


def test_pod_defaults_match_kubernetes() -> None:
    pod = _pod(containers=[{"name": "a", "image": "nginx", "ports": [{"containerPort": 80}]}])
    apply_defaults(PODS, pod)
    spec = pod["spec"]
    assert (spec["restartPolicy"], spec["dnsPolicy"], spec["terminationGracePeriodSeconds"]) == (
        "Always",
        "ClusterFirst",
        30,
    )
    container = spec["containers"][0]
    assert container["imagePullPolicy"] == "Always"
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["ports"][0]["protocol"] == "TCP"
    assert pod["status"]["phase"] == "Pending"
    assert pod["status"]["qosClass"] == "BestEffort"
    assert validate(PODS, pod, None) == []


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.25", "IfNotPresent"),
        ("localhost:5000/x", "Always"),
        ("r/x@sha256:abc", "IfNotPresent"),
    ],
)
def test_image_pull_policy_default_depends_on_the_tag(image: str, policy: str) -> None:
    assert image_pull_policy(image) == policy


def test_defaults_never_override_client_values() -> None:
    pod = _pod(restartPolicy="Never", containers=[{"name": "a", "image": "x:1", "imagePullPolicy": "Never"}])
    apply_defaults(PODS, pod)
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == "Never"


def test_deployment_and_service_defaults() -> None:
    dep = _deployment()
    apply_defaults(DEPLOYMENTS, dep)
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert (dep["spec"]["revisionHistoryLimit"], dep["spec"]["progressDeadlineSeconds"]) == (10, 600)
    assert dep["spec"]["template"]["spec"]["restartPolicy"] == "Always"

    svc: dict[str, Any] = {
        "metadata": {"name": "s", "namespace": "d"},
        "spec": {"ports": [{"port": 80}], "selector": {"a": "b"}},
    }
    apply_defaults(SERVICES, svc)
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["sessionAffinity"] == "None"
    assert (svc["spec"]["ipFamilyPolicy"], svc["spec"]["ipFamilies"]) == ("SingleStack", ["IPv4"])
    assert svc["spec"]["ports"][0] == {"port": 80, "protocol": "TCP", "targetPort": 80}
    assert validate(SERVICES, svc, None) == []


def test_job_selector_is_generated_from_its_uid() -> None:
    job: dict[str, Any] = {
        "metadata": {"name": "j", "namespace": "d", "uid": "u-1"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}},
    }
    apply_defaults(JOBS, job)
    assert job["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}}
    assert job["spec"]["template"]["metadata"]["labels"]["job-name"] == "j"
    assert (job["spec"]["completions"], job["spec"]["parallelism"], job["spec"]["backoffLimit"]) == (1, 1, 6)
    assert validate(JOBS, job, None) == []


def test_invalid_names_and_labels_are_reported_per_field() -> None:
    pod = _pod()
    pod["metadata"] = {"name": "Bad_Name", "namespace": "default", "labels": {"ok": "fine", "bad key!": "v"}}
    fields = _fields(validate(PODS, pod, None))
    assert {"metadata.name", "metadata.labels"} <= fields
    assert validate(NAMESPACES, {"metadata": {"name": "a.b"}}, None)[0].field == "metadata.name"
    assert validate(SERVICES, {"metadata": {"name": "1svc", "namespace": "d"}, "spec": {"ports": [{"port": 1}]}})


def test_missing_name_without_generate_name_is_required() -> None:
    errors = validate(CONFIGMAPS, {"metadata": {"namespace": "d"}}, None)
    assert [e.type for e in errors] == ["FieldValueRequired"]
    assert validate(CONFIGMAPS, {"metadata": {"namespace": "d", "generateName": "x-"}}, None) == []


def test_pod_spec_errors() -> None:
    pod = _pod(
        containers=[
            {"name": "a", "image": "x", "ports": [{"containerPort": 70000}]},
            {"name": "a", "volumeMounts": [{"name": "nope", "mountPath": "/m"}]},
        ],
        restartPolicy="Sometimes",
    )
    errors = validate(PODS, pod, None)
    fields = _fields(errors)
    assert "spec.containers[0].ports[0].containerPort" in fields
    assert "spec.containers[1].name" in fields  # duplicate
    assert "spec.containers[1].image" in fields  # required
    assert "spec.containers[1].volumeMounts[0].name" in fields  # unknown volume
    assert "spec.restartPolicy" in fields
    assert validate(PODS, _pod(containers=[]), None)[0].field == "spec.containers"


def test_requests_above_limits_are_invalid() -> None:
    pod = _pod(
        containers=[{"name": "a", "image": "x", "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "500m"}}}]
    )
    assert _fields(validate(PODS, pod, None)) == {"spec.containers[0].resources.requests"}


def test_pod_updates_may_change_only_images_and_a_few_fields() -> None:
    old = _pod()
    apply_defaults(PODS, old)
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "busybox:1.37"
    new["spec"]["activeDeadlineSeconds"] = 60
    assert validate(PODS, new, old) == []
    new["spec"]["restartPolicy"] = "Never"
    errors = validate(PODS, new, old)
    assert [(e.type, e.field) for e in errors] == [("FieldValueForbidden", "spec")]
    assert "pod updates may not change fields" in str(errors[0])


def test_deployment_selector_must_match_template_and_is_immutable() -> None:
    dep = _deployment()
    dep["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    apply_defaults(DEPLOYMENTS, dep)
    errors = validate(DEPLOYMENTS, dep, None)
    assert [e.field for e in errors] == ["spec.template.metadata.labels"]
    assert "`selector` does not match template `labels`" in str(errors[0])

    old = _deployment()
    apply_defaults(DEPLOYMENTS, old)
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"matchLabels": {"app": "web", "tier": "x"}}
    new["spec"]["template"]["metadata"]["labels"]["tier"] = "x"
    assert [e.field for e in validate(DEPLOYMENTS, new, old)] == ["spec.selector"]
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = -1
    assert [e.field for e in validate(DEPLOYMENTS, new, old)] == ["spec.replicas"]


def test_service_cluster_ip_cannot_change_and_ports_are_checked() -> None:
    old: dict[str, Any] = {
        "metadata": {"name": "s", "namespace": "d"},
        "spec": {"clusterIP": "10.96.0.10", "ports": [{"port": 80}]},
    }
    apply_defaults(SERVICES, old)
    new = copy.deepcopy(old)
    new["spec"]["clusterIP"] = "10.96.0.11"
    assert [e.field for e in validate(SERVICES, new, old)] == ["spec.clusterIPs[0]"]
    bad: dict[str, Any] = {
        "metadata": {"name": "s", "namespace": "d"},
        "spec": {"ports": [{"port": 0}, {"port": 80, "nodePort": 30001}]},
    }
    apply_defaults(SERVICES, bad)
    fields = _fields(validate(SERVICES, bad, None))
    assert {"spec.ports[0].port", "spec.ports[0].name", "spec.ports[1].nodePort"} <= fields


def test_secret_data_must_be_base64_and_keys_valid() -> None:
    secret = {"metadata": {"name": "s", "namespace": "d"}, "data": {"ok": "aGk=", "bad": "%%%", "a/b": "aGk="}}
    fields = _fields(validate(SECRETS, secret, None))
    assert fields == {"data[bad]", "data"}


def test_rbac_names_may_contain_colons_and_role_ref_is_immutable() -> None:
    assert validate(CLUSTERROLES, {"kind": "ClusterRole", "metadata": {"name": "system:node"}, "rules": []}) == []
    old: dict[str, Any] = {
        "kind": "RoleBinding",
        "metadata": {"name": "b", "namespace": "d"},
        "roleRef": {"kind": "Role", "name": "r"},
        "subjects": [{"kind": "User", "name": "u"}],
    }
    new = copy.deepcopy(old)
    new["roleRef"]["name"] = "other"
    assert [e.field for e in validate(ROLEBINDINGS, new, old)] == ["roleRef"]


def test_cronjob_schedule_syntax() -> None:
    cron: dict[str, Any] = {
        "metadata": {"name": "c", "namespace": "d"},
        "spec": {
            "schedule": "*/5 * * * *",
            "jobTemplate": {
                "spec": {
                    "template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "i"}]}}
                }
            },
        },
    }
    apply_defaults(CRONJOBS, cron)
    assert validate(CRONJOBS, cron, None) == []
    cron["spec"]["schedule"] = "every minute"
    assert [e.field for e in validate(CRONJOBS, cron, None)] == ["spec.schedule"]


def test_status_for_builds_the_422_kubectl_prints() -> None:
    errors = [
        FieldError("FieldValueRequired", "spec.containers[0].image", None, ""),
        FieldError("FieldValueInvalid", "metadata.name", "Bad", "must be lower case"),
    ]
    status = status_for(errors, "Deployment", "web", "apps")
    assert status["code"] == 422
    assert status["reason"] == "Invalid"
    assert status["message"] == (
        'Deployment.apps "web" is invalid: [spec.containers[0].image: Required value, '
        'metadata.name: Invalid value: "Bad": must be lower case]'
    )
    assert status["details"]["causes"][0] == {
        "reason": "FieldValueRequired",
        "message": "Required value",
        "field": "spec.containers[0].image",
    }
    single = status_for(errors[:1], "Pod", "p")
    assert single["message"] == 'Pod "p" is invalid: spec.containers[0].image: Required value'


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Fraction(1, 2)),
        ("2", Fraction(2)),
        ("128Mi", Fraction(128 * 2**20)),
        ("1G", Fraction(10**9)),
        ("1e3", Fraction(1000)),
        ("0.5", Fraction(1, 2)),
        ("100u", Fraction(1, 10_000)),
    ],
)
def test_quantities_parse_exactly(text: str, value: Fraction) -> None:
    assert parse_quantity(text) == value


def test_quantities_format_back() -> None:
    assert format_quantity(Fraction(1, 2)) == "500m"
    assert format_quantity(Fraction(3)) == "3"
    assert format_quantity(Fraction(256 * 2**20), binary=True) == "256Mi"
    with pytest.raises(ValueError, match="quantities must match"):
        parse_quantity("1.5.5")


def test_secret_string_data_is_folded_into_data_and_not_base64_checked() -> None:
    secret: dict[str, Any] = {
        "metadata": {"name": "s", "namespace": "d"},
        "data": {"a": "b2xk"},
        "stringData": {"a": "new", "plain": "not base64!"},
    }
    apply_defaults(SECRETS, secret)
    assert "stringData" not in secret
    assert secret["data"] == {"a": "bmV3", "plain": "bm90IGJhc2U2NCE="}
    assert secret["type"] == "Opaque"
    assert validate(SECRETS, secret, None) == []
    assert validate(CONFIGMAPS, {"metadata": {"name": "c", "namespace": "d"}, "binaryData": {"x": "!!"}}, None)


def test_owner_references_need_full_names_and_one_controller() -> None:
    from controlplane.resources import REPLICASETS

    ref = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d", "uid": "u", "controller": True}
    meta = {"name": "rs", "namespace": "d", "ownerReferences": [ref, {**ref, "uid": "v"}, {"kind": "X"}]}
    fields = [e.field for e in validate(REPLICASETS, {"metadata": meta, "spec": {}}, None)]
    assert "metadata.ownerReferences[2].uid" in fields
    assert "metadata.ownerReferences" in fields


def test_hpa_and_network_policy_rules() -> None:
    from controlplane.resources import HORIZONTALPODAUTOSCALERS, NETWORKPOLICIES

    hpa = {"metadata": {"name": "h", "namespace": "d"}, "spec": {"minReplicas": 5, "maxReplicas": 2}}
    assert _fields(validate(HORIZONTALPODAUTOSCALERS, hpa, None)) == {"spec.scaleTargetRef", "spec.maxReplicas"}
    netpol: dict[str, Any] = {
        "metadata": {"name": "n", "namespace": "d"},
        "spec": {"podSelector": {}, "ingress": [{"ports": [{"protocol": "ICMP"}]}]},
    }
    apply_defaults(NETWORKPOLICIES, netpol)
    assert _fields(validate(NETWORKPOLICIES, netpol, None)) == {"spec.ingress[0].ports[0].protocol"}
    assert netpol["spec"]["policyTypes"] == ["Ingress"]


def test_limit_range_bounds_must_nest_and_quota_values_be_non_negative() -> None:
    from controlplane.resources import LIMITRANGES, RESOURCEQUOTAS

    limit_range = {
        "metadata": {"name": "l", "namespace": "d"},
        "spec": {
            "limits": [{"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}, "default": {"cpu": "500m"}}]
        },
    }
    fields = _fields(validate(LIMITRANGES, limit_range, None))
    assert fields == {"spec.limits[0].max[cpu]", "spec.limits[0].default[cpu]"}
    quota = {"metadata": {"name": "q", "namespace": "d"}, "spec": {"hard": {"pods": "-1", "cpu": "x"}}}
    assert _fields(validate(RESOURCEQUOTAS, quota, None)) == {"spec.hard[pods]", "spec.hard[cpu]"}


def test_leaving_node_port_type_drops_allocated_node_ports() -> None:
    from controlplane.validation import drop_type_dependent_fields

    old: dict[str, Any] = {
        "metadata": {"name": "s", "namespace": "d"},
        "spec": {
            "type": "NodePort",
            "externalTrafficPolicy": "Cluster",
            "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}],
        },
    }
    new = copy.deepcopy(old)
    new["spec"]["type"] = "ClusterIP"
    drop_type_dependent_fields(new, old)
    apply_defaults(SERVICES, new)
    assert new["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert "externalTrafficPolicy" not in new["spec"]
    assert validate(SERVICES, new, old) == []
