"""Importing image tarballs: OCI image layouts (image-layout.md) and `docker save` archives.

A `docker save` archive has `manifest.json` (`[{"Config": path, "RepoTags": [...], "Layers":
[paths]}]`); we store its config and layer files as blobs and write an OCI manifest for them. An OCI
layout has `index.json` and `blobs/sha256/<hex>`; names come from the `io.containerd.image.name`
annotation (docker and containerd write it) or a full reference in `org.opencontainers.image.ref.name`
(which is often only a tag, and then `name` must say which repository it belongs to). Docker ≥ 25
writes both formats in one archive; `manifest.json` is preferred there because it carries the tags.
"""

from __future__ import annotations

import json
import posixpath
import tarfile
from typing import IO, TYPE_CHECKING, Any

from cri.images.errors import ImageError, InvalidImage
from cri.images.layers import clean_path
from cri.images.manifest import (
    host_platform,
    media_type_of,
    parse_config,
    parse_index,
    parse_manifest,
    render_manifest,
    select_platform,
)
from cri.images.types import INDEX_TYPES, OCI_CONFIG, OCI_LAYER, OCI_LAYER_GZIP, Descriptor, Image

if TYPE_CHECKING:
    from cri.images.store import ImageStore

CONTAINERD_NAME = "io.containerd.image.name"
OCI_REF_NAME = "org.opencontainers.image.ref.name"


class _Archive:
    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.members = {clean_path(m.name): m for m in tar.getmembers()}

    def open(self, path: str) -> IO[bytes]:
        member = self.members.get(clean_path(path))
        f = self.tar.extractfile(member) if member is not None else None
        if f is None:
            raise InvalidImage(f"archive has no file {path!r}")
        return f

    def read(self, path: str) -> bytes:
        with self.open(path) as f:
            return f.read()

    def json(self, path: str) -> Any:
        try:
            return json.loads(self.read(path))
        except ValueError as err:
            raise InvalidImage(f"archive file {path!r} is not JSON: {err}") from err


def import_archive(store: ImageStore, path: str, *, name: str | None = None) -> list[Image]:
    """Import every image in the tarball at `path`; `name` names an image the archive leaves unnamed."""
    try:
        with tarfile.open(path, "r:*") as tar:
            archive = _Archive(tar)
            if "manifest.json" in archive.members:
                return _import_docker(store, archive, name)
            if "index.json" in archive.members:
                return _import_oci(store, archive, name)
    except (tarfile.TarError, EOFError) as err:
        raise InvalidImage(f"{path} is not a readable tar archive: {err}") from err
    except ImageError:
        raise
    except OSError as err:
        raise InvalidImage(f"reading {path}: {err}") from err
    raise InvalidImage(f"{path} is neither an OCI image layout nor a docker-save archive (no index.json/manifest.json)")


def _names(found: list[str], override: str | None, what: str) -> list[str]:
    if override:
        return [override]
    if not found:
        raise InvalidImage(f"{what} has no image name in the archive: give one (--name)")
    return found


def _import_docker(store: ImageStore, archive: _Archive, name: str | None) -> list[Image]:
    entries = archive.json("manifest.json")
    if not isinstance(entries, list) or not entries:
        raise InvalidImage("manifest.json is not a non-empty list")
    if name and len(entries) > 1:
        raise InvalidImage("a name can only be given for an archive holding one image")
    images = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("Layers"), list):
            raise InvalidImage("manifest.json entry lacks Config/Layers")
        config_blob = archive.read(str(entry.get("Config")))
        config_digest = store.blobs.write(config_blob)
        _, diff_ids = parse_config(config_blob)
        layers = []
        for layer_path in entry["Layers"]:
            with archive.open(str(layer_path)) as f:
                head = f.read(2)
            with archive.open(str(layer_path)) as f:
                digest = store.blobs.ingest(f, what=f"layer {layer_path}")
            media = OCI_LAYER_GZIP if head == b"\x1f\x8b" else OCI_LAYER
            layers.append(Descriptor(media, digest, store.blobs.size(digest)))
        if len(layers) != len(diff_ids):
            raise InvalidImage(f"{entry.get('Config')}: {len(diff_ids)} diff_ids but {len(layers)} layers")
        manifest = render_manifest(Descriptor(OCI_CONFIG, config_digest, len(config_blob)), layers)
        manifest_digest = store.blobs.write(manifest)
        tags = [str(t) for t in entry.get("RepoTags") or []]
        with store.holding([config_digest, manifest_digest, *(d.digest for d in layers)]):
            images.append(store.commit(_names(tags, name, str(entry.get("Config"))), manifest_digest))
    return images


def _copy_blob(store: ImageStore, archive: _Archive, desc: Descriptor) -> bytes | None:
    """Copy one blob from `blobs/sha256/<hex>` into the store (verified); return its bytes if small."""
    algo, _, hexpart = desc.digest.partition(":")
    with archive.open(posixpath.join("blobs", algo, hexpart)) as f:
        store.blobs.ingest(f, expected=desc.digest, size=desc.size, what=f"archive blob {desc.digest}")
    return store.blobs.read(desc.digest) if desc.size <= 4 << 20 else None


def _oci_image_name(desc: Descriptor) -> list[str]:
    if full := desc.annotations.get(CONTAINERD_NAME):
        return [full]
    ref_name = desc.annotations.get(OCI_REF_NAME, "")
    if "/" in ref_name or ":" in ref_name:
        return [ref_name]
    return []


def _import_oci(store: ImageStore, archive: _Archive, name: str | None) -> list[Image]:
    top = parse_index(archive.read("index.json"))
    if name and len(top.manifests) > 1:
        raise InvalidImage("a name can only be given for an archive holding one image")
    images = []
    for entry in top.manifests:
        body = _copy_blob(store, archive, entry) or b""
        held = [entry.digest]
        desc = entry
        if media_type_of(body, entry.media_type) in INDEX_TYPES:
            desc = select_platform(parse_index(body), host_platform())
            body = _copy_blob(store, archive, desc) or b""
            held.append(desc.digest)
        manifest = parse_manifest(body)
        for blob in (manifest.config, *manifest.layers):
            _copy_blob(store, archive, blob)
        held += [manifest.config.digest, *(d.digest for d in manifest.layers)]
        with store.holding(held):
            names = _names(_oci_image_name(entry), name, entry.digest)
            images.append(store.commit(names, desc.digest, repo_digest=entry.digest))
    return images


__all__ = ["import_archive"]
