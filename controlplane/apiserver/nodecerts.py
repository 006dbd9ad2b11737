"""`POST /tinykube/node-certificate`: how a node that joins with the bootstrap token gets its client
certificate (CN `system:node:<name>`, O `system:nodes`).

Kubernetes does this with a CertificateSigningRequest, an approver and a signer controller; tinykube
signs at once in one small endpoint instead — the same trust decision (the token's group
`system:bootstrappers:nodes` may get a node certificate for any name, as Kubernetes' auto-approval
of node client CSRs allows) without three moving parts. RBAC gates the path (the
`system:node-bootstrapper` role); the node makes its own key and sends only the public half.

Request `{"nodeName": N, "publicKey": PEM}`; answer `{"kind": "NodeCertificate", "nodeName": N,
"certificate": PEM, "ca": PEM}`."""

from __future__ import annotations

import re
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm

from controlplane.apiserver.errors import BadRequest, Forbidden
from controlplane.auth.types import UserInfo
from controlplane.pki import CA, sign_client_public_key

_NODE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class NodeCertificates:
    def __init__(self, ca: CA) -> None:
        self._ca = ca

    def issue(self, user: UserInfo, body: dict[str, Any]) -> dict[str, Any]:
        name, public = body.get("nodeName"), body.get("publicKey")
        if not isinstance(name, str) or len(name) > 253 or not _NODE_NAME.match(name):
            raise BadRequest(f"nodeName must be a DNS subdomain, not {name!r}")
        if not isinstance(public, str):
            raise BadRequest("publicKey must be a PEM-encoded public key")
        if user.name.startswith("system:node:") and user.name != f"system:node:{name}":
            raise Forbidden(f"{user.name} may not get a certificate for node {name}")
        try:
            cert = sign_client_public_key(self._ca, public.encode(), f"system:node:{name}", ["system:nodes"])
        except (ValueError, UnsupportedAlgorithm) as err:
            raise BadRequest(f"publicKey: {err}") from err
        return {
            "apiVersion": "tinykube.io/v1",
            "kind": "NodeCertificate",
            "nodeName": name,
            "certificate": cert.decode(),
            "ca": self._ca.cert_pem.decode(),
        }
