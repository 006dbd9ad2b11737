"""Field errors and the 422 `metav1.Status` Kubernetes answers with when an object is invalid.
Validation returns errors as values (a list), never raises: callers decide how to answer.

Messages follow apimachinery's `field.Error` wording ("Required value", "Invalid value: …") because
kubectl users and tools grep for them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DUPLICATE",
    "FORBIDDEN",
    "INVALID",
    "NOT_FOUND",
    "NOT_SUPPORTED",
    "REQUIRED",
    "TOO_LONG",
    "TOO_MANY",
    "FieldError",
    "duplicate",
    "forbidden",
    "invalid",
    "not_supported",
    "required",
    "status_for",
    "too_long",
]

NOT_FOUND = "FieldValueNotFound"
REQUIRED = "FieldValueRequired"
DUPLICATE = "FieldValueDuplicate"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
FORBIDDEN = "FieldValueForbidden"
TOO_LONG = "FieldValueTooLong"
TOO_MANY = "FieldValueTooMany"

_TYPE_TEXT = {
    NOT_FOUND: "Not found",
    REQUIRED: "Required value",
    DUPLICATE: "Duplicate value",
    INVALID: "Invalid value",
    NOT_SUPPORTED: "Unsupported value",
    FORBIDDEN: "Forbidden",
    TOO_LONG: "Too long",
    TOO_MANY: "Too many",
}
# Types whose message does not repeat the offending value.
_NO_VALUE = frozenset({REQUIRED, FORBIDDEN, TOO_LONG, TOO_MANY})


@dataclass(frozen=True)
class FieldError:
    type: str
    field: str
    value: Any = None
    detail: str = ""

    @property
    def body(self) -> str:
        """The message without the field path (a Status cause's `message`)."""
        text = _TYPE_TEXT.get(self.type, "Invalid value")
        if self.type not in _NO_VALUE:
            text += f": {_render(self.value)}"
        if self.detail:
            text += f": {self.detail}"
        return text

    def __str__(self) -> str:
        return f"{self.field}: {self.body}"


def _render(value: Any) -> str:
    if isinstance(value, str | int | float | bool) or value is None:
        return json.dumps(value)
    return "{...}" if isinstance(value, dict) else "[...]" if isinstance(value, list) else repr(value)


def required(field: str, detail: str = "") -> FieldError:
    return FieldError(REQUIRED, field, None, detail)


def invalid(field: str, value: Any, detail: str = "") -> FieldError:
    return FieldError(INVALID, field, value, detail)


def duplicate(field: str, value: Any) -> FieldError:
    return FieldError(DUPLICATE, field, value)


def forbidden(field: str, detail: str) -> FieldError:
    return FieldError(FORBIDDEN, field, None, detail)


def too_long(field: str, limit: int) -> FieldError:
    return FieldError(TOO_LONG, field, None, f"must have at most {limit} bytes")


def not_supported(field: str, value: Any, supported: tuple[str, ...] | list[str]) -> FieldError:
    return FieldError(NOT_SUPPORTED, field, value, "supported values: " + ", ".join(f'"{v}"' for v in supported))


def status_for(errors: list[FieldError], kind: str, name: str, group: str = "") -> dict[str, Any]:
    """The 422 Status for an invalid object, e.g. `Deployment.apps "web" is invalid: [...]`."""
    qualified = f"{kind}.{group}" if group else kind
    summary = str(errors[0]) if len(errors) == 1 else "[" + ", ".join(str(e) for e in errors) + "]"
    details: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "causes": [{"reason": e.type, "message": e.body, "field": e.field} for e in errors],
    }
    if group:
        details["group"] = group
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f'{qualified} "{name}" is invalid: {summary}',
        "reason": "Invalid",
        "details": details,
        "code": 422,
    }
