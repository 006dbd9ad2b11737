"""Strategic merge patch and JSON merge patch."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controlplane.patch import PatchError, json_merge, strategic_merge
from controlplane.resources import DEPLOYMENTS, NODES, PODS, SERVICES


def _deployment(image: str, *, extra_container: bool = False) -> dict[str, Any]:
    containers: list[dict[str, Any]] = [
        {
            "name": "web",
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "ports": [{"containerPort": 80, "protocol": "TCP"}],
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
        }
    ]
    if extra_container:
        containers.append({"name": "sidecar", "image": "busybox"})
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}, "finalizers": ["a"]},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}},
        },
    }


def test_kubectl_apply_patch_with_set_element_order_changes_only_the_image() -> None:
    # The shape kubectl v1.32 client-side apply sends when only the image changed.
    original = _deployment("nginx:1.25")
    patch = {
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "web"}],
                    "containers": [{"image": "nginx:1.26", "name": "web"}],
                }
            }
        },
    }
    result = strategic_merge(original, patch, DEPLOYMENTS)
    container = result["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx:1.26"
    assert container["imagePullPolicy"] == "IfNotPresent"  # server-set fields survive
    assert container["env"] == original["spec"]["template"]["spec"]["containers"][0]["env"]
    assert result["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] == "{}"
    assert original["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"  # input untouched


def test_containers_merge_by_name_and_new_ones_are_appended() -> None:
    original = _deployment("nginx")
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "log", "image": "busybox"}]}}}}
    containers = strategic_merge(original, patch, DEPLOYMENTS)["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["web", "log"]


def test_patch_delete_directive_removes_a_list_element_by_merge_key() -> None:
    original = _deployment("nginx", extra_container=True)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}}
    containers = strategic_merge(original, patch, DEPLOYMENTS)["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["web"]


def test_patch_replace_directive_in_a_list_replaces_the_whole_list() -> None:
    original = _deployment("nginx", extra_container=True)
    patch = {"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}}}}
    containers = strategic_merge(original, patch, DEPLOYMENTS)["spec"]["template"]["spec"]["containers"]
    assert containers == [{"name": "only", "image": "x"}]


def test_env_merges_by_name_and_null_deletes_a_field() -> None:
    original = _deployment("nginx")
    patch = {
        "spec": {
            "replicas": None,
            "template": {"spec": {"containers": [{"name": "web", "env": [{"name": "B", "value": "20"}]}]}},
        }
    }
    result = strategic_merge(original, patch, DEPLOYMENTS)
    assert "replicas" not in result["spec"]
    assert result["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "20"},
    ]


def test_set_element_order_reorders_merged_lists() -> None:
    original = _deployment("nginx", extra_container=True)
    patch = {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "web"}]}}}}
    containers = strategic_merge(original, patch, DEPLOYMENTS)["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["sidecar", "web"]


def test_atomic_lists_are_replaced() -> None:
    pod = {"spec": {"containers": [{"name": "c", "image": "i", "args": ["a", "b"]}], "tolerations": [{"key": "x"}]}}
    patch = {"spec": {"containers": [{"name": "c", "args": ["z"]}], "tolerations": [{"key": "y"}]}}
    result = strategic_merge(pod, patch, PODS)
    assert result["spec"]["containers"][0]["args"] == ["z"]
    assert result["spec"]["tolerations"] == [{"key": "y"}]


def test_finalizers_are_a_set_and_delete_from_primitive_list_removes() -> None:
    original = _deployment("nginx")
    added = strategic_merge(original, {"metadata": {"finalizers": ["b", "a"]}}, DEPLOYMENTS)
    assert added["metadata"]["finalizers"] == ["a", "b"]
    removed = strategic_merge(added, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}, DEPLOYMENTS)
    assert removed["metadata"]["finalizers"] == ["b"]


def test_service_ports_merge_by_port_number() -> None:
    svc = {"spec": {"ports": [{"port": 80, "targetPort": 8080, "nodePort": 30001}, {"port": 443}]}}
    result = strategic_merge(svc, {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}, SERVICES)
    assert result["spec"]["ports"] == [{"port": 80, "targetPort": 9090, "nodePort": 30001}, {"port": 443}]


def test_node_conditions_merge_by_type() -> None:
    node = {
        "status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "DiskPressure", "status": "False"}]}
    }
    result = strategic_merge(node, {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}, NODES)
    assert result["status"]["conditions"] == [
        {"type": "Ready", "status": "True"},
        {"type": "DiskPressure", "status": "False"},
    ]


def test_retain_keys_drops_fields_not_listed() -> None:
    original = _deployment("nginx")
    original["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    assert strategic_merge(original, patch, DEPLOYMENTS)["spec"]["strategy"] == {"type": "Recreate"}


def test_map_level_replace_and_delete_directives() -> None:
    original = {"metadata": {"labels": {"a": "1", "b": "2"}, "annotations": {"x": "y"}}}
    patch = {"metadata": {"labels": {"$patch": "replace", "c": "3"}, "annotations": {"$patch": "delete"}}}
    assert strategic_merge(original, patch, PODS) == {"metadata": {"labels": {"c": "3"}}}


@pytest.mark.parametrize(
    "patch",
    [
        {"spec": {"$patch": "explode"}},
        {"spec": {"$unknown": 1}},
        {"spec": {"containers": [{"image": "no-name"}]}},
        {"$patch": "delete"},
    ],
)
def test_malformed_patches_raise_patch_error(patch: dict[str, Any]) -> None:
    with pytest.raises(PatchError):
        strategic_merge({"spec": {"containers": []}}, patch, PODS)


def test_json_merge_follows_rfc7386_examples() -> None:
    cases = [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ]
    for original, patch, expected in cases:
        assert json_merge(original, patch) == expected, (original, patch)


_scalars = st.one_of(st.integers(), st.text(max_size=5), st.booleans())
_keys = st.text(alphabet="abcxyz", min_size=1, max_size=3)
_maps = st.recursive(
    st.dictionaries(_keys, _scalars, max_size=4),
    lambda children: st.dictionaries(_keys, st.one_of(_scalars, children), max_size=4),
    max_leaves=12,
)


@given(original=_maps, patch=_maps)
def test_without_lists_or_directives_strategic_merge_equals_json_merge(
    original: dict[str, Any], patch: dict[str, Any]
) -> None:
    assert strategic_merge(original, patch, PODS) == json_merge(original, patch)


@given(image=st.text(alphabet="abc:.1", min_size=1, max_size=8), replicas=st.integers(0, 5))
def test_applying_the_same_patch_twice_changes_nothing_more(image: str, replicas: int) -> None:
    patch = {
        "spec": {
            "replicas": replicas,
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "web"}],
                    "containers": [{"name": "web", "image": image, "env": [{"name": "C", "value": "3"}]}],
                }
            },
        }
    }
    once = strategic_merge(_deployment("nginx"), patch, DEPLOYMENTS)
    assert strategic_merge(once, copy.deepcopy(patch), DEPLOYMENTS) == once
    assert json.loads(json.dumps(once)) == once


def test_changing_a_volume_source_uses_retain_keys_inside_the_list_element() -> None:
    pod = {"spec": {"volumes": [{"name": "v", "emptyDir": {}}, {"name": "w", "emptyDir": {}}]}}
    patch = {
        "spec": {
            "$setElementOrder/volumes": [{"name": "v"}, {"name": "w"}],
            "volumes": [{"$retainKeys": ["configMap", "name"], "configMap": {"name": "cfg"}, "name": "v"}],
        }
    }
    assert strategic_merge(pod, patch, PODS)["spec"]["volumes"] == [
        {"name": "v", "configMap": {"name": "cfg"}},
        {"name": "w", "emptyDir": {}},
    ]
