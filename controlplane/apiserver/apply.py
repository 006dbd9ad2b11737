"""Server-side apply (`PATCH` with `application/apply-patch+yaml`, `kubectl apply --server-side`),
simplified: each field manager owns the fields of the configuration it last applied, recorded in
`metadata.managedFields` (operation Apply, FieldsV1). Applying merges the new configuration into the
live object and removes the fields the manager applied before but no longer does — the part of
apply that makes deleting a line from a manifest delete the field.

What is left out (documented gap): conflicts between managers are always resolved as with `--force`
(the applier wins), lists are owned as a whole (no per-key ownership of list items), and Update
operations are not recorded as managers."""

from __future__ import annotations

import copy
import datetime
from typing import Any

Obj = dict[str, Any]
Path = tuple[str, ...]

# Identity and bookkeeping: never owned, never removed.
_UNOWNED: frozenset[Path] = frozenset(
    {
        ("apiVersion",),
        ("kind",),
        ("metadata", "name"),
        ("metadata", "namespace"),
        ("metadata", "resourceVersion"),
        ("metadata", "uid"),
        ("metadata", "managedFields"),
        ("metadata", "creationTimestamp"),
        ("metadata", "generation"),
    }
)


def leaf_paths(obj: Obj, prefix: Path = ()) -> set[Path]:
    """Paths of the leaves of `obj`: non-empty maps are descended into; lists and scalars are leaves."""
    out: set[Path] = set()
    for key, value in obj.items():
        path = (*prefix, key)
        if path in _UNOWNED:
            continue
        if isinstance(value, dict) and value:
            out |= leaf_paths(value, path)
        else:
            out.add(path)
    return out


def to_fields_v1(paths: set[Path]) -> Obj:
    """The FieldsV1 trie (`{"f:spec": {"f:replicas": {}}}`) of a set of paths."""
    root: Obj = {}
    for path in sorted(paths):
        node = root
        for key in path:
            node = node.setdefault(f"f:{key}", {})
    return root


def from_fields_v1(fields: Obj, prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    for key, child in fields.items():
        if not key.startswith("f:"):
            continue  # "k:"/"v:" list item keys and ".": we own lists whole, so nothing to read there
        path = (*prefix, key[2:])
        if isinstance(child, dict) and any(k.startswith("f:") for k in child):
            out |= from_fields_v1(child, path)
        else:
            out.add(path)
    return out


def _remove(obj: Obj, path: Path) -> None:
    node: Any = obj
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            return
    if isinstance(node, dict):
        node.pop(path[-1], None)


def _merge(live: Obj, applied: Obj) -> Obj:
    """Applied values win; maps merge; lists and scalars replace (lists are owned whole)."""
    out = dict(live)
    for key, value in applied.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply(live: Obj | None, applied: Obj, *, manager: str, api_version: str) -> Obj:
    """The object after `manager` applies `applied` to `live` (None: the object does not exist yet)."""
    obj = copy.deepcopy(live) if live is not None else {}
    entries = list((obj.get("metadata") or {}).get("managedFields") or [])
    previous: set[Path] = set()
    kept = []
    for entry in entries:
        if isinstance(entry, dict) and entry.get("manager") == manager and entry.get("operation") == "Apply":
            previous |= from_fields_v1(entry.get("fieldsV1") or {})
        else:
            kept.append(entry)
    owned = leaf_paths(applied)
    for path in previous - owned:
        _remove(obj, path)
    obj = _merge(obj, applied)
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    kept.append(
        {
            "manager": manager,
            "operation": "Apply",
            "apiVersion": api_version,
            "time": now,
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(owned),
        }
    )
    obj.setdefault("metadata", {})["managedFields"] = kept
    return obj
