"""`metav1.LabelSelector` objects (matchLabels + matchExpressions) as matchers and query strings.

Parsing of string selectors lives with the API server (`controlplane.apiserver.selectors`); the
controllers turn structured selectors into the same `Requirement`s so both agree on matching.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controlplane.apiserver.selectors import Requirement, labels_match

_OPS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


class SelectorError(ValueError):
    """A structured selector the controllers cannot interpret (treated as selecting nothing)."""


def requirements(selector: Mapping[str, Any] | None) -> list[Requirement]:
    """An empty or missing selector yields no requirements (matches everything); callers decide
    whether that is allowed (workload controllers refuse it, Services treat it as "no selector")."""
    reqs: list[Requirement] = []
    if not selector:
        return reqs
    for key, value in sorted((selector.get("matchLabels") or {}).items()):
        reqs.append(Requirement(str(key), "=", frozenset([str(value)])))
    for expr in selector.get("matchExpressions") or ():
        op = _OPS.get(str(expr.get("operator")))
        if op is None:
            raise SelectorError(f"unknown operator {expr.get('operator')!r}")
        reqs.append(Requirement(str(expr.get("key")), op, frozenset(str(v) for v in expr.get("values") or ())))
    return reqs


def matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    return labels_match(requirements(selector), labels)


def map_matches(selector: Mapping[str, str] | None, labels: Mapping[str, str] | None) -> bool:
    """Equality-only selectors (Service.spec.selector, ReplicationController.spec.selector)."""
    labels = labels or {}
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def to_query(selector: Mapping[str, Any] | None) -> str:
    """The `labelSelector=` string form of a structured selector."""
    parts: list[str] = []
    for req in requirements(selector):
        values = ",".join(sorted(req.values))
        if req.op == "=":
            parts.append(f"{req.key}={values}")
        elif req.op in ("in", "notin"):
            parts.append(f"{req.key} {req.op} ({values})")
        elif req.op == "exists":
            parts.append(req.key)
        else:
            parts.append(f"!{req.key}")
    return ",".join(parts)
