"""Server-side apply: fields a manager stops applying are removed, others' fields stay."""

from __future__ import annotations

from controlplane.apiserver.apply import apply, from_fields_v1, leaf_paths, to_fields_v1


def test_fields_v1_round_trips_leaf_paths() -> None:
    obj = {"metadata": {"labels": {"a": "1"}}, "spec": {"replicas": 2, "ports": [{"port": 80}]}}
    paths = leaf_paths(obj)
    assert paths == {("metadata", "labels", "a"), ("spec", "replicas"), ("spec", "ports")}
    assert to_fields_v1(paths)["f:spec"] == {"f:ports": {}, "f:replicas": {}}
    assert from_fields_v1(to_fields_v1(paths)) == paths


def test_reapplying_without_a_field_removes_it_but_keeps_other_managers_fields() -> None:
    first = apply(None, {"data": {"a": "1", "b": "2"}}, manager="m", api_version="v1")
    live = {**first, "metadata": {**first["metadata"], "labels": {"x": "y"}}}
    second = apply(live, {"data": {"a": "3"}}, manager="m", api_version="v1")
    assert second["data"] == {"a": "3"}
    assert second["metadata"]["labels"] == {"x": "y"}
    assert [m["manager"] for m in second["metadata"]["managedFields"]] == ["m"]


def test_another_manager_does_not_remove_fields_it_never_applied() -> None:
    first = apply(None, {"data": {"a": "1"}}, manager="m1", api_version="v1")
    second = apply(first, {"data": {"b": "2"}}, manager="m2", api_version="v1")
    assert second["data"] == {"a": "1", "b": "2"}
    assert {m["manager"] for m in second["metadata"]["managedFields"]} == {"m1", "m2"}
