"""Content-addressed blob storage: `blobs/sha256/<hex>`, written once, verified on the way in.

Every blob enters through a temporary file in `ingest/` that is hashed while written and renamed
into place only if its sha256 (and size, when known) match, so a blob file is always complete and
correct; readers need no lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterator
from typing import BinaryIO, Protocol

from cri.images.errors import DigestMismatch, InvalidImage

_CHUNK = 1 << 20


class Readable(Protocol):
    def read(self, size: int = -1) -> bytes: ...


def digest_hex(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise InvalidImage(f"unsupported digest {digest!r} (need sha256:<64 hex>)")
    return hexpart


class BlobStore:
    def __init__(self, root: str) -> None:
        self.dir = os.path.join(root, "blobs", "sha256")
        self.ingest_dir = os.path.join(root, "ingest")
        os.makedirs(self.dir, exist_ok=True)
        os.makedirs(self.ingest_dir, exist_ok=True)

    def path(self, digest: str) -> str:
        return os.path.join(self.dir, digest_hex(digest))

    def has(self, digest: str) -> bool:
        return os.path.exists(self.path(digest))

    def size(self, digest: str) -> int:
        return os.stat(self.path(digest)).st_size

    def open(self, digest: str) -> BinaryIO:
        return open(self.path(digest), "rb")

    def read(self, digest: str) -> bytes:
        with self.open(digest) as f:
            return f.read()

    def digests(self) -> Iterator[str]:
        for name in os.listdir(self.dir):
            yield "sha256:" + name

    def delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(digest))

    def temp_path(self, prefix: str) -> str:
        return os.path.join(self.ingest_dir, f"{prefix}-{uuid.uuid4().hex}")

    def write(self, data: bytes, *, expected: str = "", what: str = "blob") -> str:
        """Store `data`; returns its digest. Raises DigestMismatch if it is not `expected`."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if expected and digest != expected:
            raise DigestMismatch(what, expected, digest)
        if not self.has(digest):
            tmp = self.temp_path("blob")
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, self.path(digest))
        return digest

    def ingest(self, src: Readable, *, expected: str = "", size: int = -1, what: str = "blob") -> str:
        """Stream `src` into the store, verifying digest and size; returns the digest."""
        tmp = self.temp_path("blob")
        h = hashlib.sha256()
        written = 0
        try:
            with open(tmp, "wb") as f:
                while chunk := src.read(_CHUNK):
                    h.update(chunk)
                    f.write(chunk)
                    written += len(chunk)
            digest = "sha256:" + h.hexdigest()
            if expected and digest != expected:
                raise DigestMismatch(what, expected, digest)
            if size >= 0 and written != size:
                raise InvalidImage(f"{what}: got {written} bytes, descriptor says {size}")
            os.replace(tmp, self.path(digest))
            return digest
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
