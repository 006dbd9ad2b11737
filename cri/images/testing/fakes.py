"""Stateful fakes for the image store's kernel-facing Protocols."""

from __future__ import annotations

import os

from cri.images.interfaces import WhiteoutWriter


class RecordingWhiteouts:
    """Stands in for overlayfs whiteouts without root: an empty marker file plus a record of what
    was marked, so tests can assert both the tree and the markers."""

    MARKER_SUFFIX = ".tk-whiteout"

    def __init__(self) -> None:
        self.whiteouts: set[str] = set()
        self.opaque_dirs: set[str] = set()

    def whiteout(self, path: str) -> None:
        if os.path.lexists(path):
            raise FileExistsError(path)
        with open(path, "wb"):
            pass
        self.whiteouts.add(path)

    def opaque(self, directory: str) -> None:
        self.opaque_dirs.add(directory)


_: WhiteoutWriter = RecordingWhiteouts()
