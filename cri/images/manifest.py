"""Parsing manifests, indexes and image configs, and choosing a platform (pure).

Accepts OCI image-spec v1 and Docker image manifest v2 schema 2 (and manifest lists). Schema 1
(signed, pre-2017) manifests are refused: registries still serving only those are long gone.
"""

from __future__ import annotations

import hashlib
import json
import platform as _platform
from collections.abc import Mapping
from typing import Any

from cri.images.errors import InvalidImage
from cri.images.types import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    Platform,
)

# Go's GOARCH names, which image indexes use.
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le"}


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def host_platform() -> Platform:
    machine = _platform.machine()
    return Platform(os="linux", architecture=_GOARCH.get(machine, machine))


def _load(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except ValueError as err:
        raise InvalidImage(f"{what} is not JSON: {err}") from err
    if not isinstance(doc, dict):
        raise InvalidImage(f"{what} is not a JSON object")
    return doc


def _str_map(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def parse_descriptor(raw: object, what: str) -> Descriptor:
    if not isinstance(raw, Mapping):
        raise InvalidImage(f"{what}: descriptor is not an object")
    digest, size = raw.get("digest"), raw.get("size")
    if not isinstance(digest, str) or not digest.startswith("sha256:") or len(digest) != 71:
        raise InvalidImage(f"{what}: unsupported or missing digest {digest!r}")
    if not isinstance(size, int) or size < 0:
        raise InvalidImage(f"{what}: missing or negative size")
    plat = raw.get("platform")
    platform = None
    if isinstance(plat, Mapping):
        platform = Platform(
            os=str(plat.get("os", "")),
            architecture=str(plat.get("architecture", "")),
            variant=str(plat.get("variant", "")),
        )
    return Descriptor(
        media_type=str(raw.get("mediaType", "")),
        digest=digest,
        size=size,
        platform=platform,
        annotations=_str_map(raw.get("annotations")),
    )


def media_type_of(data: bytes, declared: str = "") -> str:
    """The media type of a manifest-ish document: its own `mediaType`, else the declared one, else a
    guess from its shape (OCI allows omitting `mediaType`)."""
    doc = _load(data, "manifest")
    own = doc.get("mediaType")
    if isinstance(own, str) and own:
        return own
    if declared:
        return declared
    if "manifests" in doc:
        return OCI_INDEX
    if "config" in doc and "layers" in doc:
        return OCI_MANIFEST
    if doc.get("schemaVersion") == 1:
        return "application/vnd.docker.distribution.manifest.v1+json"
    raise InvalidImage("document is neither an image manifest nor an index")


def parse_manifest(data: bytes) -> Manifest:
    doc = _load(data, "manifest")
    media_type = media_type_of(data)
    if media_type not in MANIFEST_TYPES:
        raise InvalidImage(f"unsupported manifest media type {media_type!r} (need OCI or Docker schema 2)")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise InvalidImage("manifest has no layers list")
    return Manifest(
        media_type=media_type,
        config=parse_descriptor(doc.get("config"), "manifest config"),
        layers=tuple(parse_descriptor(layer, f"manifest layer {i}") for i, layer in enumerate(layers)),
    )


def parse_index(data: bytes) -> Index:
    doc = _load(data, "index")
    media_type = media_type_of(data)
    if media_type not in INDEX_TYPES:
        raise InvalidImage(f"unsupported index media type {media_type!r}")
    manifests = doc.get("manifests")
    if not isinstance(manifests, list):
        raise InvalidImage("index has no manifests list")
    return Index(media_type, tuple(parse_descriptor(m, f"index entry {i}") for i, m in enumerate(manifests)))


def select_platform(index: Index, want: Platform) -> Descriptor:
    """The manifest for `want` (os and architecture must match; a matching variant is preferred)."""
    candidates = [
        d
        for d in index.manifests
        if d.platform is not None and d.platform.os == want.os and d.platform.architecture == want.architecture
    ]
    if not candidates:
        offered = sorted(f"{d.platform.os}/{d.platform.architecture}" for d in index.manifests if d.platform)
        raise InvalidImage(f"no manifest for {want.os}/{want.architecture} in index (has: {', '.join(offered)})")
    exact = [d for d in candidates if d.platform is not None and d.platform.variant == want.variant]
    return (exact or candidates)[0]


def _str_tuple(value: object, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        # Docker accepts a bare string for Cmd/Entrypoint in some old configs: treat as one argv item.
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidImage(f"image config {what} is not a list of strings")
    return tuple(value)


def parse_config(data: bytes) -> tuple[ImageConfig, tuple[str, ...]]:
    """(runtime config, rootfs diff_ids bottom first) from an image config blob (config.md)."""
    doc = _load(data, "image config")
    rootfs = doc.get("rootfs")
    if not isinstance(rootfs, Mapping) or rootfs.get("type") != "layers":
        raise InvalidImage("image config has no rootfs of type 'layers'")
    diff_ids = _str_tuple(rootfs.get("diff_ids"), "rootfs.diff_ids")
    raw = doc.get("config") or {}
    if not isinstance(raw, Mapping):
        raise InvalidImage("image config 'config' is not an object")
    config = ImageConfig(
        entrypoint=_str_tuple(raw.get("Entrypoint"), "Entrypoint"),
        cmd=_str_tuple(raw.get("Cmd"), "Cmd"),
        env=_str_tuple(raw.get("Env"), "Env"),
        working_dir=str(raw.get("WorkingDir") or ""),
        user=str(raw.get("User") or ""),
        exposed_ports=tuple(sorted(_str_map(raw.get("ExposedPorts")))),
        labels=_str_map(raw.get("Labels")),
        stop_signal=str(raw.get("StopSignal") or ""),
        volumes=tuple(sorted(_str_map(raw.get("Volumes")))),
    )
    return config, diff_ids


def render_manifest(config: Descriptor, layers: list[Descriptor]) -> bytes:
    """A canonical OCI manifest for content we assemble ourselves (builtin images, docker-save imports)."""

    def desc(d: Descriptor) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": d.media_type, "digest": d.digest, "size": d.size}
        if d.annotations:
            out["annotations"] = d.annotations
        return out

    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc(config),
        "layers": [desc(d) for d in layers],
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
