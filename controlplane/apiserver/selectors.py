"""Label and field selectors as the list/watch query parameters carry them (labels.Parse and
fields.ParseSelector grammars): `a=b,c!=d,e in (x,y),f notin (z),g,!h` and `spec.nodeName=n1`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controlplane.apiserver.errors import BadRequest

_SET_RE = re.compile(r"^\s*(!?)\s*([^\s!=,()]+)\s*(?:(in|notin)\s*\(([^)]*)\))?\s*$")
_EQ_RE = re.compile(r"^\s*([^\s!=,()]+)\s*(==|=|!=)\s*([^\s!=,()]*)\s*$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return present and value in self.values
        if self.op == "in":
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        if self.op == "exists":
            return present
        return not present  # "!"


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p for p in parts if p.strip()]


def parse_label_selector(text: str | None) -> list[Requirement]:
    if not text:
        return []
    reqs = []
    for part in _split_top_level(text):
        eq = _EQ_RE.match(part)
        if eq:
            key, op, value = eq.groups()
            reqs.append(Requirement(key, "!=" if op == "!=" else "=", frozenset([value])))
            continue
        m = _SET_RE.match(part)
        if not m:
            raise BadRequest(f"unable to parse requirement: {part.strip()!r}")
        neg, key, setop, values = m.groups()
        if setop:
            if neg:
                raise BadRequest(f"unable to parse requirement: {part.strip()!r}")
            vals = frozenset(v.strip() for v in values.split(",") if v.strip())
            reqs.append(Requirement(key, setop, vals))
        else:
            reqs.append(Requirement(key, "!" if neg else "exists"))
    return reqs


def labels_match(reqs: list[Requirement], labels: Mapping[str, str] | None) -> bool:
    labels = labels or {}
    return all(r.matches(labels) for r in reqs)


@dataclass(frozen=True)
class FieldRequirement:
    path: tuple[str, ...]
    value: str
    negate: bool


def parse_field_selector(text: str | None) -> list[FieldRequirement]:
    if not text:
        return []
    reqs = []
    for part in _split_top_level(text):
        m = _EQ_RE.match(part)
        if not m:
            raise BadRequest(f"invalid field selector: {part.strip()!r}")
        key, op, value = m.groups()
        reqs.append(FieldRequirement(tuple(key.split(".")), value, op == "!="))
    return reqs


def field_value(obj: Mapping[str, Any], path: tuple[str, ...]) -> str:
    """The selector's view of a field: missing fields and nulls read as "" (as in the apiserver)."""
    cur: Any = obj
    for step in path:
        if not isinstance(cur, Mapping):
            return ""
        cur = cur.get(step)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def fields_match(reqs: list[FieldRequirement], obj: Mapping[str, Any]) -> bool:
    return all((field_value(obj, r.path) == r.value) != r.negate for r in reqs)
