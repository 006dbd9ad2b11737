"""kubeconfig loading: the current context's server, CA, client certificate and bearer token.

Only what tinykube and kubectl-written files use: `*-data` (base64) or file paths (relative to the
kubeconfig's directory), `token`/`tokenFile`, `insecure-skip-tls-verify`. Exec/auth-provider plugins
are not supported and raise `ConfigError` rather than silently connecting anonymously.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from controlplane.client.errors import ConfigError


@dataclass(frozen=True)
class Credentials:
    """One context resolved to bytes: everything needed to open a TLS session to the server."""

    server: str
    ca_pem: bytes | None = None
    client_cert_pem: bytes | None = None
    client_key_pem: bytes | None = None
    token: str | None = None
    insecure: bool = False
    namespace: str = "default"

    def ssl_context(self) -> ssl.SSLContext | None:
        """None for plain http; otherwise a context verifying the server against the CA (if any)."""
        if not self.server.startswith("https://"):
            return None
        ctx = ssl.create_default_context(cadata=self.ca_pem.decode() if self.ca_pem else None)
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.client_cert_pem and self.client_key_pem:
            # The ssl module loads key material only from files: stage it in a private temp dir.
            with tempfile.TemporaryDirectory(prefix="tk-kc-") as tmp:
                cert, key = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
                cert.write_bytes(self.client_cert_pem)
                fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(self.client_key_pem)
                ctx.load_cert_chain(cert, key)
        return ctx


def _named(items: Any, name: str, what: str, key: str) -> dict[str, Any]:
    for item in items or ():
        if isinstance(item, dict) and item.get("name") == name:
            value = item.get(key) or {}
            if isinstance(value, dict):
                return value
    raise ConfigError(f"kubeconfig has no {what} named {name!r}")


def _material(section: dict[str, Any], key: str, base: Path) -> bytes | None:
    """`<key>-data` (base64) wins over `<key>` (a path, relative to the kubeconfig)."""
    data = section.get(f"{key}-data")
    if data:
        return base64.b64decode(data)
    path = section.get(key)
    if path:
        try:
            return (base / str(path)).read_bytes()
        except OSError as err:
            raise ConfigError(f"cannot read {key} {path}: {err}") from err
    return None


def parse_kubeconfig(doc: dict[str, Any], *, base_dir: Path, context: str | None = None) -> Credentials:
    """Resolve one context of an already-decoded kubeconfig."""
    ctx_name = context or doc.get("current-context")
    if not ctx_name:
        raise ConfigError("kubeconfig has no current-context")
    ctx = _named(doc.get("contexts"), str(ctx_name), "context", "context")
    cluster = _named(doc.get("clusters"), str(ctx.get("cluster")), "cluster", "cluster")
    user = _named(doc.get("users"), str(ctx.get("user")), "user", "user") if ctx.get("user") else {}
    if "exec" in user or "auth-provider" in user:
        raise ConfigError("exec and auth-provider credentials are not supported")
    server = str(cluster.get("server") or "").rstrip("/")
    if not server:
        raise ConfigError(f"cluster {ctx.get('cluster')!r} has no server")
    token = user.get("token")
    if not token and user.get("tokenFile"):
        try:
            token = (base_dir / str(user["tokenFile"])).read_text().strip()
        except OSError as err:
            raise ConfigError(f"cannot read tokenFile: {err}") from err
    return Credentials(
        server=server,
        ca_pem=_material(cluster, "certificate-authority", base_dir),
        client_cert_pem=_material(user, "client-certificate", base_dir),
        client_key_pem=_material(user, "client-key", base_dir),
        token=str(token) if token else None,
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        namespace=str(ctx.get("namespace") or "default"),
    )


def load_kubeconfig(path: str | os.PathLike[str], *, context: str | None = None) -> Credentials:
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot load kubeconfig {p}: {err}") from err
    if not isinstance(doc, dict):
        raise ConfigError(f"kubeconfig {p} is not a mapping")
    return parse_kubeconfig(doc, base_dir=p.parent, context=context)
