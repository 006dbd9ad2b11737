"""Errors of the container runtime.

Hierarchy (mapped to gRPC status codes only in `cri/server.py`)::

    CriError
    ├── NotFound            no sandbox/container with that id                 → NOT_FOUND
    ├── InvalidArgument     a malformed or unsupported config                 → INVALID_ARGUMENT
    ├── AlreadyExists       a name (metadata) already taken                   → ALREADY_EXISTS
    ├── InvalidTransition   an operation the object's state does not allow    → FAILED_PRECONDITION
    ├── Timeout             an ExecSync or stop that ran out of time          → DEADLINE_EXCEEDED
    └── RuntimeFailure      the kernel, a CNI plugin or the launcher failed   → INTERNAL
"""

from __future__ import annotations


class CriError(Exception):
    """Root of every error the runtime raises on purpose."""


class NotFound(CriError):
    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"{kind} {ident!r} not found")
        self.kind = kind
        self.ident = ident


class InvalidArgument(CriError):
    """The request names a field that is missing, malformed or unsupported; the message says which."""


class AlreadyExists(CriError):
    pass


class InvalidTransition(CriError):
    def __init__(self, kind: str, ident: str, state: str, action: str) -> None:
        super().__init__(f"{kind} {ident} is {state}: cannot {action}")
        self.state = state
        self.action = action


class Timeout(CriError):
    pass


class RuntimeFailure(CriError):
    """A step that touches the kernel, a plugin or the launcher failed (the cause is chained)."""
