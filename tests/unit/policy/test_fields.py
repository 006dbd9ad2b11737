"""Unknown-field detection and the committed field schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from controlplane.resources import ALL_RESOURCES, DEPLOYMENTS, PODS, SERVICES
from controlplane.validation import prune_unknown_fields, strict_decoding_message
from controlplane.validation.schema_gen import build


def test_committed_schema_matches_the_generator() -> None:
    pytest.importorskip("kubernetes")
    committed = json.loads((Path(__file__).parents[3] / "controlplane/validation/fields.json").read_text())
    assert committed == build()


def test_every_served_kind_has_a_schema() -> None:
    for res in ALL_RESOURCES:
        assert prune_unknown_fields(res, {"apiVersion": res.group_version, "kind": res.kind, "metadata": {}}) == []


def test_unknown_fields_are_found_at_any_depth_and_removed() -> None:
    dep: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "labels": {"any-key": "ok"}, "nmae": "typo"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {
                    "containers": [
                        {
                            "name": "c",
                            "image": "i",
                            "imagePullPolice": "Always",
                            "resources": {"limits": {"cpu": 1}},
                            "ports": [{"containerPort": 80, "hostprot": 1}],
                        }
                    ]
                },
            },
        },
        "extra": True,
    }
    unknown = prune_unknown_fields(DEPLOYMENTS, dep)
    assert unknown == [
        "metadata.nmae",
        "spec.template.spec.containers[0].imagePullPolice",
        "spec.template.spec.containers[0].ports[0].hostprot",
        "extra",
    ]
    assert "extra" not in dep
    assert dep["spec"]["template"]["spec"]["containers"][0] == {
        "name": "c",
        "image": "i",
        "resources": {"limits": {"cpu": 1}},
        "ports": [{"containerPort": 80}],
    }
    assert prune_unknown_fields(DEPLOYMENTS, dep) == []


def test_int_or_string_and_status_fields_are_known() -> None:
    svc = {"spec": {"ports": [{"port": 80, "targetPort": "http"}]}, "status": {"loadBalancer": {"ingress": []}}}
    assert prune_unknown_fields(SERVICES, svc) == []
    pod = {
        "status": {"phase": "Running", "containerStatuses": [{"name": "c", "state": {"running": {"startedAt": "x"}}}]}
    }
    assert prune_unknown_fields(PODS, pod) == []


def test_strict_decoding_message_reads_like_kubernetes() -> None:
    assert strict_decoding_message(DEPLOYMENTS, ["spec.foo", "bar"]) == (
        'Deployment in version "v1" cannot be handled as a Deployment: '
        'strict decoding error: unknown field "spec.foo", unknown field "bar"'
    )
