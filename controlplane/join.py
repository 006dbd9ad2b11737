"""`tinykube node join`: turn a join token into a node kubeconfig with a client certificate.

1. Read the public `kube-public/cluster-info` ConfigMap anonymously, over TLS we cannot verify yet
   (we have no CA). Trust the CA in it only if its `jws-kubeconfig-<token id>` signature checks out
   with the token's secret (only the server and token holders know it) and, when given, if the CA's
   public key hash equals `--ca-hash` (pinning, as kubeadm's `--discovery-token-ca-cert-hash`).
2. With that CA now verifying the server, make a key pair here and send the public half with the
   token to `POST /tinykube/node-certificate`; the server signs CN `system:node:<name>`, O
   `system:nodes` (see controlplane/apiserver/nodecerts.py).
3. Write a kubeconfig (mode 0600) with the server URL we were given, the CA, the certificate and key.

Blocking (urllib): it runs once, before any event loop, from a CLI."""

from __future__ import annotations

import argparse
import base64
import contextlib
import hmac
import json
import socket
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

import yaml

from controlplane import kubeconfig, pki
from controlplane.auth import CLUSTER_INFO, NODE_CERTIFICATE_PATH, verify_detached_signature
from controlplane.auth.tokens import BOOTSTRAP_TOKEN_RE

__all__ = ["JoinError", "join", "main"]

_TIMEOUT = 15.0


class JoinError(Exception):
    """The join failed; the message says why (shown to the operator as is)."""


def _request(
    url: str, ctx: ssl.SSLContext, *, body: dict[str, Any] | None = None, token: str | None = None
) -> dict[str, Any]:
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=_TIMEOUT) as resp:
            out = json.loads(resp.read())
    except urllib.error.HTTPError as err:
        detail = err.read().decode(errors="replace")
        err.close()
        with contextlib.suppress(ValueError, AttributeError):  # a Status carries the reason in message
            detail = json.loads(detail).get("message", detail)
        raise JoinError(f"{req.method} {url}: HTTP {err.code}: {detail}") from err
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise JoinError(f"{req.method} {url}: {err}") from err
    if not isinstance(out, dict):
        raise JoinError(f"{req.method} {url}: the answer is not a JSON object")
    return out


def trusted_ca(info: dict[str, Any], token: str, ca_hash_pin: str | None) -> bytes:
    """The CA from a cluster-info ConfigMap, once the token's signature (and the pin) check out."""
    data = info.get("data") or {}
    config_text = data.get("kubeconfig")
    token_id = token.partition(".")[0]
    signature = data.get(f"jws-kubeconfig-{token_id}")
    if not isinstance(config_text, str):
        raise JoinError("cluster-info has no kubeconfig")
    if not isinstance(signature, str) or not verify_detached_signature(config_text.encode(), signature, token):
        raise JoinError(f"cluster-info is not signed with token {token_id}: wrong token, or not this cluster")
    try:
        config = yaml.safe_load(config_text)
        ca_pem = base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"])
        actual = pki.ca_hash(ca_pem)
    except (yaml.YAMLError, KeyError, IndexError, TypeError, ValueError) as err:
        raise JoinError(f"cluster-info holds no usable CA: {err}") from err
    if ca_hash_pin is not None and not hmac.compare_digest(actual, ca_hash_pin.lower()):
        raise JoinError(f"the cluster CA hash is {actual}, not the expected {ca_hash_pin}")
    return ca_pem


def join(server: str, token: str, node_name: str, kubeconfig_out: str, *, ca_hash: str | None = None) -> None:
    """Raises JoinError with an operator-facing message when the join cannot complete."""
    token = token.strip()
    if not BOOTSTRAP_TOKEN_RE.match(token):
        raise JoinError("the token must look like <6 chars>.<16 chars> (see `tinykube server token create`)")
    server = server.rstrip("/")
    namespace, name = CLUSTER_INFO
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE  # nothing from this connection is trusted unverified
    info = _request(f"{server}/api/v1/namespaces/{namespace}/configmaps/{name}", insecure)
    ca_pem = trusted_ca(info, token, ca_hash)

    verified = ssl.create_default_context(cadata=ca_pem.decode())
    key_pem, public_pem = pki.new_key_pair()
    answer = _request(
        f"{server}{NODE_CERTIFICATE_PATH}",
        verified,
        body={"nodeName": node_name, "publicKey": public_pem.decode()},
        token=token,
    )
    cert = answer.get("certificate")
    if not isinstance(cert, str):
        raise JoinError("the server's answer has no certificate")
    config = kubeconfig.build(server, ca_pem, user=f"system:node:{node_name}", cert_pem=cert.encode(), key_pem=key_pem)
    kubeconfig.write(kubeconfig_out, config)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinykube node join", description="get a node kubeconfig with a join token")
    p.add_argument("--server", required=True, help="API server URL, e.g. https://192.168.56.10:6443")
    p.add_argument("--token", required=True, help="join token (`tinykube server token create`)")
    p.add_argument("--node-name", default=socket.gethostname(), help="node name (default: the host name)")
    p.add_argument("--kubeconfig-out", default="/etc/tinykube/node.kubeconfig", help="where the kubeconfig goes")
    p.add_argument("--ca-hash", help="sha256:<hex> of the cluster CA's public key, to pin it")
    return p


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(list(argv))
    try:
        join(args.server, args.token, args.node_name, args.kubeconfig_out, ca_hash=args.ca_hash)
    except (JoinError, OSError) as err:
        print(f"tinykube node join: {err}", file=sys.stderr)
        return 1
    print(f"node {args.node_name} joined; kubeconfig: {args.kubeconfig_out}")
    return 0
