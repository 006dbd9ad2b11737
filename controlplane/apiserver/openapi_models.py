"""OpenAPI v3 schemas of the kinds we serve, for `kubectl explain`: made on first use from the model
classes of the official Kubernetes Python client (field names, JSON types, descriptions, required
fields), which carry the upstream OpenAPI types. Nothing generated is committed; where that client is
not installed the documents simply have no schemas (explain then reports the kind as unknown).

Schema names follow the upstream layout closely enough for kubectl to print `<PodSpec>`-style types:
`io.k8s.<version>.<Type>` from the client's `V1PodSpec`, `CoreV1Event`, …"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

from controlplane.resources import Resource
from controlplane.validation.schema_gen import model_name

_MODEL = re.compile(r"^([A-Z][a-z]+)?(V\d+(?:alpha\d+|beta\d+)?)([A-Z]\w*)$")
_SCALARS: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "int": {"type": "integer", "format": "int64"},
    "bool": {"type": "boolean"},
    "float": {"type": "number", "format": "double"},
    "datetime": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
    "bytearray": {"type": "string", "format": "byte"},
}


def schema_name(model: str) -> str:
    match = _MODEL.match(model)
    if match is None:
        return f"io.k8s.{model}"
    prefix, version, rest = match.groups()
    group = f"{prefix.lower()}." if prefix else ""
    return f"io.k8s.{group}{version.lower()}.{rest}"


def _ref(model: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{schema_name(model)}"}


def _description(doc: str | None) -> str:
    """The first paragraph of a generated class docstring (the rest documents the Python class)."""
    return (doc or "").strip().split("\n\n")[0].strip()


class _Builder:
    def __init__(self, models: Any) -> None:
        self._models = models
        self.schemas: dict[str, dict[str, Any]] = {}

    def is_model(self, name: str) -> bool:
        return hasattr(getattr(self._models, name, None), "openapi_types")

    def type_schema(self, type_name: str) -> dict[str, Any]:
        list_match = re.fullmatch(r"List\[(.+)\]", type_name)
        if list_match:
            return {"type": "array", "items": self.type_schema(list_match.group(1))}
        map_match = re.fullmatch(r"Dict\[str, (.+)\]", type_name)
        if map_match:
            return {"type": "object", "additionalProperties": self.type_schema(map_match.group(1))}
        if self.is_model(type_name):
            self.visit(type_name)
            return _ref(type_name)
        return dict(_SCALARS.get(type_name, {}))  # object: IntOrString, Quantity, RawExtension — any value

    def visit(self, model: str) -> None:
        name = schema_name(model)
        if name in self.schemas:
            return
        cls = getattr(self._models, model)
        schema: dict[str, Any] = {"type": "object", "description": _description(cls.__doc__)}
        self.schemas[name] = schema  # before the fields: models refer to themselves (JSONSchemaProps)
        fields = getattr(cls, "model_fields", {})
        properties: dict[str, Any] = {}
        required: list[str] = []
        for attr, type_name in cls.openapi_types.items():
            json_name = cls.attribute_map[attr]
            prop = self.type_schema(type_name)
            if "$ref" in prop:
                prop = {"allOf": [prop]}  # upstream's form: a description may sit next to the reference
            info = fields.get(attr)
            if info is not None and info.description:
                prop["description"] = info.description
            if info is not None and info.is_required():
                required.append(json_name)
            properties[json_name] = prop
        schema["properties"] = properties
        if required:
            schema["required"] = required


@functools.cache
def _client_models() -> Any:
    try:
        from kubernetes.client import models
    except ImportError:
        return None
    return models


def schemas_for(resources: Iterable[Resource]) -> dict[str, dict[str, Any]]:
    """The components.schemas of one group-version document: its kinds and every type they use."""
    return dict(_schemas_for(tuple(resources)))


@functools.cache
def _schemas_for(resources: tuple[Resource, ...]) -> dict[str, dict[str, Any]]:
    models = _client_models()
    if models is None:
        return {}
    builder = _Builder(models)
    for res in resources:
        model = model_name(res)
        if not builder.is_model(model):
            continue
        builder.visit(model)
        gvk = {"group": res.group, "version": res.version, "kind": res.kind}
        builder.schemas[schema_name(model)]["x-kubernetes-group-version-kind"] = [gvk]
    return builder.schemas
