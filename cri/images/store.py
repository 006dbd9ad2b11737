"""The on-disk image store the CRI ImageService serves from.

Layout under `root`::

    blobs/sha256/<hex>        manifests, configs and layer blobs, by digest (content.py)
    layers/sha256/<hex>/      one unpacked directory per layer diff_id, shared by every image
    ingest/                   temporary files and half-unpacked layers (renamed into place when done)
    index.json                name → manifest digest (the only mutable file; replaced atomically)
    .lock                     flock held while index.json changes or garbage is collected

Images are identified by their config digest (like docker and containerd). Layers and blobs carry no
reference counts of their own: after a removal, whatever no remaining image reaches is deleted, which
cannot drift out of step with the index. A thread lock plus the file lock let the CRI daemon and the
`tinykube image` CLI share one store.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import json
import os
import shutil
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cri.images.content import BlobStore, digest_hex
from cri.images.errors import ImageNotFound, InvalidImage
from cri.images.interfaces import WhiteoutWriter
from cri.images.layers import OverlayWhiteouts, unpack_layer
from cri.images.manifest import parse_config, parse_manifest
from cri.images.reference import is_digest, parse_reference
from cri.images.types import FsUsage, Image, ImageConfig, Manifest, RegistryAuth

DEFAULT_ROOT = "/var/lib/tinykube/cri/images"
_INDEX_VERSION = 1


@dataclass(frozen=True)
class _Parsed:
    manifest: Manifest
    config: ImageConfig
    diff_ids: tuple[str, ...]


@dataclass
class _Index:
    """index.json: `refs` maps a normalized reference to {"manifest": digest, "repo_digest": digest}."""

    refs: dict[str, dict[str, str]] = field(default_factory=dict)
    pinned: set[str] = field(default_factory=set)  # manifest digests

    def to_json(self) -> bytes:
        doc = {"version": _INDEX_VERSION, "refs": self.refs, "pinned": sorted(self.pinned)}
        return json.dumps(doc, indent=1, sort_keys=True).encode()


class ImageStore:
    """Images on disk: pull, import, build-in, list, status, remove, and unpacked layers for overlayfs."""

    def __init__(
        self,
        root: str = DEFAULT_ROOT,
        *,
        whiteouts: WhiteoutWriter | None = None,
        insecure_registries: Iterable[str] = (),
    ) -> None:
        self.root = os.path.abspath(root)
        self.blobs = BlobStore(self.root)
        self.layers_dir = os.path.join(self.root, "layers", "sha256")
        os.makedirs(self.layers_dir, exist_ok=True)
        self._index_path = os.path.join(self.root, "index.json")
        self._lock_path = os.path.join(self.root, ".lock")
        self._whiteouts = whiteouts or OverlayWhiteouts()
        self.insecure_registries = frozenset(insecure_registries)
        self._mutex = threading.RLock()  # guards index.json writes and garbage collection in this process
        self._busy: dict[str, int] = {}  # digests being ingested right now; guarded by _mutex
        self._parsed: dict[str, _Parsed] = {}  # manifest digest → parsed content (immutable blobs)

    # ---- reading -------------------------------------------------------------------------------

    def list(self) -> builtins.list[Image]:
        index = self._read_index()
        by_manifest: dict[str, builtins.list[str]] = {}
        for name, entry in index.refs.items():
            by_manifest.setdefault(entry["manifest"], []).append(name)
        images: dict[str, Image] = {}
        for manifest_digest, names in sorted(by_manifest.items()):
            image = self._image(index, manifest_digest, names)
            prev = images.get(image.id)
            images[image.id] = image if prev is None else _merge(prev, image)
        return sorted(images.values(), key=lambda i: (i.repo_tags, i.id))

    def status(self, ref: str) -> Image | None:
        """The image `ref` names (a reference, `name@digest`, or an image id), or None."""
        index = self._read_index()
        manifest_digest = self._resolve(index, ref)
        if manifest_digest is None:
            return None
        image_id = self._parse(manifest_digest).manifest.config.digest
        for image in self.list():
            if image.id == image_id:
                return image
        return None

    def get(self, ref: str) -> Image:
        image = self.status(ref)
        if image is None:
            raise ImageNotFound(ref)
        return image

    def config(self, ref: str) -> ImageConfig:
        return self._parse(self._must_resolve(ref)).config

    def layers(self, ref: str) -> builtins.list[str]:
        """Unpacked layer directories, bottom first (reverse it for overlayfs `lowerdir`, which lists
        the top layer first). A layer directory that went missing is unpacked again from its blob."""
        manifest_digest = self._must_resolve(ref)
        parsed = self._parse(manifest_digest)
        return [
            self._ensure_layer(desc.digest, diff_id)
            for desc, diff_id in zip(parsed.manifest.layers, parsed.diff_ids, strict=True)
        ]

    def fs_info(self) -> FsUsage:
        """Bytes and inodes used under the store root (hard links counted once)."""
        seen: set[tuple[int, int]] = set()
        used = 0
        for dirpath, dirnames, filenames in os.walk(self.root):
            for name in (*dirnames, *filenames):
                with contextlib.suppress(FileNotFoundError):
                    st = os.lstat(os.path.join(dirpath, name))
                    key = (st.st_dev, st.st_ino)
                    if key not in seen:
                        seen.add(key)
                        used += st.st_blocks * 512
        return FsUsage(mountpoint=self.root, used_bytes=used, inodes_used=len(seen) + 1, timestamp_ns=time.time_ns())

    # ---- writing -------------------------------------------------------------------------------

    def pull(self, ref: str, auth: RegistryAuth | None = None) -> Image:
        from cri.images.registry import pull

        return pull(self, ref, auth=auth)

    def import_archive(self, path: str, *, name: str | None = None) -> builtins.list[Image]:
        from cri.images.archive import import_archive

        return import_archive(self, path, name=name)

    def ensure_builtin(self) -> builtins.list[Image]:
        from cri.images.builtin import ensure_builtin

        return ensure_builtin(self)

    def remove(self, ref: str) -> bool:
        """Remove the image `ref` resolves to, with all its names (CRI RemoveImage semantics), then
        delete blobs and layers no remaining image uses. False if there was no such image."""
        with self._locked():
            index = self._read_index()
            manifest_digest = self._resolve(index, ref)
            if manifest_digest is None:
                return False
            image_id = self._parse(manifest_digest).manifest.config.digest
            doomed = {
                name for name, e in index.refs.items() if self._parse(e["manifest"]).manifest.config.digest == image_id
            }
            for name in doomed:
                index.pinned.discard(index.refs.pop(name)["manifest"])
            self._write_index(index)
            self._collect_garbage(index)
            return True

    def commit(
        self, names: Iterable[str], manifest_digest: str, *, repo_digest: str = "", pinned: bool = False
    ) -> Image:
        """Record `names` → manifest once every blob it needs is in the store; unpacks its layers.

        This is the last step of pull, import and the builtin build (their ingest API)."""
        normalized = [str(parse_reference(n)) for n in names]
        if not normalized:
            raise InvalidImage(f"image {manifest_digest} needs at least one name to be stored")
        parsed = self._parse(manifest_digest)
        # Held until the index names them, so a concurrent remove() cannot collect them meanwhile.
        with self.holding([manifest_digest, repo_digest or manifest_digest, *parsed.diff_ids]):
            self._unpack_all(manifest_digest)
            with self._locked():
                index = self._read_index()
                for name in normalized:
                    index.refs[name] = {"manifest": manifest_digest, "repo_digest": repo_digest or manifest_digest}
                if pinned:
                    index.pinned.add(manifest_digest)
                self._write_index(index)
                image = self._image(index, manifest_digest, normalized)
        return self.get(image.id)

    def prune(self) -> None:
        """Delete blobs and layers no image uses (left behind e.g. by a failed pull)."""
        with self._locked():
            self._collect_garbage(self._read_index())

    @contextlib.contextmanager
    def holding(self, digests: Iterable[str]) -> Iterator[None]:
        """Keep garbage collection away from `digests` while they are being ingested."""
        held = list(digests)
        with self._mutex:
            for d in held:
                self._busy[d] = self._busy.get(d, 0) + 1
        try:
            yield
        finally:
            with self._mutex:
                for d in held:
                    self._busy[d] -= 1
                    if not self._busy[d]:
                        del self._busy[d]

    # ---- internals -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._mutex, open(self._lock_path, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read_index(self) -> _Index:
        try:
            with open(self._index_path, "rb") as f:
                doc: dict[str, Any] = json.load(f)
        except FileNotFoundError:
            return _Index()
        return _Index(refs=dict(doc.get("refs", {})), pinned=set(doc.get("pinned", [])))

    def _write_index(self, index: _Index) -> None:
        tmp = self.blobs.temp_path("index")
        with open(tmp, "wb") as f:
            f.write(index.to_json())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._index_path)

    def _parse(self, manifest_digest: str) -> _Parsed:
        cached = self._parsed.get(manifest_digest)
        if cached is None:
            manifest = parse_manifest(self.blobs.read(manifest_digest))
            config, diff_ids = parse_config(self.blobs.read(manifest.config.digest))
            if len(diff_ids) != len(manifest.layers):
                raise InvalidImage(
                    f"manifest {manifest_digest} has {len(manifest.layers)} layers"
                    f" but its config has {len(diff_ids)} diff_ids"
                )
            cached = self._parsed[manifest_digest] = _Parsed(manifest, config, diff_ids)
        return cached

    def _image(self, index: _Index, manifest_digest: str, names: builtins.list[str]) -> Image:
        parsed = self._parse(manifest_digest)
        tags, digests = [], []
        for name in names:
            ref = parse_reference(name)
            if ref.tag:
                tags.append(f"{ref.name}:{ref.tag}")
            digests.append(f"{ref.name}@{index.refs[name]['repo_digest']}")
        size = parsed.manifest.config.size + sum(layer.size for layer in parsed.manifest.layers)
        return Image(
            id=parsed.manifest.config.digest,
            repo_tags=tuple(sorted(set(tags))),
            repo_digests=tuple(sorted(set(digests))),
            size=size,
            manifest_digest=manifest_digest,
            diff_ids=parsed.diff_ids,
            config=parsed.config,
            pinned=manifest_digest in index.pinned,
        )

    def _resolve(self, index: _Index, ref: str) -> str | None:
        """Manifest digest for a reference, `name@digest`, image id (`sha256:…`, bare hex, or a
        unique hex prefix of at least 12 characters)."""
        bare = ref.removeprefix("sha256:")
        if is_digest(ref) or (len(bare) >= 12 and all(c in "0123456789abcdef" for c in bare) and "/" not in ref):
            matches = {
                e["manifest"]
                for e in index.refs.values()
                if digest_hex(self._parse(e["manifest"]).manifest.config.digest).startswith(bare)
                or digest_hex(e["manifest"]).startswith(bare)
            }
            if len(matches) == 1:
                return matches.pop()
            if matches or is_digest(ref):
                return None
        parsed = parse_reference(ref)
        entry = index.refs.get(str(parsed))
        if entry is not None:
            return entry["manifest"]
        if parsed.digest:
            for name, e in index.refs.items():
                if parsed.digest in (e["manifest"], e["repo_digest"]) and parse_reference(name).name == parsed.name:
                    return e["manifest"]
        return None

    def _must_resolve(self, ref: str) -> str:
        digest = self._resolve(self._read_index(), ref)
        if digest is None:
            raise ImageNotFound(ref)
        return digest

    def _layer_dir(self, diff_id: str) -> str:
        return os.path.join(self.layers_dir, digest_hex(diff_id))

    def _unpack_all(self, manifest_digest: str) -> builtins.list[str]:
        parsed = self._parse(manifest_digest)
        for desc in (parsed.manifest.config, *parsed.manifest.layers):
            if not self.blobs.has(desc.digest):
                raise InvalidImage(f"blob {desc.digest} of {manifest_digest} is not in the store")
        return [
            self._ensure_layer(desc.digest, diff_id)
            for desc, diff_id in zip(parsed.manifest.layers, parsed.diff_ids, strict=True)
        ]

    def _ensure_layer(self, blob_digest: str, diff_id: str) -> str:
        final = self._layer_dir(diff_id)
        if os.path.isdir(final):
            return final
        tmp = self.blobs.temp_path("layer")
        os.mkdir(tmp, 0o755)
        try:
            with self.holding([diff_id]), self.blobs.open(blob_digest) as blob:
                unpack_layer(blob, tmp, whiteouts=self._whiteouts, expected_diff_id=diff_id)
                try:
                    os.rename(tmp, final)
                except OSError:
                    if not os.path.isdir(final):  # lost a race with another unpack of the same layer: fine
                        raise
        finally:
            if os.path.lexists(tmp):
                shutil.rmtree(tmp)
        return final

    def _collect_garbage(self, index: _Index) -> None:
        live_blobs: set[str] = set()
        live_layers: set[str] = set()
        for entry in index.refs.values():
            parsed = self._parse(entry["manifest"])
            live_blobs.update({entry["manifest"], entry["repo_digest"], parsed.manifest.config.digest})
            live_blobs.update(d.digest for d in parsed.manifest.layers)
            live_layers.update(digest_hex(d) for d in parsed.diff_ids)
        busy = set(self._busy)
        for digest in list(self.blobs.digests()):
            if digest not in live_blobs and digest not in busy:
                self.blobs.delete(digest)
                self._parsed.pop(digest, None)
        for name in os.listdir(self.layers_dir):
            if name not in live_layers and "sha256:" + name not in busy:
                trash = self.blobs.temp_path("trash")
                os.rename(os.path.join(self.layers_dir, name), trash)
                shutil.rmtree(trash)


def _merge(a: Image, b: Image) -> Image:
    """One image reached through two manifests (e.g. the same config pushed with other compression)."""
    return Image(
        id=a.id,
        repo_tags=tuple(sorted({*a.repo_tags, *b.repo_tags})),
        repo_digests=tuple(sorted({*a.repo_digests, *b.repo_digests})),
        size=a.size,
        manifest_digest=a.manifest_digest,
        diff_ids=a.diff_ids,
        config=a.config,
        pinned=a.pinned or b.pinned,
    )


__all__ = ["DEFAULT_ROOT", "ImageStore"]
