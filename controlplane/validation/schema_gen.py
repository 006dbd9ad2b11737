"""Regenerates `fields.json`, the field names of every kind we serve, from the Kubernetes OpenAPI
types as the official Python client exposes them (a test dependency, not a runtime one):

    .venv/bin/python -m controlplane.validation.schema_gen > controlplane/validation/fields.json

Only names and nesting are kept (scalars become leaves): that is what unknown-field detection needs.
tests/unit/policy/test_fields.py fails when the committed file and this generator disagree.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from controlplane.resources import ALL_RESOURCES, Resource

_SPECIAL_MODELS = {("", "Event"): "CoreV1Event", ("events.k8s.io", "Event"): "EventsV1Event"}


def model_name(res: Resource) -> str:
    """The official client's model class for a kind (most are `<Version><Kind>`)."""
    return _SPECIAL_MODELS.get((res.group, res.kind), f"{res.version.capitalize()}{res.kind}")


def build() -> dict[str, Any]:
    from kubernetes.client import models

    out_models: dict[str, dict[str, str]] = {}

    def spec_of(type_name: str) -> str:
        list_match = re.fullmatch(r"List\[(.+)\]", type_name)
        if list_match:
            inner = spec_of(list_match.group(1))
            return "[]" + inner if inner else ""
        map_match = re.fullmatch(r"Dict\[str, (.+)\]", type_name)
        if map_match:
            inner = spec_of(map_match.group(1))
            return "{}" + inner if inner else ""
        if hasattr(models, type_name) and hasattr(getattr(models, type_name), "openapi_types"):
            visit(type_name)
            return type_name
        return ""  # a scalar, IntOrString, Quantity, RawExtension: any value

    def visit(name: str) -> None:
        if name in out_models:
            return
        cls = getattr(models, name)
        fields: dict[str, str] = {}
        out_models[name] = fields
        for attr, type_name in cls.openapi_types.items():
            fields[cls.attribute_map[attr]] = spec_of(type_name)

    kinds: dict[str, str] = {}
    for res in ALL_RESOURCES:
        name = model_name(res)
        visit(name)
        kinds[f"{res.group_version}/{res.kind}"] = name
    return {"kinds": kinds, "models": dict(sorted(out_models.items()))}


def main() -> int:
    json.dump(build(), sys.stdout, indent=None, separators=(",", ":"), sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
