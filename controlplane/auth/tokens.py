"""ServiceAccount tokens (JWT, HS256) and bootstrap join tokens (`<id>.<secret>`).

ServiceAccount tokens are signed with HMAC-SHA256 under a 32-byte key the server keeps in its data
dir. Kubernetes signs with RSA so that third parties can verify tokens through OIDC discovery; here the
API server is the only verifier, so a symmetric key is enough, needs no key distribution, and verifies
in microseconds with the standard library. The token layout is still a standard JWT with the claims
Kubernetes uses (`sub`, `kubernetes.io.namespace`, `kubernetes.io.serviceaccount.{name,uid}`), so
tools that decode tokens show the familiar fields.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from controlplane.auth.errors import InvalidToken

__all__ = [
    "BOOTSTRAP_TOKEN_RE",
    "ISSUER",
    "BootstrapToken",
    "ServiceAccountClaims",
    "TokenSigner",
    "bootstrap_token_from_secret",
    "detached_signature",
    "new_bootstrap_token",
    "service_account_username",
    "verify_detached_signature",
]

ISSUER = "https://kubernetes.default.svc.cluster.local"
BOOTSTRAP_TOKEN_RE = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
_HEADER = {"alg": "HS256", "typ": "JWT"}


def service_account_username(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _compact_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class ServiceAccountClaims:
    namespace: str
    name: str
    uid: str
    expires: int | None = None  # unix seconds; None = no expiry (legacy Secret-based tokens)
    pod_name: str = ""
    pod_uid: str = ""
    audiences: tuple[str, ...] = ()


class TokenSigner:
    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the service account signing key must be at least 32 bytes")
        self._key = key

    @staticmethod
    def new_key() -> bytes:
        return secrets.token_bytes(32)

    def issue(self, claims: ServiceAccountClaims, *, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        body: dict[str, Any] = {
            "iss": ISSUER,
            "sub": service_account_username(claims.namespace, claims.name),
            "iat": issued,
            "nbf": issued,
            "kubernetes.io": {
                "namespace": claims.namespace,
                "serviceaccount": {"name": claims.name, "uid": claims.uid},
            },
        }
        if claims.audiences:
            body["aud"] = list(claims.audiences)
        if claims.expires is not None:
            body["exp"] = claims.expires
        if claims.pod_name:
            body["kubernetes.io"]["pod"] = {"name": claims.pod_name, "uid": claims.pod_uid}
        signing_input = f"{_b64(_compact_json(_HEADER))}.{_b64(_compact_json(body))}"
        return f"{signing_input}.{_b64(self._sign(signing_input))}"

    def verify(self, token: str, *, now: float | None = None) -> ServiceAccountClaims:
        """Raises InvalidToken unless the token is ours, well formed and unexpired."""
        parts = token.split(".")
        if len(parts) != 3:
            raise InvalidToken("not a JWT")
        signing_input = f"{parts[0]}.{parts[1]}"
        try:
            signature = _unb64(parts[2])
            header = json.loads(_unb64(parts[0]))
            body = json.loads(_unb64(parts[1]))
        except (ValueError, binascii.Error) as err:
            raise InvalidToken("malformed token") from err
        if not hmac.compare_digest(signature, self._sign(signing_input)):
            raise InvalidToken("bad signature")
        if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(body, dict):
            raise InvalidToken("unexpected token header")
        if body.get("iss") != ISSUER:
            raise InvalidToken("unknown issuer")
        current = time.time() if now is None else now
        exp = body.get("exp")
        if exp is not None and (not isinstance(exp, int | float) or current >= exp):
            raise InvalidToken("token expired")
        nbf = body.get("nbf")
        if isinstance(nbf, int | float) and current + 60 < nbf:  # 60 s of clock skew allowed
            raise InvalidToken("token not yet valid")
        k8s = body.get("kubernetes.io")
        if not isinstance(k8s, dict) or not isinstance(k8s.get("serviceaccount"), dict):
            raise InvalidToken("not a service account token")
        sa = k8s["serviceaccount"]
        pod_claim = k8s.get("pod")
        pod: dict[str, Any] = pod_claim if isinstance(pod_claim, dict) else {}
        aud = body.get("aud", ())
        return ServiceAccountClaims(
            namespace=str(k8s.get("namespace", "")),
            name=str(sa.get("name", "")),
            uid=str(sa.get("uid", "")),
            expires=int(exp) if exp is not None else None,
            pod_name=str(pod.get("name", "")),
            pod_uid=str(pod.get("uid", "")),
            audiences=tuple(aud) if isinstance(aud, list) else (str(aud),),
        )

    def _sign(self, signing_input: str) -> bytes:
        return hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class BootstrapToken:
    token_id: str
    secret: str
    groups: tuple[str, ...] = ()
    expires: float | None = None  # unix seconds


def new_bootstrap_token() -> str:
    """A fresh `<6>.<16>` join token (lower-case letters and digits, as kubeadm makes them)."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return (
        "".join(secrets.choice(alphabet) for _ in range(6)) + "." + "".join(secrets.choice(alphabet) for _ in range(16))
    )


def bootstrap_token_from_secret(secret: Mapping[str, Any]) -> BootstrapToken | None:
    """Read a `bootstrap.kubernetes.io/token` Secret (kube-system/bootstrap-token-<id>), the format
    kubeadm uses: data keys token-id, token-secret, expiration (RFC 3339), usage-bootstrap-authentication,
    auth-extra-groups (comma separated)."""
    if secret.get("type") != "bootstrap.kubernetes.io/token":
        return None
    fields: dict[str, str] = {}
    for key, value in (secret.get("data") or {}).items():
        try:
            fields[key] = base64.b64decode(value).decode()
        except (ValueError, binascii.Error):
            return None
    for key, value in (secret.get("stringData") or {}).items():
        fields[key] = str(value)
    if fields.get("usage-bootstrap-authentication") != "true":
        return None
    token_id, token_secret = fields.get("token-id", ""), fields.get("token-secret", "")
    if not BOOTSTRAP_TOKEN_RE.match(f"{token_id}.{token_secret}"):
        return None
    expires = None
    if fields.get("expiration"):
        from datetime import datetime

        try:
            expires = datetime.fromisoformat(fields["expiration"].replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    # Like Kubernetes, extra groups must live under system:bootstrappers: so a token can never claim
    # e.g. system:masters.
    groups = tuple(
        g.strip()
        for g in fields.get("auth-extra-groups", "").split(",")
        if g.strip().startswith("system:bootstrappers:")
    )
    return BootstrapToken(token_id, token_secret, groups, expires)


def detached_signature(content: bytes, token: str) -> str:
    """A JWS (HS256, key = the token's secret, `kid` = its id) over `content`, with the payload left
    out (`header..signature`): what kubeadm's cluster-info ConfigMap carries per join token, so a node
    that knows the token can tell the CA it downloaded over unverified TLS is the cluster's."""
    token_id, _, secret = token.partition(".")
    header = _b64(_compact_json({"alg": "HS256", "kid": token_id}))
    signing_input = f"{header}.{_b64(content)}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{header}..{_b64(signature)}"


def verify_detached_signature(content: bytes, signature: str, token: str) -> bool:
    header, sep, _ = signature.partition("..")
    if not sep:
        return False
    try:
        fields = json.loads(_unb64(header))
    except (ValueError, binascii.Error):
        return False
    if not isinstance(fields, dict) or fields.get("alg") != "HS256":
        return False
    return hmac.compare_digest(detached_signature(content, token), signature)
