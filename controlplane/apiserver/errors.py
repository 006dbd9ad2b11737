"""API errors, each rendered as a `metav1.Status` at the HTTP edge (api-conventions.md, "Response
Status Kind"). Handlers raise ApiError subclasses; storage errors are translated in registry.py.

    ApiError (code, reason)
    ├── BadRequest 400 BadRequest        ├── Conflict 409 Conflict
    ├── Unauthorized 401 Unauthorized    ├── AlreadyExists 409 AlreadyExists
    ├── Forbidden 403 Forbidden          ├── Gone 410 Expired
    ├── NotFound 404 NotFound            ├── Invalid 422 Invalid (with field causes)
    ├── MethodNotAllowed 405             ├── TooLarge 413 RequestEntityTooLarge
    ├── NotAcceptable 406                ├── UnsupportedMediaType 415
    └── InternalError 500, ServiceUnavailable 503
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from controlplane.resources import Resource


@dataclass(frozen=True)
class Cause:
    field: str
    message: str
    reason: str = "FieldValueInvalid"

    def to_json(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}


class ApiError(Exception):
    code: ClassVar[int] = 500
    reason: ClassVar[str] = "InternalError"

    def __init__(
        self,
        message: str,
        *,
        resource: Resource | None = None,
        name: str | None = None,
        causes: list[Cause] | None = None,
        retry_after: int | None = None,
        details_kind: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.resource = resource
        self.name = name
        self.causes = causes or []
        self.retry_after = retry_after
        self.details_kind = details_kind  # Invalid names the Kind, other errors the resource (as Kubernetes)

    def status(self) -> dict[str, Any]:
        details: dict[str, Any] = {}
        if self.name is not None:
            details["name"] = self.name
        if self.resource is not None:
            if self.resource.group:
                details["group"] = self.resource.group
            details["kind"] = self.details_kind or self.resource.plural
        if self.causes:
            details["causes"] = [c.to_json() for c in self.causes]
        if self.retry_after is not None:
            details["retryAfterSeconds"] = self.retry_after
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if details:
            body["details"] = details
        return body


class BadRequest(ApiError):
    code, reason = 400, "BadRequest"


class Unauthorized(ApiError):
    code, reason = 401, "Unauthorized"


class Forbidden(ApiError):
    code, reason = 403, "Forbidden"


class NotFound(ApiError):
    code, reason = 404, "NotFound"


class MethodNotAllowed(ApiError):
    code, reason = 405, "MethodNotAllowed"


class NotAcceptable(ApiError):
    code, reason = 406, "NotAcceptable"


class Conflict(ApiError):
    code, reason = 409, "Conflict"


class AlreadyExists(ApiError):
    code, reason = 409, "AlreadyExists"


class Gone(ApiError):
    code, reason = 410, "Expired"


class TooLarge(ApiError):
    code, reason = 413, "RequestEntityTooLarge"


class UnsupportedMediaType(ApiError):
    code, reason = 415, "UnsupportedMediaType"


class Invalid(ApiError):
    code, reason = 422, "Invalid"


class TooManyRequests(ApiError):
    code, reason = 429, "TooManyRequests"


class InternalError(ApiError):
    code, reason = 500, "InternalError"


class ServiceUnavailable(ApiError):
    code, reason = 503, "ServiceUnavailable"


def not_found(res: Resource, name: str) -> NotFound:
    return NotFound(f'{_qualified(res)} "{name}" not found', resource=res, name=name)


def already_exists(res: Resource, name: str) -> AlreadyExists:
    return AlreadyExists(f'{_qualified(res)} "{name}" already exists', resource=res, name=name)


def conflict(res: Resource, name: str, why: str) -> Conflict:
    return Conflict(f'Operation cannot be fulfilled on {_qualified(res)} "{name}": {why}', resource=res, name=name)


def invalid(res: Resource, name: str, causes: list[Cause]) -> Invalid:
    summary = ", ".join(f"{c.field}: {c.message}" for c in causes)
    return Invalid(
        f'{res.kind} "{name}" is invalid: {summary}', resource=res, name=name, causes=causes, details_kind=res.kind
    )


def _qualified(res: Resource) -> str:
    return f"{res.plural}.{res.group}" if res.group else res.plural
