"""Syntax of names, labels, annotations and label selectors (apimachinery's validation rules)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from controlplane.validation.errors import FieldError, invalid, not_supported, required, too_long
from controlplane.validation.shapes import as_dict, as_list

__all__ = [
    "dns1035_label",
    "dns1123_label",
    "dns1123_subdomain",
    "path_segment_name",
    "validate_annotations",
    "validate_label_selector",
    "validate_labels",
    "validate_object_meta",
    "validate_selector_matches",
]

_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL = re.compile(f"^{_LABEL}$")
_DNS1123_SUBDOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
_DNS1035_LABEL = re.compile("^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

NameCheck = Callable[[str], list[str]]


def dns1123_label(value: str) -> list[str]:
    msgs = []
    if len(value) > 63:
        msgs.append("must be no more than 63 characters")
    if not _DNS1123_LABEL.match(value):
        msgs.append(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
            "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
            f"'{_LABEL}')"
        )
    return msgs


def dns1123_subdomain(value: str) -> list[str]:
    msgs = []
    if len(value) > 253:
        msgs.append("must be no more than 253 characters")
    if not _DNS1123_SUBDOMAIN.match(value):
        msgs.append(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
            "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
            f"'{_LABEL}(\\.{_LABEL})*')"
        )
    return msgs


def dns1035_label(value: str) -> list[str]:
    msgs = []
    if len(value) > 63:
        msgs.append("must be no more than 63 characters")
    if not _DNS1035_LABEL.match(value):
        msgs.append(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
            "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
            "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
        )
    return msgs


def path_segment_name(value: str) -> list[str]:
    """RBAC objects may carry ':' in names (system:node) but nothing that breaks a URL path."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in "/%" if c in value]


