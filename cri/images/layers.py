"""Unpacking OCI layer tarballs into per-layer directories usable as overlayfs lower dirs.

A layer (image-spec layer.md) is a tar of changes. Deletions are marker files: `.wh.NAME` deletes
NAME, `.wh..wh..opq` in a directory hides everything from lower layers in it. Overlayfs spells the
same things differently (kernel Documentation/filesystems/overlayfs.rst): a whiteout is a 0/0
character device, an opaque directory carries the xattr `trusted.overlay.opaque=y`. Each layer is
unpacked alone into an empty directory, converting the markers, so layers can be shared by images and
stacked by the runtime as `lowerdir=top:…:bottom`.

Entries are checked before extraction: no absolute or `..` paths, no writing through a symlink made
earlier in the same layer, hard links only to files inside the layer.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import posixpath
import shutil
import stat
import tarfile
from dataclasses import dataclass
from typing import BinaryIO

from cri.images.errors import DigestMismatch, InvalidImage
from cri.images.interfaces import WhiteoutWriter

log = logging.getLogger(__name__)

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
_XATTR_PAX_PREFIX = "SCHILY.xattr."
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass(frozen=True)
class Entry:
    """What a tar member means for the layer: `kind` is "file", "whiteout" or "opaque"; `path` is
    relative to the layer root (the deleted path for a whiteout, the directory for an opaque marker)."""

    kind: str
    path: str


def clean_path(name: str) -> str:
    """A tar member name as a relative path inside the layer; raises on escapes."""
    stripped = name.lstrip("/")
    norm = posixpath.normpath(stripped) if stripped else "."
    if norm == ".." or norm.startswith("../"):
        raise InvalidImage(f"layer entry {name!r} points outside the layer")
    return norm


def classify(name: str) -> Entry:
    """Map a tar member name to what it does (pure)."""
    path = clean_path(name)
    parent, base = posixpath.split(path)
    if base == OPAQUE_MARKER:
        return Entry("opaque", parent or ".")
    if base.startswith(WHITEOUT_PREFIX):
        target = base[len(WHITEOUT_PREFIX) :]
        if not target or target.startswith(WHITEOUT_PREFIX):
            # Other `.wh..wh.*` names are aufs bookkeeping (e.g. `.wh..wh.plnk`): no meaning here.
            return Entry("ignore", path)
        return Entry("whiteout", posixpath.join(parent, target))
    return Entry("file", path)


class OverlayWhiteouts:
    """The real WhiteoutWriter: overlayfs whiteout devices and opaque xattrs (needs root)."""

    def whiteout(self, path: str) -> None:
        os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))

    def opaque(self, directory: str) -> None:
        os.setxattr(directory, OVERLAY_OPAQUE_XATTR, b"y", follow_symlinks=False)


class _HashingReader:
    """Passes reads through while hashing them: the diff_id is the sha256 of the uncompressed tar."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner
        self._hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self._hash.update(data)
        return data

    def drain(self) -> str:
        while self.read(1 << 16):
            pass
        return "sha256:" + self._hash.hexdigest()


def open_uncompressed(f: BinaryIO) -> BinaryIO:
    """Wrap a layer blob in the right decompressor, decided by its magic bytes rather than the
    declared media type (docker-save layers are plain tars whatever the manifest says)."""
    head = f.read(4)
    f.seek(0)
    if head.startswith(_GZIP_MAGIC):
        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    if head == _ZSTD_MAGIC:
        raise InvalidImage("zstd-compressed layers are not supported (no zstd decoder available)")
    return f


class _Extractor:
    def __init__(self, root: str, whiteouts: WhiteoutWriter) -> None:
        self.root = root
        self.whiteouts = whiteouts
        self._safe_dirs: set[str] = {"."}

    def _ensure_dir(self, rel: str) -> str:
        """Make the directory `rel` (and parents) as real directories inside root, never via symlinks."""
        if rel in self._safe_dirs:
            return os.path.join(self.root, rel)
        parent = posixpath.dirname(rel) or "."
        self._ensure_dir(parent)
        full = os.path.join(self.root, rel)
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            os.mkdir(full, 0o755)
        else:
            if stat.S_ISLNK(st.st_mode):
                raise InvalidImage(f"layer writes below symlink {rel!r}")
            if not stat.S_ISDIR(st.st_mode):
                os.unlink(full)
                os.mkdir(full, 0o755)
        self._safe_dirs.add(rel)
        return full

    def _clear(self, rel: str, *, keep_dir: bool) -> None:
        full = os.path.join(self.root, rel)
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return
            shutil.rmtree(full)
            self._safe_dirs = {d for d in self._safe_dirs if d != rel and not d.startswith(rel + "/")}
        else:
            os.unlink(full)

    def apply(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        entry = classify(member.name)
        if entry.kind == "ignore":
            return
        if entry.kind == "opaque":
            self.whiteouts.opaque(self._ensure_dir(entry.path))
            return
        rel = entry.path
        if rel == ".":
            return  # the layer root itself: its attributes belong to the runtime's rootfs
        self._ensure_dir(posixpath.dirname(rel) or ".")
        full = os.path.join(self.root, rel)
        if entry.kind == "whiteout":
            self._clear(rel, keep_dir=False)
            self.whiteouts.whiteout(full)
            return
        self._clear(rel, keep_dir=member.isdir())
        member.name = rel
        if member.islnk():
            target = clean_path(member.linkname)
            if not os.path.lexists(os.path.join(self.root, target)):
                raise InvalidImage(f"hard link {rel!r} → {member.linkname!r}: target is not in this layer")
            member.linkname = target
        tar.extract(member, self.root, set_attrs=True, numeric_owner=True)
        if member.isdir():
            self._safe_dirs.add(rel)
        self._set_xattrs(full, member)

    @staticmethod
    def _set_xattrs(full: str, member: tarfile.TarInfo) -> None:
        for key, value in member.pax_headers.items():
            if not key.startswith(_XATTR_PAX_PREFIX):
                continue
            name = key[len(_XATTR_PAX_PREFIX) :]
            if name.startswith("trusted.overlay."):
                continue  # a layer must not forge overlayfs metadata
            try:
                os.setxattr(full, name, value.encode("utf-8", "surrogateescape"), follow_symlinks=False)
            except OSError as err:
                log.warning("layer entry %s: cannot set xattr %s: %s", member.name, name, err)


def unpack_layer(blob: BinaryIO, dest: str, *, whiteouts: WhiteoutWriter, expected_diff_id: str = "") -> str:
    """Unpack a layer blob (tar, tar+gzip) into the existing empty directory `dest`.

    Returns the diff_id (sha256 of the uncompressed tar); raises DigestMismatch when it differs from
    `expected_diff_id` (the caller then deletes `dest`).
    """
    reader = _HashingReader(open_uncompressed(blob))
    extractor = _Extractor(dest, whiteouts)
    try:
        with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
            for member in tar:
                extractor.apply(tar, member)
    except (tarfile.TarError, EOFError, gzip.BadGzipFile) as err:
        raise InvalidImage(f"layer is not a valid tar archive: {err}") from err
    diff_id = reader.drain()
    if expected_diff_id and diff_id != expected_diff_id:
        raise DigestMismatch("layer diff_id", expected_diff_id, diff_id)
    return diff_id
