"""Build small images in memory and write them as OCI layouts, docker-save archives, or straight
into a store; for tests here and in the CRI runtime."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from dataclasses import dataclass, field
from typing import Any

from cri.images.builtin import LayerEntry, build_layer
from cri.images.manifest import sha256_digest
from cri.images.types import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
)

__all__ = ["BuiltImage", "LayerEntry", "build_image", "build_index", "docker_save_tar", "file_layer", "oci_layout_tar"]


@dataclass
class BuiltImage:
    manifest: bytes
    config: bytes
    layers: list[bytes]  # blobs as stored (maybe gzip)
    diff_ids: list[str]
    media_type: str

    @property
    def manifest_digest(self) -> str:
        return sha256_digest(self.manifest)

    @property
    def config_digest(self) -> str:
        return sha256_digest(self.config)

    def blobs(self) -> dict[str, bytes]:
        out = {sha256_digest(b): b for b in self.layers}
        out[self.config_digest] = self.config
        out[self.manifest_digest] = self.manifest
        return out


@dataclass
class BuiltIndex:
    body: bytes
    images: list[BuiltImage] = field(default_factory=list)

    @property
    def digest(self) -> str:
        return sha256_digest(self.body)


def file_layer(files: dict[str, bytes]) -> bytes:
    """A layer of regular files (parent directories added)."""
    entries: list[LayerEntry] = []
    seen: set[str] = set()
    for path, data in files.items():
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in seen:
                seen.add(d)
                entries.append(LayerEntry(d, "dir"))
        entries.append(LayerEntry(path, "file", 0o644, data=data))
    return build_layer(entries)


def build_image(
    layer_tars: list[bytes],
    *,
    config: dict[str, Any] | None = None,
    gzip_layers: bool = False,
    docker: bool = False,
    architecture: str = "amd64",
) -> BuiltImage:
    """An image (OCI, or Docker schema 2 when `docker`) from uncompressed layer tars, bottom first."""
    diff_ids = [sha256_digest(t) for t in layer_tars]
    blobs = [gzip.compress(t, mtime=0) if gzip_layers else t for t in layer_tars]
    config_blob = json.dumps(
        {
            "architecture": architecture,
            "os": "linux",
            "config": config or {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        },
        sort_keys=True,
    ).encode()
    layer_type = (DOCKER_LAYER_GZIP if docker else OCI_LAYER_GZIP) if gzip_layers else OCI_LAYER
    media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    manifest = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {
            "mediaType": DOCKER_CONFIG if docker else OCI_CONFIG,
            "digest": sha256_digest(config_blob),
            "size": len(config_blob),
        },
        "layers": [{"mediaType": layer_type, "digest": sha256_digest(b), "size": len(b)} for b in blobs],
    }
    return BuiltImage(json.dumps(manifest).encode(), config_blob, blobs, diff_ids, media_type)


def build_index(images: dict[str, BuiltImage]) -> BuiltIndex:
    """An OCI index with one entry per `"os/arch"` key."""
    entries = []
    for plat, image in images.items():
        os_name, _, arch = plat.partition("/")
        entries.append(
            {
                "mediaType": image.media_type,
                "digest": image.manifest_digest,
                "size": len(image.manifest),
                "platform": {"os": os_name, "architecture": arch},
            }
        )
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    return BuiltIndex(body, list(images.values()))


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def oci_layout_tar(path: str, images: dict[str, BuiltImage | BuiltIndex], *, annotation: str = "containerd") -> None:
    """Write an OCI image layout tarball; keys are names (`io.containerd.image.name`, or with
    `annotation="ref"` written as `org.opencontainers.image.ref.name`; an empty key adds no name)."""
    blobs: dict[str, bytes] = {}
    manifests = []
    for name, item in images.items():
        if isinstance(item, BuiltIndex):
            for image in item.images:
                blobs.update(image.blobs())
            blobs[item.digest] = item.body
            desc = {"mediaType": OCI_INDEX, "digest": item.digest, "size": len(item.body)}
        else:
            blobs.update(item.blobs())
            desc = {"mediaType": item.media_type, "digest": item.manifest_digest, "size": len(item.manifest)}
        if name:
            key = "io.containerd.image.name" if annotation == "containerd" else "org.opencontainers.image.ref.name"
            desc["annotations"] = {key: name}
        manifests.append(desc)
    with tarfile.open(path, "w") as tar:
        _add(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _add(tar, "index.json", json.dumps({"schemaVersion": 2, "manifests": manifests}).encode())
        for digest, data in blobs.items():
            _add(tar, "blobs/sha256/" + digest.removeprefix("sha256:"), data)


def docker_save_tar(path: str, images: dict[tuple[str, ...], BuiltImage]) -> None:
    """Write a legacy `docker save` archive (`manifest.json`, `<id>.json`, `<layer>/layer.tar`)."""
    entries = []
    with tarfile.open(path, "w") as tar:
        for tags, image in images.items():
            config_name = image.config_digest.removeprefix("sha256:") + ".json"
            _add(tar, config_name, image.config)
            layer_names = []
            for blob in image.layers:
                name = sha256_digest(blob).removeprefix("sha256:")[:32] + "/layer.tar"
                if name not in tar.getnames():
                    _add(tar, name, blob)
                layer_names.append(name)
            entries.append({"Config": config_name, "RepoTags": list(tags), "Layers": layer_names})
        _add(tar, "manifest.json", json.dumps(entries).encode())
