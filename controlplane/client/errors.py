"""Errors of the API client, built from the server's `metav1.Status` body.

Hierarchy (catch by type, never by message):

    ClientError                     root of this package
    ├── ConfigError                 kubeconfig missing or unusable
    └── ApiError(code, reason, message)
        ├── BadRequest        400
        ├── Unauthorized      401
        ├── Forbidden         403
        ├── NotFound          404
        ├── MethodNotAllowed  405
        ├── Conflict          409 (reason Conflict: stale resourceVersion)
        ├── AlreadyExists     409 (reason AlreadyExists)
        ├── Gone              410 (or reason Expired: resourceVersion too old, relist)
        ├── Invalid           422
        ├── TooManyRequests   429
        ├── ServerError       5xx
        └── ConnectionFailed  code 0: no HTTP answer (refused, reset, timed out)
"""

from __future__ import annotations

from typing import Any


class ClientError(Exception):
    """Root of every error this package raises."""


class ConfigError(ClientError):
    """The kubeconfig could not be read or lacks what a connection needs."""


class ApiError(ClientError):
    """A request the server answered with a failure `Status` (or a transport failure, code 0)."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}


class BadRequest(ApiError):
    pass


class Unauthorized(ApiError):
    pass


class Forbidden(ApiError):
    pass


class NotFound(ApiError):
    pass


class MethodNotAllowed(ApiError):
    pass


class Conflict(ApiError):
    pass


class AlreadyExists(ApiError):
    pass


class Gone(ApiError):
    pass


class Invalid(ApiError):
    pass


class TooManyRequests(ApiError):
    pass


class ServerError(ApiError):
    pass


class ConnectionFailed(ApiError):
    pass


_BY_CODE: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    410: Gone,
    422: Invalid,
    429: TooManyRequests,
}

# Reasons decide where the code alone is ambiguous (409) or where a watch reports 410 as "Expired".
_BY_REASON: dict[str, type[ApiError]] = {
    "AlreadyExists": AlreadyExists,
    "Conflict": Conflict,
    "Expired": Gone,
    "Gone": Gone,
    "NotFound": NotFound,
}


def error_from_status(http_code: int, body: Any) -> ApiError:
    """The typed error for a failed response; `body` is the decoded JSON (a Status) or raw text."""
    if isinstance(body, dict) and body.get("kind") == "Status":
        code = int(body.get("code") or http_code)
        reason = str(body.get("reason") or "")
        message = str(body.get("message") or "")
        details = body.get("details") if isinstance(body.get("details"), dict) else None
    else:
        code, reason, message, details = http_code, "", str(body or "")[:500], None
    cls = _BY_REASON.get(reason) or _BY_CODE.get(code) or (ServerError if code >= 500 else ApiError)
    return cls(code, reason or cls.__name__, message, details)
