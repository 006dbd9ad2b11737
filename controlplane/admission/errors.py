"""Admission rejections, mapped to a Status by the API server.

AdmissionError
├── Forbidden     403, message "<plural> \"<name>\" is forbidden: <reason>"
├── NotFound      404 (e.g. the namespace of a create does not exist)
└── Invalid       422 with field errors
"""

from __future__ import annotations

from controlplane.resources import Resource
from controlplane.validation.errors import FieldError

__all__ = ["AdmissionError", "Forbidden", "Invalid", "NotFound"]


class AdmissionError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Forbidden(AdmissionError):
    def __init__(self, resource: Resource, name: str, reason: str) -> None:
        super().__init__(f'{resource.plural} "{name}" is forbidden: {reason}')
        self.resource = resource
        self.name = name
        self.reason = reason


class NotFound(AdmissionError):
    def __init__(self, resource: Resource, name: str) -> None:
        super().__init__(f'{resource.plural} "{name}" not found')
        self.resource = resource
        self.name = name


class Invalid(AdmissionError):
    def __init__(self, resource: Resource, name: str, errors: list[FieldError]) -> None:
        super().__init__(f'{resource.kind} "{name}" is invalid: ' + "; ".join(str(e) for e in errors))
        self.resource = resource
        self.name = name
        self.errors = errors
