"""Unknown fields: what Kubernetes' strict decoding rejects (kubectl sends `fieldValidation=Strict`
by default) and otherwise silently drops, since typed objects cannot hold fields their type lacks.

The field names come from `fields.json` (see schema_gen.py), a compact form of the Kubernetes
OpenAPI types: for each model, its JSON field names mapped to the nested type — a model name,
"[]X" for a list of X, "{}X" for a map of X, or "" for a leaf whose value we do not inspect.
"""

from __future__ import annotations

import functools
import json
from importlib import resources as importlib_resources
from typing import Any

from controlplane.resources import Resource

__all__ = ["prune_unknown_fields", "strict_decoding_message"]


@functools.cache
def _schema() -> dict[str, Any]:
    text = importlib_resources.files("controlplane.validation").joinpath("fields.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def prune_unknown_fields(resource: Resource, obj: dict[str, Any]) -> list[str]:
    """Remove the fields `resource`'s kind does not define, in place; returns their paths
    (e.g. "spec.template.spec.containers[0].imagePullPolice"). Kinds without a schema are left alone."""
    schema = _schema()
    model = schema["kinds"].get(f"{resource.group_version}/{resource.kind}")
    if model is None:
        return []
    unknown: list[str] = []
    _walk_model(schema["models"], model, obj, "", unknown)
    return unknown


def _walk_model(models: dict[str, dict[str, str]], model: str, value: Any, path: str, unknown: list[str]) -> None:
    if not isinstance(value, dict):
        return
    fields = models[model]
    for key in list(value):
        at = f"{path}.{key}" if path else key
        spec = fields.get(key)
        if spec is None:
            unknown.append(at)
            del value[key]
        elif spec:
            _walk(models, spec, value[key], at, unknown)


def _walk(models: dict[str, dict[str, str]], spec: str, value: Any, path: str, unknown: list[str]) -> None:
    if spec.startswith("[]"):
        if isinstance(value, list):
            for i, item in enumerate(value):
                _walk(models, spec[2:], item, f"{path}[{i}]", unknown)
    elif spec.startswith("{}"):
        if isinstance(value, dict):
            for key, item in value.items():
                _walk(models, spec[2:], item, f"{path}[{key}]", unknown)
    else:
        _walk_model(models, spec, value, path, unknown)


def strict_decoding_message(resource: Resource, unknown: list[str]) -> str:
    """The 400 BadRequest message Kubernetes gives for unknown fields under fieldValidation=Strict."""
    fields = ", ".join(f'unknown field "{path}"' for path in unknown)
    return (
        f'{resource.kind} in version "{resource.version}" cannot be handled as a {resource.kind}: '
        f"strict decoding error: {fields}"
    )
