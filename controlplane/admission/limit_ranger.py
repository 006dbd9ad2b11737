"""LimitRanger: apply the namespace's LimitRange defaults to pod containers, then enforce min, max and
maxLimitRequestRatio per Container and per Pod (sum over containers)."""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from controlplane.admission.errors import Forbidden
from controlplane.admission.interfaces import Attributes, ObjectReader
from controlplane.resources import LIMITRANGES, PODS
from controlplane.validation.quantity import QuantityError, format_quantity, parse_quantity
from controlplane.validation.shapes import as_dict, dict_items

__all__ = ["LimitRanger"]


def _q(value: Any) -> Fraction | None:
    try:
        return parse_quantity(value)
    except QuantityError:
        return None


def _fmt(name: str, value: Fraction) -> str:
    return format_quantity(value, binary=name in ("memory", "ephemeral-storage", "storage"))


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for key in ("initContainers", "containers") for c in dict_items(spec.get(key))]


def _apply_container_defaults(limit: Mapping[str, Any], container: dict[str, Any]) -> None:
    resources = container.get("resources")
    if resources is None:
        resources = container["resources"] = {}
    if not isinstance(resources, dict):
        return  # malformed: validation reports it
    limits = resources.setdefault("limits", {})
    requests = resources.setdefault("requests", {})
    if not isinstance(limits, dict) or not isinstance(requests, dict):
        return
    for name, value in as_dict(limit.get("default")).items():
        limits.setdefault(name, value)
    # defaultRequest falls back to default, as the LimitRange API defaults it.
    for name, value in {**as_dict(limit.get("default")), **as_dict(limit.get("defaultRequest"))}.items():
        requests.setdefault(name, value)
    if not limits:
        del resources["limits"]
    if not requests:
        del resources["requests"]


def _check(
    kind: str, limit: Mapping[str, Any], requests: dict[str, Fraction], limits: dict[str, Fraction]
) -> list[str]:
    problems: list[str] = []
    for name, raw in as_dict(limit.get("min")).items():
        bound = _q(raw)
        if bound is None:
            continue
        if name not in requests:
            problems.append(f"minimum {name} usage per {kind} is {raw}.  No request is specified")
        elif requests[name] < bound:
            problems.append(f"minimum {name} usage per {kind} is {raw}, but request is {_fmt(name, requests[name])}")
    for name, raw in as_dict(limit.get("max")).items():
        bound = _q(raw)
        if bound is None:
            continue
        if name not in limits:
            problems.append(f"maximum {name} usage per {kind} is {raw}.  No limit is specified")
        elif limits[name] > bound:
            problems.append(f"maximum {name} usage per {kind} is {raw}, but limit is {_fmt(name, limits[name])}")
    for name, raw in as_dict(limit.get("maxLimitRequestRatio")).items():
        bound = _q(raw)
        if bound is None or name not in limits:
            continue
        request = requests.get(name)
        if request is None or request == 0:
            problems.append(f"{name} max limit to request ratio per {kind} is {raw}, but no request is specified")
        elif limits[name] / request > bound:
            ratio = format_quantity(Fraction(round(limits[name] / request * 1000), 1000))
            problems.append(f"{name} max limit to request ratio per {kind} is {raw}, but provided ratio is {ratio}")
    return problems


def _parsed(values: Any) -> dict[str, Fraction]:
    out: dict[str, Fraction] = {}
    for name, raw in as_dict(values).items():
        value = _q(raw)
        if value is not None:
            out[name] = value
    return out


class LimitRanger:
    name = "LimitRanger"

    def __init__(self, reader: ObjectReader) -> None:
        self._reader = reader

    async def admit(self, attrs: Attributes) -> None:
        if attrs.resource is not PODS or attrs.operation != "CREATE" or attrs.subresource or attrs.obj is None:
            return
        if not attrs.namespace:
            return
        ranges = list(await self._reader.list(LIMITRANGES, attrs.namespace))
        if not ranges:
            return
        spec = attrs.obj.get("spec")
        if not isinstance(spec, dict):
            return
        containers = _containers(spec)
        problems: list[str] = []
        for limit_range in ranges:
            for limit in dict_items(as_dict(limit_range.get("spec")).get("limits")):
                if limit.get("type") != "Container":
                    continue
                for container in containers:
                    _apply_container_defaults(limit, container)
        for limit_range in ranges:
            for limit in dict_items(as_dict(limit_range.get("spec")).get("limits")):
                kind = limit.get("type")
                if kind == "Container":
                    for container in containers:
                        res = as_dict(container.get("resources"))
                        problems += _check("Container", limit, _parsed(res.get("requests")), _parsed(res.get("limits")))
                elif kind == "Pod":
                    requests: dict[str, Fraction] = {}
                    limits: dict[str, Fraction] = {}
                    for container in dict_items(spec.get("containers")):
                        res = as_dict(container.get("resources"))
                        for name, value in _parsed(res.get("requests")).items():
                            requests[name] = requests.get(name, Fraction(0)) + value
                        for name, value in _parsed(res.get("limits")).items():
                            limits[name] = limits.get(name, Fraction(0)) + value
                    problems += _check("Pod", limit, requests, limits)
        if problems:
            raise Forbidden(PODS, attrs.name, "[" + ", ".join(problems) + "]" if len(problems) > 1 else problems[0])
