"""The real Transport: stdlib `http.client`, one connection per request.

Why stdlib rather than aiohttp: the store's API is synchronous (it is called from gRPC worker
threads and from the CLI, and its other work — hashing, unpacking tar files — blocks anyway), a pull
makes only a handful of requests, and a blocking client streams a blob straight into a file with no
event loop to own. Redirects are left to the registry client, which must drop the Authorization
header when a blob download is redirected to another host (storage backends reject it).
"""

from __future__ import annotations

import http.client
import ssl
import urllib.parse
from collections.abc import Mapping
from typing import BinaryIO

from cri.images.interfaces import HttpResponse

DEFAULT_TIMEOUT = 60.0


class _Response:
    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> None:
        self._conn = conn
        self._resp = resp
        self.status = resp.status
        self.headers: Mapping[str, str] = {k.lower(): v for k, v in resp.getheaders()}

    def read(self, size: int = -1) -> bytes:
        return self._resp.read(None if size < 0 else size)

    def close(self) -> None:
        self._resp.close()
        self._conn.close()


class HttpTransport:
    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT, ssl_context: ssl.SSLContext | None = None) -> None:
        self._timeout = timeout
        self._ssl = ssl_context or ssl.create_default_context()

    def request(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | BinaryIO | None = None
    ) -> HttpResponse:
        parts = urllib.parse.urlsplit(url)
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(parts.netloc, timeout=self._timeout, context=self._ssl)
        elif parts.scheme == "http":
            conn = http.client.HTTPConnection(parts.netloc, timeout=self._timeout)
        else:
            raise ValueError(f"unsupported URL scheme in {url!r}")
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        try:
            conn.request(method, target, body=body, headers=dict(headers))
            return _Response(conn, conn.getresponse())
        except BaseException:
            conn.close()
            raise
