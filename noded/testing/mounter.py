"""A `Mounter` that remembers tmpfs mounts instead of making them (unit tests run without root)."""

from __future__ import annotations

from noded.volumes import Mounter


class RecordingMounter:
    def __init__(self) -> None:
        self.mounted: dict[str, int] = {}  # path → size limit in bytes (0: none)

    def mount_tmpfs(self, path: str, size_bytes: int) -> None:
        self.mounted[path] = size_bytes

    def unmount(self, path: str) -> None:
        self.mounted.pop(path, None)


_: Mounter = RecordingMounter()
