"""Kernel access the image store needs, behind narrow Protocols so unit tests can use fakes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import BinaryIO, Protocol


class WhiteoutWriter(Protocol):
    """Turns OCI whiteout markers into the form the union filesystem understands."""

    def whiteout(self, path: str) -> None:
        """Mark `path` (absolute, inside the layer dir) as deleted in this layer."""

    def opaque(self, directory: str) -> None:
        """Mark `directory` as hiding everything below it in lower layers."""


class HttpResponse(Protocol):
    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]:
        """Header names lower-cased."""

    def read(self, size: int = -1) -> bytes: ...

    def close(self) -> None: ...


class Transport(Protocol):
    """One HTTP request; redirects are *not* followed (the registry client decides, see registry.py)."""

    def request(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | BinaryIO | None = None
    ) -> HttpResponse: ...