def _qualified_name(value: str) -> list[str]:
    prefix, slash, name = value.rpartition("/")
    msgs: list[str] = []
    if slash:
        if not prefix:
            msgs.append("prefix part must be non-empty")
        else:
            msgs.extend(f"prefix part {m}" for m in dns1123_subdomain(prefix))
    if not name:
        msgs.append("name part must be non-empty")
    elif len(name) > 63:
        msgs.append("name part must be no more than 63 characters")
    if name and not _QUALIFIED_NAME.match(name):
        msgs.append(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
            "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        )
    return msgs


def _label_value(value: str) -> list[str]:
    msgs = []
    if len(value) > 63:
        msgs.append("must be no more than 63 characters")
    if not _LABEL_VALUE.match(value):
        msgs.append(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
            "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex "
            "used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        )
    return msgs


def validate_labels(labels: Any, path: str) -> list[FieldError]:
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [invalid(path, labels, "must be a map of strings")]
    errs: list[FieldError] = []
    for key, value in labels.items():
        errs.extend(invalid(path, key, m) for m in _qualified_name(key))
        if not isinstance(value, str):
            errs.append(invalid(f"{path}[{key}]", value, "must be a string"))
        else:
            errs.extend(invalid(f"{path}[{key}]", value, m) for m in _label_value(value))
    return errs


_ANNOTATIONS_MAX = 256 * 1024


def validate_annotations(annotations: Any, path: str) -> list[FieldError]:
    if annotations is None:
        return []
    if not isinstance(annotations, dict):
        return [invalid(path, annotations, "must be a map of strings")]
    errs: list[FieldError] = []
    total = 0
    for key, value in annotations.items():
        errs.extend(invalid(path, key, m) for m in _qualified_name(key.lower()))
        if not isinstance(value, str):
            errs.append(invalid(f"{path}[{key}]", value, "must be a string"))
        else:
            total += len(key) + len(value)
    if total > _ANNOTATIONS_MAX:
        errs.append(too_long(path, _ANNOTATIONS_MAX))
    return errs


_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate_label_selector(selector: Any, path: str) -> list[FieldError]:
    """A metav1.LabelSelector (matchLabels + matchExpressions)."""
    if selector is None:
        return []
    if not isinstance(selector, dict):
        return [invalid(path, selector, "must be an object")]
    errs = validate_labels(selector.get("matchLabels"), f"{path}.matchLabels")
    for i, expr in enumerate(as_list(selector.get("matchExpressions"))):
        at = f"{path}.matchExpressions[{i}]"
        if not isinstance(expr, dict):
            errs.append(invalid(at, expr, "must be an object"))
            continue
        key, op, values = expr.get("key"), expr.get("operator"), as_list(expr.get("values"))
        if not key:
            errs.append(required(f"{at}.key"))
        else:
            errs.extend(invalid(f"{at}.key", key, m) for m in _qualified_name(str(key)))
        if op not in _OPERATORS:
            errs.append(not_supported(f"{at}.operator", op, _OPERATORS))
        elif op in ("In", "NotIn") and not values:
            errs.append(required(f"{at}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist") and values:
            errs.append(
                invalid(f"{at}.values", values, "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
            )
    return errs


def _expr_matches(expr: dict[str, Any], labels: dict[str, str]) -> bool:
    key, op, values = str(expr.get("key", "")), expr.get("operator"), as_list(expr.get("values"))
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    return key not in labels


def validate_selector_matches(selector: dict[str, Any], labels: Any, path: str) -> list[FieldError]:
    """A controller's selector must select its own template's pods (else it would create forever)."""
    labels = labels if isinstance(labels, dict) else {}
    match_labels = as_dict(selector.get("matchLabels"))
    ok = all(labels.get(k) == v for k, v in match_labels.items()) and all(
        _expr_matches(e, labels) for e in as_list(selector.get("matchExpressions")) if isinstance(e, dict)
    )
    return [] if ok else [invalid(path, labels, "`selector` does not match template `labels`")]


def validate_object_meta(
    meta: Any, *, namespaced: bool, name_check: NameCheck, path: str = "metadata"
) -> list[FieldError]:
    if not isinstance(meta, dict):
        return [required(path)]
    errs: list[FieldError] = []
    name = meta.get("name")
    if not name:
        if not meta.get("generateName"):
            errs.append(required(f"{path}.name", "name or generateName is required"))
    elif not isinstance(name, str):
        errs.append(invalid(f"{path}.name", name, "must be a string"))
    else:
        errs.extend(invalid(f"{path}.name", name, m) for m in name_check(name))
    namespace = meta.get("namespace")
    if namespaced and not namespace:
        errs.append(required(f"{path}.namespace"))
    elif namespace and namespaced:  # on cluster-scoped kinds the registry clears it, as Kubernetes does
        errs.extend(invalid(f"{path}.namespace", namespace, m) for m in dns1123_label(str(namespace)))
    errs.extend(validate_labels(meta.get("labels"), f"{path}.labels"))
    errs.extend(validate_annotations(meta.get("annotations"), f"{path}.annotations"))
    errs.extend(_validate_owner_references(meta.get("ownerReferences"), f"{path}.ownerReferences"))
    return errs


def _validate_owner_references(refs: Any, path: str) -> list[FieldError]:
    """The garbage collector relies on these: every reference names its owner fully, and at most one
    is the managing controller."""
    if refs is None:
        return []
    if not isinstance(refs, list):
        return [invalid(path, refs, "must be a list")]
    errs: list[FieldError] = []
    controllers = 0
    for i, ref in enumerate(refs):
        if not isinstance(ref, dict):
            errs.append(invalid(f"{path}[{i}]", ref, "must be an object"))
            continue
        for key in ("apiVersion", "kind", "name", "uid"):
            if not ref.get(key):
                errs.append(required(f"{path}[{i}].{key}"))
        controllers += ref.get("controller") is True
    if controllers > 1:
        errs.append(invalid(path, refs, "Only one reference can have Controller set to true"))
    return errs
