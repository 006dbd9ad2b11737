"""Merge patches: Kubernetes strategic merge patch and RFC 7386 JSON merge patch.

Strategic merge needs to know, per list field, whether the list is atomic (replaced whole), a set of
primitives (union) or a list of objects merged by a key. Kubernetes reads this from the Go struct tags
(`patchStrategy`, `patchMergeKey`); we keep the same facts in `LIST_STRATEGIES`, keyed by the list's
field name and the name of the field that holds the object containing it, which is unambiguous for the
resources we serve. Lists not in the table are atomic, as in Kubernetes.

Directives (sig-api-machinery "strategic-merge-patch.md"): `$patch: replace|delete|merge` in maps and
list elements, `$retainKeys`, `$setElementOrder/<list>`, `$deleteFromPrimitiveList/<list>`, and `null`
values that delete a key. kubectl's client-side apply sends `$setElementOrder` for every merged list.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from controlplane.resources import Resource

__all__ = ["LIST_STRATEGIES", "ListStrategy", "PatchError", "json_merge", "strategic_merge"]

_PATCH = "$patch"
_RETAIN = "$retainKeys"
_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVE = "$deleteFromPrimitiveList/"

_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


class PatchError(ValueError):
    """The patch is malformed (unknown directive, wrong type for a directive): a 400/422 for the client."""


@dataclass(frozen=True)
class ListStrategy:
    """`merge_key` None with merge=True means a set of primitives (e.g. finalizers)."""

    merge_key: str | None


def _strategies() -> dict[tuple[str, str], ListStrategy]:
    table: dict[tuple[str, str], ListStrategy] = {}
    for parent in _CONTAINER_LISTS:
        table[(parent, "ports")] = ListStrategy("containerPort")
        table[(parent, "env")] = ListStrategy("name")
        table[(parent, "volumeMounts")] = ListStrategy("mountPath")
        table[(parent, "volumeDevices")] = ListStrategy("devicePath")
    # PodSpec lists; "spec" is also the parent of a Service's ports (merge key "port").
    for field, key in (
        ("containers", "name"),
        ("initContainers", "name"),
        ("ephemeralContainers", "name"),
        ("volumes", "name"),
        ("imagePullSecrets", "name"),
        ("hostAliases", "ip"),
        ("topologySpreadConstraints", "topologyKey"),
        ("ports", "port"),
    ):
        table[("spec", field)] = ListStrategy(key)
    table[("spec", "podCIDRs")] = ListStrategy(None)
    table[("metadata", "finalizers")] = ListStrategy(None)
    table[("metadata", "ownerReferences")] = ListStrategy("uid")
    table[("status", "conditions")] = ListStrategy("type")
    table[("status", "addresses")] = ListStrategy("type")
    table[("status", "podIPs")] = ListStrategy("ip")
    table[("status", "hostIPs")] = ListStrategy("ip")
    return table


LIST_STRATEGIES: dict[tuple[str, str], ListStrategy] = _strategies()


def json_merge(original: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null removes a member, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge(result.get(key), value)
    return result


def strategic_merge(original: dict[str, Any], patch: dict[str, Any], resource: Resource) -> dict[str, Any]:
    """Apply a strategic merge patch to `original` (not modified); returns the new object.

    `resource` is accepted so per-kind schemas can be added without changing callers; the field table
    above is currently enough for every kind we serve.
    """
    del resource
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object")
    merged = _merge_map(copy.deepcopy(original), patch, parent="")
    if merged is None:
        raise PatchError("$patch: delete is not allowed at the top level")
    return merged


def _merge_map(original: dict[str, Any], patch: dict[str, Any], *, parent: str) -> dict[str, Any] | None:
    """Merge `patch` into `original` (which this function owns and may mutate). None = delete the map."""
    directive = patch.get(_PATCH, "merge")
    if directive == "delete":
        return None
    if directive == "replace":
        return _merge_map({}, {k: v for k, v in patch.items() if k != _PATCH}, parent=parent)
    if directive != "merge":
        raise PatchError(f"unknown $patch directive {directive!r}")

    result = original
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key in (_PATCH, _RETAIN):
            continue
        if key.startswith(_ORDER):
            if not isinstance(value, list):
                raise PatchError(f"{key} must be a list")
            orders[key[len(_ORDER) :]] = value
            continue
        if key.startswith(_DELETE_PRIMITIVE):
            field = key[len(_DELETE_PRIMITIVE) :]
            if not isinstance(value, list):
                raise PatchError(f"{key} must be a list")
            if isinstance(result.get(field), list):
                result[field] = [item for item in result[field] if item not in value]
            continue
        if key.startswith("$"):
            raise PatchError(f"unknown directive {key!r}")
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            current = result.get(key)
            merged = _merge_map(current if isinstance(current, dict) else {}, value, parent=key)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            current_list = result.get(key)
            result[key] = _merge_list(
                current_list if isinstance(current_list, list) else [], value, parent=parent, field=key
            )
        else:
            result[key] = value

    for field, order in orders.items():
        if isinstance(result.get(field), list):
            result[field] = _apply_order(result[field], order, LIST_STRATEGIES.get((parent, field)))

    retain = patch.get(_RETAIN)
    if retain is not None:
        if not isinstance(retain, list):
            raise PatchError("$retainKeys must be a list")
        for key in [k for k in result if k not in retain]:
            del result[key]
    return result


def _merge_list(original: list[Any], patch: list[Any], *, parent: str, field: str) -> list[Any]:
    strategy = LIST_STRATEGIES.get((parent, field))
    if strategy is None:
        return [_strip(item, parent=field) if isinstance(item, dict) else item for item in patch]
    if strategy.merge_key is None:
        result = list(original)
        result.extend(item for item in patch if item not in result)
        return result
    key = strategy.merge_key
    if any(isinstance(item, dict) and item.get(_PATCH) == "replace" for item in patch):
        return [_strip(item, parent=field) for item in patch if isinstance(item, dict) and _PATCH not in item]

    result = list(original)
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(f"elements of {field} must be objects with {key!r}")
        if key not in item:
            raise PatchError(f"element of {field} lacks its merge key {key!r}")
        index = next(
            (i for i, cur in enumerate(result) if isinstance(cur, dict) and cur.get(key) == item[key]),
            None,
        )
        if item.get(_PATCH) == "delete":
            if index is not None:
                del result[index]
            continue
        if index is None:
            added = _merge_map({}, item, parent=field)
            if added is not None:
                result.append(added)
        else:
            merged = _merge_map(result[index], item, parent=field)
            if merged is None:
                del result[index]
            else:
                result[index] = merged
    return result


def _apply_order(items: list[Any], order: list[Any], strategy: ListStrategy | None) -> list[Any]:
    """Sort `items` by their place in `order`; items the order does not name keep their relative
    position after the ordered ones (the server's extra elements stay, kubectl only orders its own)."""
    key = strategy.merge_key if strategy is not None else None

    def ident(item: Any) -> Any:
        return item.get(key) if key is not None and isinstance(item, dict) else item

    wanted = [ident(entry) for entry in order]
    rank = {repr(value): pos for pos, value in enumerate(wanted)}
    named = [item for item in items if repr(ident(item)) in rank]
    rest = [item for item in items if repr(ident(item)) not in rank]
    named.sort(key=lambda item: rank[repr(ident(item))])
    return named + rest


def _strip(value: Any, *, parent: str) -> Any:
    """A patch fragment as plain data: directives and nulls removed (what a replace/add stores)."""
    if isinstance(value, dict):
        merged = _merge_map({}, {k: v for k, v in value.items() if k != _PATCH}, parent=parent)
        return merged if merged is not None else {}
    return value
