"""Registry client: the OCI distribution / Docker registry v2 protocol, pull and push.

Auth follows the Docker token flow: a request answered 401 with `WWW-Authenticate: Bearer
realm=…,service=…,scope=…` is retried once with a token fetched from `realm` (HTTP basic with the
user's credentials, or an OAuth2 refresh-token POST for an identity token); `Basic` challenges get
the credentials directly. Every manifest and blob is verified against its digest before it is stored.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import json
import logging
import re
import urllib.parse
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from cri.images.errors import AuthError, DigestMismatch, ImageError, PullError
from cri.images.http import HttpTransport
from cri.images.interfaces import HttpResponse, Transport
from cri.images.manifest import (
    host_platform,
    media_type_of,
    parse_index,
    parse_manifest,
    select_platform,
    sha256_digest,
)
from cri.images.reference import Reference, parse_reference
from cri.images.types import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    INDEX_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    Image,
    Platform,
    RegistryAuth,
)

if TYPE_CHECKING:
    from cri.images.store import ImageStore

log = logging.getLogger(__name__)

MANIFEST_ACCEPT = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST])
MAX_MANIFEST_BYTES = 4 << 20  # distribution's own limit for manifests
MAX_REDIRECTS = 5
PARALLEL_BLOBS = 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHALLENGE_PARAM = re.compile(r'(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))')


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower-case: "bearer" or "basic"
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge:
    """Parse a `WWW-Authenticate` value (RFC 7235 auth-params, quoted or not) (pure)."""
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _CHALLENGE_PARAM.finditer(rest)
    }
    return Challenge(scheme.lower(), {k: v.replace('\\"', '"') for k, v in params.items()})


def basic_credentials(auth: RegistryAuth | None) -> tuple[str, str] | None:
    """(user, password) from CRI-style credentials: explicit fields first, else the base64 `auth`."""
    if auth is None:
        return None
    if auth.username:
        return auth.username, auth.password
    if auth.auth:
        user, sep, password = base64.b64decode(auth.auth).decode().partition(":")
        if sep:
            return user, password
    return None


def uses_plain_http(host: str, insecure: frozenset[str]) -> bool:
    """Loopback registries and explicitly insecure ones speak HTTP (like docker's defaults)."""
    if host in insecure:
        return True
    hostname = urllib.parse.urlsplit("//" + host).hostname or ""
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


class RegistryClient:
    """Talks to one repository of one registry; keeps the bearer token it obtained."""

    def __init__(
        self,
        ref: Reference,
        *,
        auth: RegistryAuth | None = None,
        transport: Transport | None = None,
        insecure: frozenset[str] = frozenset(),
        actions: str = "pull",
    ) -> None:
        self.ref = ref
        self._auth = auth
        self._transport: Transport = transport or HttpTransport()
        scheme = "http" if uses_plain_http(ref.registry_host, insecure) else "https"
        self.base = f"{scheme}://{ref.registry_host}/v2/{ref.path}"
        self._actions = actions
        self._authorization = f"Bearer {auth.registry_token}" if auth and auth.registry_token else ""

    # ---- requests with auth and redirects ------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | BinaryIO | None = None,
    ) -> HttpResponse:
        """Send, answering one auth challenge and following redirects; the caller closes the response."""
        for attempt in range(2):
            resp = self._send(method, url, headers or {}, body)
            if resp.status != 401 or attempt:
                return resp
            challenge = parse_challenge(resp.headers.get("www-authenticate", ""))
            resp.close()
            self._authorization = self._answer(challenge)
            if body is not None and not isinstance(body, bytes):
                body.seek(0)
        raise AssertionError("unreachable")

    def _send(self, method: str, url: str, headers: Mapping[str, str], body: bytes | BinaryIO | None) -> HttpResponse:
        origin = urllib.parse.urlsplit(url).netloc
        for _ in range(MAX_REDIRECTS + 1):
            sent = dict(headers)
            if self._authorization and urllib.parse.urlsplit(url).netloc == origin:
                sent["Authorization"] = self._authorization
            resp = self._transport.request(method, url, headers=sent, body=body)
            if resp.status not in _REDIRECTS or "location" not in resp.headers:
                return resp
            url = urllib.parse.urljoin(url, resp.headers["location"])
            resp.close()
        raise PullError(str(self.ref), f"more than {MAX_REDIRECTS} redirects")

    def _answer(self, challenge: Challenge) -> str:
        creds = basic_credentials(self._auth)
        if challenge.scheme == "basic":
            if creds is None:
                raise AuthError(str(self.ref), "registry wants basic auth and no credentials were given", status=401)
            return "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
        if challenge.scheme != "bearer" or "realm" not in challenge.params:
            raise AuthError(str(self.ref), f"unsupported auth challenge {challenge.scheme!r}", status=401)
        return "Bearer " + self._fetch_token(challenge, creds)

    def _fetch_token(self, challenge: Challenge, creds: tuple[str, str] | None) -> str:
        realm = challenge.params["realm"]
        scope = f"repository:{self.ref.path}:{self._actions}"
        query: dict[str, str] = {"scope": scope}
        if "service" in challenge.params:
            query["service"] = challenge.params["service"]
        headers = {"Accept": "application/json"}
        if self._auth and self._auth.identity_token:
            # OAuth2 refresh-token grant (distribution docs: "oauth.md").
            form = {
                **query,
                "grant_type": "refresh_token",
                "refresh_token": self._auth.identity_token,
                "client_id": "tinykube",
            }
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            resp = self._transport.request("POST", realm, headers=headers, body=urllib.parse.urlencode(form).encode())
        else:
            if creds is not None:
                headers["Authorization"] = "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
            sep = "&" if "?" in realm else "?"
            resp = self._transport.request("GET", realm + sep + urllib.parse.urlencode(query), headers=headers)
        try:
            body = resp.read(1 << 20)
            if resp.status in (401, 403):
                raise AuthError(
                    str(self.ref), f"token service refused the credentials (HTTP {resp.status})", status=resp.status
                )
            if resp.status != 200:
                raise PullError(str(self.ref), f"token service answered HTTP {resp.status}", status=resp.status)
        finally:
            resp.close()
        try:
            doc = json.loads(body)
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError) as err:
            raise PullError(str(self.ref), "token service answered something that is not a token") from err
        if not isinstance(token, str) or not token:
            raise PullError(str(self.ref), "token service answered without a token")
        return token

    def _fail(self, resp: HttpResponse, what: str) -> PullError:
        try:
            detail = resp.read(4096).decode(errors="replace").strip()
        finally:
            resp.close()
        cls = AuthError if resp.status in (401, 403) else PullError
        return cls(str(self.ref), f"{what}: HTTP {resp.status} {detail}", status=resp.status)

    # ---- pull side -----------------------------------------------------------------------------

    def get_manifest(self, reference: str) -> tuple[bytes, str, str]:
        """(body, media type, digest) of a manifest or index by tag or digest, digest verified."""
        resp = self.request("GET", f"{self.base}/manifests/{reference}", headers={"Accept": MANIFEST_ACCEPT})
        if resp.status != 200:
            raise self._fail(resp, f"manifest {reference}")
        try:
            body = resp.read(MAX_MANIFEST_BYTES + 1)
        finally:
            resp.close()
        if len(body) > MAX_MANIFEST_BYTES:
            raise PullError(str(self.ref), f"manifest {reference} is larger than {MAX_MANIFEST_BYTES} bytes")
        digest = sha256_digest(body)
        expected = reference if reference.startswith("sha256:") else resp.headers.get("docker-content-digest", "")
        if expected and expected.startswith("sha256:") and expected != digest:
            raise DigestMismatch(f"manifest {reference} of {self.ref}", expected, digest)
        return body, media_type_of(body, resp.headers.get("content-type", "").split(";")[0].strip()), digest

    def fetch_blob(self, digest: str, size: int, store: ImageStore) -> None:
        resp = self.request("GET", f"{self.base}/blobs/{digest}")
        if resp.status != 200:
            raise self._fail(resp, f"blob {digest}")
        try:
            store.blobs.ingest(resp, expected=digest, size=size, what=f"blob {digest} of {self.ref}")
        finally:
            resp.close()

    # ---- push side -----------------------------------------------------------------------------

    def push_blob(self, digest: str, open_blob: Callable[[], BinaryIO], size: int) -> None:
        """Monolithic upload (POST to start a session, PUT with the digest), skipped if present."""
        head = self.request("HEAD", f"{self.base}/blobs/{digest}")
        head.close()
        if head.status == 200:
            return
        start = self.request("POST", f"{self.base}/blobs/uploads/")
        if start.status != 202 or "location" not in start.headers:
            raise self._fail(start, f"starting upload of {digest}")
        start.close()
        location = urllib.parse.urljoin(self.base + "/", start.headers["location"])
        url = location + ("&" if "?" in location else "?") + urllib.parse.urlencode({"digest": digest})
        with open_blob() as f:
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
            resp = self.request("PUT", url, headers=headers, body=f)
        if resp.status != 201:
            raise self._fail(resp, f"uploading {digest}")
        resp.close()

    def put_manifest(self, reference: str, body: bytes, media_type: str) -> None:
        headers = {"Content-Type": media_type, "Content-Length": str(len(body))}
        resp = self.request("PUT", f"{self.base}/manifests/{reference}", headers=headers, body=body)
        if resp.status != 201:
            raise self._fail(resp, f"putting manifest {reference}")
        resp.close()


