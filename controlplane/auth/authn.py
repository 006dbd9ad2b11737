"""Authentication: client certificates and bearer tokens → `UserInfo`, or None (the server's 401).

- Client certificate (already verified against the cluster CA by TLS): CN is the user name, each O a
  group — the convention kubeadm and k3s certificates follow (`system:masters` for the admin,
  `system:node:<name>` in `system:nodes` for nodes).
- ServiceAccount tokens (see `tokens.py`): valid only while the ServiceAccount they name (and the Pod
  they are bound to, if any) still exists with the same uid, so deleting it revokes its tokens.
- Bootstrap join tokens `<id>.<secret>`, stored as `bootstrap.kubernetes.io/token` Secrets in
  kube-system like kubeadm's; the user is `system:bootstrap:<id>` in `system:bootstrappers` plus the
  Secret's extra groups.
- Static tokens from a token file (`token,user,uid,"group1,group2"`, the Kubernetes format).
"""

from __future__ import annotations

import csv
import hmac
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from controlplane.auth.errors import InvalidToken
from controlplane.auth.tokens import BOOTSTRAP_TOKEN_RE, TokenSigner, bootstrap_token_from_secret
from controlplane.auth.types import ALL_AUTHENTICATED, UserInfo
from controlplane.resources import PODS, SECRETS, SERVICEACCOUNTS, Resource

__all__ = ["Authenticator", "CredentialSource", "load_token_file", "user_from_peercert"]

PeerCert = Mapping[str, Any]


class CredentialSource(Protocol):
    """Read access to stored objects (the server's cache): Secrets and ServiceAccounts here."""

    def get(self, resource: Resource, namespace: str, name: str) -> Mapping[str, Any] | None: ...


def user_from_peercert(peercert: PeerCert) -> UserInfo | None:
    """`ssl.SSLSocket.getpeercert()` form: subject is a tuple of RDNs, each a tuple of (key, value)."""
    name = ""
    groups: list[str] = []
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                name = value
            elif key == "organizationName":
                groups.append(value)
    if not name:
        return None
    return UserInfo(name=name, groups=(*groups, ALL_AUTHENTICATED))


def load_token_file(path: str | Path) -> dict[str, UserInfo]:
    tokens: dict[str, UserInfo] = {}
    with open(path, newline="") as fh:
        for row in csv.reader(fh):
            if len(row) < 3 or row[0].startswith("#"):
                continue
            groups = tuple(g for g in (row[3].split(",") if len(row) > 3 else ()) if g)
            tokens[row[0]] = UserInfo(name=row[1], uid=row[2], groups=(*groups, ALL_AUTHENTICATED))
    return tokens


class Authenticator:
    def __init__(
        self,
        *,
        signer: TokenSigner | None = None,
        source: CredentialSource | None = None,
        static_tokens: Mapping[str, UserInfo] | None = None,
    ) -> None:
        self._signer = signer
        self._source = source
        self._static = dict(static_tokens or {})

    def authenticate(self, *, peercert: PeerCert | None = None, authorization: str | None = None) -> UserInfo | None:
        """A bearer token, when sent, decides (a bad one is not rescued by a certificate)."""
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return None
            return self.authenticate_token(token.strip())
        if peercert:
            return user_from_peercert(peercert)
        return None

    def authenticate_token(self, token: str, *, now: float | None = None) -> UserInfo | None:
        static = self._static.get(token)
        if static is not None:
            return static
        match = BOOTSTRAP_TOKEN_RE.match(token)
        if match:
            return self._bootstrap(match.group(1), match.group(2), now)
        if self._signer is None:
            return None
        try:
            claims = self._signer.verify(token, now=now)
        except InvalidToken:
            return None
        if self._source is not None:
            sa = self._source.get(SERVICEACCOUNTS, claims.namespace, claims.name)
            if sa is None or (claims.uid and sa.get("metadata", {}).get("uid") != claims.uid):
                return None
            if claims.pod_name:  # a pod-bound token dies with its pod
                pod = self._source.get(PODS, claims.namespace, claims.pod_name)
                if pod is None or (claims.pod_uid and pod.get("metadata", {}).get("uid") != claims.pod_uid):
                    return None
        extra: dict[str, tuple[str, ...]] = {}
        if claims.pod_name:
            extra["authentication.kubernetes.io/pod-name"] = (claims.pod_name,)
            extra["authentication.kubernetes.io/pod-uid"] = (claims.pod_uid,)
        return UserInfo(
            name=f"system:serviceaccount:{claims.namespace}:{claims.name}",
            uid=claims.uid,
            groups=("system:serviceaccounts", f"system:serviceaccounts:{claims.namespace}", ALL_AUTHENTICATED),
            extra=extra,
        )

    def _bootstrap(self, token_id: str, secret: str, now: float | None) -> UserInfo | None:
        if self._source is None:
            return None
        stored = self._source.get(SECRETS, "kube-system", f"bootstrap-token-{token_id}")
        token = bootstrap_token_from_secret(stored) if stored is not None else None
        if token is None or not hmac.compare_digest(token.secret, secret):
            return None
        if token.expires is not None and (time.time() if now is None else now) >= token.expires:
            return None
        return UserInfo(
            name=f"system:bootstrap:{token_id}",
            groups=("system:bootstrappers", *token.groups, ALL_AUTHENTICATED),
        )
