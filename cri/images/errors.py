"""Errors of the image store.

Hierarchy (the gRPC edge maps them to status codes; nothing here knows about gRPC)::

    ImageError
    ├── InvalidReference   a string that is not a docker/OCI image reference    → INVALID_ARGUMENT
    ├── ImageNotFound      no image in the store for a reference or id          → NOT_FOUND
    ├── InvalidImage       a manifest, config, layer or archive we cannot use   → INVALID_ARGUMENT
    │   └── DigestMismatch content whose sha256 is not the digest it claims     → DATA_LOSS
    └── PullError          a registry conversation failed (cause chained)       → UNAVAILABLE
        └── AuthError      the registry refused our credentials                 → UNAUTHENTICATED
"""

from __future__ import annotations


class ImageError(Exception):
    """Root of every error the image store raises."""


class InvalidReference(ImageError):
    def __init__(self, ref: str, why: str) -> None:
        super().__init__(f"invalid image reference {ref!r}: {why}")
        self.ref = ref
        self.why = why


class ImageNotFound(ImageError):
    def __init__(self, ref: str) -> None:
        super().__init__(f"image {ref!r} not found in the local store")
        self.ref = ref


class InvalidImage(ImageError):
    """The image content is malformed or uses something we do not support."""


class DigestMismatch(InvalidImage):
    def __init__(self, what: str, expected: str, actual: str) -> None:
        super().__init__(f"{what}: content digest is {actual}, expected {expected}")
        self.expected = expected
        self.actual = actual


class PullError(ImageError):
    """Talking to a registry failed; `__cause__` holds the lower-level error when there is one."""

    def __init__(self, ref: str, why: str, *, status: int | None = None) -> None:
        super().__init__(f"pulling {ref!r}: {why}")
        self.ref = ref
        self.why = why
        self.status = status


class AuthError(PullError):
    """The registry (or its token service) answered 401/403 to our credentials."""
