"""The Docker token flow against a real docker-registry configured for token auth, with a token
service in this test that signs JWTs (RS256, x5c header) for users it knows."""

import base64
import datetime
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from cri.images import AuthError, ImageStore, RegistryAuth
from cri.images.builtin import BUSYBOX_BINARY
from cri.images.registry import push
from cri.images.testing.registry import REGISTRY_BINARY, start_registry

pytestmark = pytest.mark.skipif(
    not (os.path.exists(REGISTRY_BINARY) and os.path.exists(BUSYBOX_BINARY)),
    reason="needs Debian's docker-registry and busybox-static",
)

SERVICE = "tinykube-test-registry"
ISSUER = "tinykube-test-issuer"
USERS = {"alice": "wonderland"}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenService:
    def __init__(self, workdir: str) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .sign(self.key, hashes.SHA256())
        )
        self.bundle = os.path.join(workdir, "token-ca.pem")
        with open(self.bundle, "wb") as f:
            f.write(self.cert.public_bytes(serialization.Encoding.PEM))
        self.requests: list[dict[str, list[str]]] = []

    def token(self, user: str, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, name, actions = scope.split(":", 2)
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": user,
            "aud": SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        der = self.cert.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"


def _handler(service: TokenService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query)
            service.requests.append(query)
            auth = self.headers.get("Authorization", "")
            user, password = "", ""
            if auth.startswith("Basic "):
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            if USERS.get(user) != password:
                self.send_response(401)
                self.end_headers()
                return
            body = json.dumps({"token": service.token(user, query.get("scope", []))}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def token_registry(tmp_path) -> Iterator[tuple[str, TokenService]]:
    service = TokenService(str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(service))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        auth = {
            "realm": f"http://127.0.0.1:{server.server_address[1]}/token",
            "service": SERVICE,
            "issuer": ISSUER,
            "rootcertbundle": service.bundle,
        }
        with start_registry(str(tmp_path / "registry"), token_auth=auth) as registry:
            yield registry.host, service
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_push_and_pull_through_bearer_tokens_from_the_token_service(token_registry, tmp_path):
    host, service = token_registry
    source = ImageStore(str(tmp_path / "src"))
    [busybox, _] = source.ensure_builtin()
    creds = RegistryAuth(username="alice", password="wonderland")
    ref = f"{host}/private/busybox:1"
    push(source, "busybox", ref, auth=creds)
    assert service.requests[0]["scope"] == ["repository:private/busybox:pull,push"]
    assert service.requests[0]["service"] == [SERVICE]

    dest = ImageStore(str(tmp_path / "dest"))
    pulled = dest.pull(ref, auth=creds)
    assert pulled.id == busybox.id
    assert service.requests[-1]["scope"] == ["repository:private/busybox:pull"]


def test_anonymous_and_wrong_password_pulls_are_refused(token_registry, tmp_path):
    host, _ = token_registry
    store = ImageStore(str(tmp_path / "store"))
    with pytest.raises(AuthError):
        store.pull(f"{host}/private/busybox:1")
    with pytest.raises(AuthError, match="refused"):
        store.pull(f"{host}/private/busybox:1", auth=RegistryAuth(username="alice", password="queen"))
    assert store.list() == []
