"""Image content store for the CRI ImageService: pull (registry v2), import (OCI layout, docker save),
built-in busybox and pause images, unpacked shared layers for overlayfs."""

from cri.images.errors import (
    AuthError,
    DigestMismatch,
    ImageError,
    ImageNotFound,
    InvalidImage,
    InvalidReference,
    PullError,
)
from cri.images.reference import Reference, normalize_ref, parse_reference
from cri.images.store import DEFAULT_ROOT, ImageStore
from cri.images.types import FsUsage, Image, ImageConfig, RegistryAuth

__all__ = [
    "DEFAULT_ROOT",
    "AuthError",
    "DigestMismatch",
    "FsUsage",
    "Image",
    "ImageConfig",
    "ImageError",
    "ImageNotFound",
    "ImageStore",
    "InvalidImage",
    "InvalidReference",
    "PullError",
    "Reference",
    "RegistryAuth",
    "normalize_ref",
    "parse_reference",
]