def pull(
    store: ImageStore,
    ref: str,
    *,
    auth: RegistryAuth | None = None,
    transport: Transport | None = None,
    platform: Platform | None = None,
) -> Image:
    """Pull `ref` into `store` (index → this platform's manifest → config and layers) and name it.

    When the registry cannot be reached at all (connection refused, no route, DNS failure) and the
    store already has `ref`, that local image is returned instead of an error."""
    parsed = parse_reference(ref)
    client = RegistryClient(parsed, auth=auth, transport=transport, insecure=store.insecure_registries)
    try:
        return _pull(store, client, parsed, platform or host_platform())
    except ImageError:
        store.prune()
        raise
    except (OSError, ValueError) as err:
        store.prune()
        local = store.status(str(parsed)) if isinstance(err, OSError) else None
        if local is not None:
            # The kubelet pulls `:latest` images on every start (policy Always); with the registry
            # unreachable, the built-in busybox or an imported image must still run.
            log.warning("registry for %s unreachable (%s): using the local image %s", parsed, err, local.id)
            return local
        raise PullError(str(parsed), f"{type(err).__name__}: {err}") from err


def _pull(store: ImageStore, client: RegistryClient, ref: Reference, platform: Platform) -> Image:
    body, media_type, digest = client.get_manifest(ref.object)
    repo_digest = digest  # an index's digest when there is one: what `name@digest` pulls again
    with store.holding([repo_digest]):
        store.blobs.write(body, expected=digest)
        if media_type in INDEX_TYPES:
            chosen = select_platform(parse_index(body), platform)
            body, media_type, digest = client.get_manifest(chosen.digest)
        manifest = parse_manifest(body)
        blobs = [manifest.config, *manifest.layers]
        with store.holding([digest, *(d.digest for d in blobs)]):
            store.blobs.write(body, expected=digest)
            missing = [d for d in blobs if not store.blobs.has(d.digest)]
            with ThreadPoolExecutor(max_workers=PARALLEL_BLOBS) as pool:
                for future in [pool.submit(client.fetch_blob, d.digest, d.size, store) for d in missing]:
                    future.result()
            log.info("pulled %s: %d of %d blobs fetched", ref, len(missing), len(blobs))
            return store.commit([str(ref)], digest, repo_digest=repo_digest)


def push(
    store: ImageStore,
    src: str,
    dest: str,
    *,
    auth: RegistryAuth | None = None,
    transport: Transport | None = None,
) -> str:
    """Push the local image `src` to the registry reference `dest`; returns the manifest digest."""
    image = store.get(src)
    target = parse_reference(dest)
    client = RegistryClient(
        target, auth=auth, transport=transport, insecure=store.insecure_registries, actions="pull,push"
    )
    body = store.blobs.read(image.manifest_digest)
    manifest = parse_manifest(body)
    try:
        for desc in (*manifest.layers, manifest.config):
            client.push_blob(
                desc.digest, functools.partial(store.blobs.open, desc.digest), store.blobs.size(desc.digest)
            )
        client.put_manifest(target.object, body, manifest.media_type)
    except ImageError:
        raise
    except (OSError, ValueError) as err:
        raise PullError(str(target), f"push failed: {type(err).__name__}: {err}") from err
    return image.manifest_digest
