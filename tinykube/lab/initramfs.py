"""A minimal initramfs writer: the `newc` cpio format (the one the kernel unpacks), gzip-compressed.

Pure Python so the kernel lab needs no cpio/mkinitramfs tools, and so the format is unit-tested. The
kernel accepts several concatenated archives, which lets the lab cache a base image (busybox, modules,
init) and append a tiny per-run archive holding only the command to run.
"""

from __future__ import annotations

import gzip
import stat
from dataclasses import dataclass

_TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class Entry:
    """One archive member; `data` is the file content or, for a symlink, its target."""

    path: str
    mode: int
    data: bytes = b""
    rdev_major: int = 0
    rdev_minor: int = 0


def directory(path: str) -> Entry:
    return Entry(path, stat.S_IFDIR | 0o755)


def regular(path: str, data: bytes, *, executable: bool = False) -> Entry:
    return Entry(path, stat.S_IFREG | (0o755 if executable else 0o644), data)


def symlink(path: str, target: str) -> Entry:
    return Entry(path, stat.S_IFLNK | 0o777, target.encode())


def char_device(path: str, major: int, minor: int) -> Entry:
    return Entry(path, stat.S_IFCHR | 0o600, b"", major, minor)


def _pad4(n: int) -> bytes:
    return b"\0" * (-n % 4)


def _member(entry: Entry, ino: int) -> bytes:
    name = entry.path.lstrip("/").encode() + b"\0"
    fields = (
        ino, entry.mode, 0, 0, 1, 0, len(entry.data), 0, 0,
        entry.rdev_major, entry.rdev_minor, len(name), 0,
    )  # fmt: skip
    header = b"070701" + b"".join(f"{v:08x}".encode() for v in fields)
    out = header + name + _pad4(len(header) + len(name)) + entry.data + _pad4(len(entry.data))
    return out


def cpio_newc(entries: list[Entry]) -> bytes:
    """The uncompressed archive; parents must precede their children (the kernel does not mkdir -p)."""
    parts = [_member(e, ino) for ino, e in enumerate(entries, start=1)]
    parts.append(_member(Entry(_TRAILER, 0), 0))
    blob = b"".join(parts)
    return blob + _pad4(len(blob))


def gzip_cpio(entries: list[Entry]) -> bytes:
    return gzip.compress(cpio_newc(entries), compresslevel=6, mtime=0)


def parse_newc(blob: bytes) -> list[Entry]:
    """Reads back an uncompressed archive (for tests and for inspecting a cached image)."""
    entries: list[Entry] = []
    pos = 0
    while True:
        header = blob[pos : pos + 110]
        if header[:6] != b"070701":
            raise ValueError(f"bad cpio magic at offset {pos}")
        fields = [int(header[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        mode, filesize, rmaj, rmin, namesize = fields[1], fields[6], fields[9], fields[10], fields[11]
        name_start = pos + 110
        name = blob[name_start : name_start + namesize - 1].decode()
        data_start = name_start + namesize + (-(110 + namesize) % 4)
        data = blob[data_start : data_start + filesize]
        pos = data_start + filesize + (-filesize % 4)
        if name == _TRAILER:
            return entries
        entries.append(Entry(name, mode, data, rmaj, rmin))
