"""Protobuf request bodies as kubectl v1.32 sends them (captured from `kubectl create …`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.apiserver.protobuf import MAGIC, ProtobufError, UnsupportedKind, decode

DATA = Path(__file__).parent / "data"


def test_kubectl_create_deployment_body_decodes_to_the_json_object() -> None:
    obj = decode((DATA / "deployment.pb").read_bytes())
    assert obj["apiVersion"] == "apps/v1"
    assert obj["kind"] == "Deployment"
    assert obj["metadata"] == {"name": "d1", "labels": {"app": "d1"}}
    spec = obj["spec"]
    assert spec["replicas"] == 3
    assert spec["selector"] == {"matchLabels": {"app": "d1"}}
    container = spec["template"]["spec"]["containers"][0]
    assert container == {
        "name": "nginx",
        "image": "nginx",
        "command": ["sleep", "100"],
        "ports": [{"containerPort": 8080}],
    }


def test_empty_strings_in_repeated_fields_are_kept_core_api_group() -> None:
    role = decode((DATA / "role.pb").read_bytes())
    assert role["rules"] == [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]


def test_secret_bytes_become_base64_and_int_or_string_becomes_a_number() -> None:
    assert decode((DATA / "secret.pb").read_bytes())["data"] == {"a": "Yg=="}
    port = decode((DATA / "service.pb").read_bytes())["spec"]["ports"][0]
    assert port == {"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 30080}


def test_truncated_body_is_a_protobuf_error() -> None:
    body = (DATA / "deployment.pb").read_bytes()
    with pytest.raises(ProtobufError):
        decode(body[: len(body) // 2])
    with pytest.raises(ProtobufError):
        decode(b"not protobuf")


def test_kind_without_a_schema_is_unsupported() -> None:
    # Unknown{typeMeta{apiVersion "v1", kind "Widget"}}
    type_meta = b"\x0a\x02v1\x12\x06Widget"
    with pytest.raises(UnsupportedKind):
        decode(MAGIC + b"\x0a" + bytes([len(type_meta)]) + type_meta)
