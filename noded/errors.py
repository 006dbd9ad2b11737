"""Errors of noded.

NodedError                 root of this package
├── RuntimeError_          the CRI runtime failed a call (gRPC status mapped at the edge)
│   └── RuntimeNotFound    the sandbox/container/image does not exist (gRPC NOT_FOUND)
├── RuntimeUnavailable     the CRI endpoint cannot be reached
├── PodSpecError           a pod asks for something noded cannot do (bad volume, missing key)
└── ManifestError          a static pod manifest cannot be read
"""

from __future__ import annotations


class NodedError(Exception):
    """Root of every error noded raises."""


class RuntimeError_(NodedError):
    """A CRI call failed."""


class RuntimeNotFound(RuntimeError_):
    """The object named in a CRI call does not exist."""


class RuntimeUnavailable(RuntimeError_):
    """The CRI endpoint does not answer."""


class PodSpecError(NodedError):
    """The pod cannot be run as specified (reason is shown in the container's waiting state)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class ManifestError(NodedError):
    """A static pod manifest is unreadable or not a Pod."""
