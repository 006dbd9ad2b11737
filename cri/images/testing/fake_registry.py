"""An in-memory registry speaking the v2 distribution API through the Transport Protocol, with the
Docker bearer-token flow, optional blob redirects to a "storage" host, and fault injection."""

from __future__ import annotations

import base64
import io
import json
import re
import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import BinaryIO

from cri.images.interfaces import HttpResponse, Transport
from cri.images.manifest import media_type_of, sha256_digest

REGISTRY_HOST = "registry.test"
AUTH_HOST = "auth.test"
STORAGE_HOST = "storage.test"
_ROUTE = re.compile(r"/v2/(?P<name>.+?)/(?P<kind>manifests|blobs/uploads|blobs)/(?P<rest>[^/]*)$")


@dataclass
class FakeResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def __post_init__(self) -> None:
        self._stream = io.BytesIO(self.body)

    def read(self, size: int = -1) -> bytes:
        return self._stream.read(size)

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class Sent:
    method: str
    url: str
    headers: dict[str, str]


class FakeRegistry:
    """State: `blobs` (digest → bytes) and `manifests` ((repo, tag-or-digest) → bytes).

    `users` turns on token auth (basic credentials checked at the token endpoint); `corrupt`
    serves other bytes for a digest; `redirect_blobs` answers blob GETs with a 307 to a storage
    host that refuses requests carrying an Authorization header (like S3 signed URLs)."""

    def __init__(self, *, users: Mapping[str, str] | None = None, redirect_blobs: bool = False) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[tuple[str, str], bytes] = {}
        self.users = dict(users or {})
        self.redirect_blobs = redirect_blobs
        self.corrupt: dict[str, bytes] = {}
        self.refresh_tokens: set[str] = set()
        self.sent: list[Sent] = []
        self._tokens: dict[str, str] = {}  # token → scope
        self._uploads: dict[str, str] = {}  # upload id → repo

    # -- content helpers -------------------------------------------------------------------------
    def put_blob(self, data: bytes) -> str:
        digest = sha256_digest(data)
        self.blobs[digest] = data
        return digest

    def put_manifest(self, repo: str, tag: str, body: bytes) -> str:
        digest = sha256_digest(body)
        self.manifests[(repo, tag)] = body
        self.manifests[(repo, digest)] = body
        return digest

    # -- Transport -------------------------------------------------------------------------------
    def request(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | BinaryIO | None = None
    ) -> HttpResponse:
        self.sent.append(Sent(method, url, dict(headers)))
        data = body if isinstance(body, bytes) or body is None else body.read()
        parts = urllib.parse.urlsplit(url)
        if parts.netloc == AUTH_HOST:
            return self._refresh(data) if method == "POST" else self._token(parts, headers)
        if parts.netloc == STORAGE_HOST:
            if "Authorization" in headers:
                return FakeResponse(400, body=b"storage: unexpected Authorization header")
            return self._blob_body(parts.path.lstrip("/"), method)
        if parts.netloc != REGISTRY_HOST:
            raise OSError(f"fake registry: no route to {parts.netloc}")
        match = _ROUTE.match(parts.path)
        if match is None:
            return FakeResponse(404, body=b'{"errors":[{"code":"NAME_UNKNOWN"}]}')
        repo, kind, rest = match["name"], match["kind"], match["rest"]
        if self.users and not self._authorized(headers, repo, "push" if method in ("POST", "PUT") else "pull"):
            challenge = (
                f'Bearer realm="https://{AUTH_HOST}/token",service="{REGISTRY_HOST}",'
                f'scope="repository:{repo}:{"push,pull" if method in ("POST", "PUT") else "pull"}"'
            )
            return FakeResponse(401, {"www-authenticate": challenge}, b'{"errors":[{"code":"UNAUTHORIZED"}]}')
        if kind == "manifests":
            return self._manifest(method, repo, rest, data, headers)
        if kind == "blobs/uploads":
            return self._upload(method, repo, rest, parts.query, data)
        if method in ("GET", "HEAD") and self.redirect_blobs and rest in self.blobs:
            return FakeResponse(307, {"location": f"https://{STORAGE_HOST}/{rest}"})
        return self._blob_body(rest, method)

    # -- handlers --------------------------------------------------------------------------------
    def _token(self, parts: urllib.parse.SplitResult, headers: Mapping[str, str]) -> HttpResponse:
        auth = headers.get("Authorization", "")
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            if self.users.get(user) != password:
                return FakeResponse(401, body=b"bad credentials")
        elif self.users:
            return FakeResponse(401, body=b"anonymous access denied")
        scope = urllib.parse.parse_qs(parts.query).get("scope", [""])[0]
        token = uuid.uuid4().hex
        self._tokens[token] = scope
        return FakeResponse(200, {"content-type": "application/json"}, json.dumps({"token": token}).encode())

    def _refresh(self, form: bytes | None) -> HttpResponse:
        """OAuth2 refresh-token grant: an identity token from `refresh_tokens` buys an access token."""
        fields = urllib.parse.parse_qs((form or b"").decode())
        if (
            fields.get("grant_type") != ["refresh_token"]
            or fields.get("refresh_token", [""])[0] not in self.refresh_tokens
        ):
            return FakeResponse(401, body=b"invalid refresh token")
        token = uuid.uuid4().hex
        self._tokens[token] = fields.get("scope", [""])[0]
        return FakeResponse(200, {"content-type": "application/json"}, json.dumps({"access_token": token}).encode())

    def _authorized(self, headers: Mapping[str, str], repo: str, action: str) -> bool:
        auth = headers.get("Authorization", "")
        scope = self._tokens.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None
        if scope is None:
            return False
        _, name, actions = scope.split(":", 2) if scope.count(":") >= 2 else ("", "", "")
        return name == repo and action in actions.split(",")

    def _blob_body(self, digest: str, method: str) -> HttpResponse:
        if digest not in self.blobs:
            return FakeResponse(404, body=b'{"errors":[{"code":"BLOB_UNKNOWN"}]}')
        data = self.corrupt.get(digest, self.blobs[digest])
        return FakeResponse(200, {"docker-content-digest": digest}, b"" if method == "HEAD" else data)

    def _manifest(
        self, method: str, repo: str, ref: str, data: bytes | None, headers: Mapping[str, str]
    ) -> HttpResponse:
        if method == "PUT":
            assert data is not None
            digest = self.put_manifest(repo, ref, data)
            return FakeResponse(201, {"docker-content-digest": digest})
        body = self.manifests.get((repo, ref))
        if body is None:
            return FakeResponse(404, body=b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
        served = self.corrupt.get(sha256_digest(body), body)
        response_headers = {"content-type": media_type_of(body), "docker-content-digest": sha256_digest(body)}
        return FakeResponse(200, response_headers, b"" if method == "HEAD" else served)

    def _upload(self, method: str, repo: str, upload_id: str, query: str, data: bytes | None) -> HttpResponse:
        if method == "POST":
            upload_id = uuid.uuid4().hex
            self._uploads[upload_id] = repo
            return FakeResponse(202, {"location": f"/v2/{repo}/blobs/uploads/{upload_id}?_state=x"})
        if method == "PUT" and self._uploads.pop(upload_id, None) == repo:
            digest = urllib.parse.parse_qs(query).get("digest", [""])[0]
            if data is None or sha256_digest(data) != digest:
                return FakeResponse(400, body=b'{"errors":[{"code":"DIGEST_INVALID"}]}')
            self.blobs[digest] = data
            return FakeResponse(201, {"docker-content-digest": digest})
        return FakeResponse(404, body=b'{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN"}]}')


_: Transport = FakeRegistry()
