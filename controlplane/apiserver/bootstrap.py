"""Objects every cluster has from its first start: the system namespaces and the `kubernetes`
Service in `default` (with its Endpoints and EndpointSlice) pointing at this API server, and the
default RBAC objects. Applied at every start: missing objects are created, the endpoints follow the
current address, and default RBAC objects annotated `rbac.authorization.kubernetes.io/autoupdate:
"true"` are reset to this version's rules (unless an admin set the annotation to "false" on the
live object), so a role narrowed in a new version reaches clusters made by an older one."""

from __future__ import annotations

import contextlib
import copy
import logging
from pathlib import Path
from typing import Any

import yaml

from controlplane import kubeconfig
from controlplane.apiserver.errors import AlreadyExists, ApiError, NotFound
from controlplane.apiserver.registry import Registry
from controlplane.auth import AUTOUPDATE, CLUSTER_INFO, NODE_BOOTSTRAP_GROUP, detached_signature, new_bootstrap_token
from controlplane.pki import write_private
from controlplane.resources import (
    CONFIGMAPS,
    ENDPOINTS,
    ENDPOINTSLICES,
    NAMESPACES,
    SECRETS,
    SERVICES,
    Resource,
    for_kind,
)

log = logging.getLogger(__name__)

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def kubernetes_service(cluster_ip: str, port: int) -> dict[str, Any]:
    del port  # the Service port is 443 whatever the server listens on; targetPort follows the server
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"component": "apiserver", "provider": "kubernetes"},
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": cluster_ip,
            "clusterIPs": [cluster_ip],
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
            "sessionAffinity": "None",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
        },
    }


def kubernetes_endpoints(address: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"},
        },
        "subsets": [{"addresses": [{"ip": address}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
    }


def kubernetes_endpointslice(address: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {
                "kubernetes.io/service-name": "kubernetes",
                "endpointslice.kubernetes.io/managed-by": "tinykube-apiserver",
            },
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    }


async def _ensure(
    reg: Registry, res: Resource, namespace: str | None, obj: dict[str, Any], *, sync: tuple[str, ...] = ()
) -> None:
    """Create `obj` when missing; when present, overwrite the top-level fields in `sync` that differ."""
    name = obj["metadata"]["name"]
    try:
        current = reg.get_entry(res, namespace, name).obj
    except NotFound:
        with contextlib.suppress(AlreadyExists):
            await reg.create(res, namespace, copy.deepcopy(obj))
        return
    if all(current.get(k) == obj.get(k) for k in sync):
        return
    if (current["metadata"].get("annotations") or {}).get(AUTOUPDATE) == "false":
        return  # the admin took this object over

    def apply(live: dict[str, Any]) -> dict[str, Any]:
        for k in sync:
            live[k] = obj[k]
        return live

    await reg.patch(res, namespace, name, apply)


async def ensure_cluster_objects(
    reg: Registry, *, address: str, port: int, extra: list[dict[str, Any]] | None = None
) -> None:
    for ns in SYSTEM_NAMESPACES:
        await _ensure(reg, NAMESPACES, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    svc = kubernetes_service(reg.service_ips.kubernetes_ip, port)
    svc["spec"]["ports"][0]["targetPort"] = port
    await _ensure(reg, SERVICES, "default", svc)
    await _ensure(reg, ENDPOINTS, "default", kubernetes_endpoints(address, port), sync=("subsets",))
    await _ensure(reg, ENDPOINTSLICES, "default", kubernetes_endpointslice(address, port), sync=("endpoints", "ports"))
    for obj in extra or []:
        res = for_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
        if res is None:
            log.warning("bootstrap object of unknown kind %s/%s skipped", obj.get("apiVersion"), obj.get("kind"))
            continue
        try:
            await _ensure(reg, res, obj["metadata"].get("namespace"), obj, sync=_autoupdated_fields(obj))
        except ApiError as err:
            log.warning("bootstrap object %s %s: %s", res.kind, obj["metadata"].get("name"), err)


def _autoupdated_fields(obj: dict[str, Any]) -> tuple[str, ...]:
    """What of a default object is kept current: a role's rules, a binding's subjects (roleRef is
    immutable), and nothing for objects without the autoupdate annotation."""
    if (obj["metadata"].get("annotations") or {}).get(AUTOUPDATE) != "true":
        return ()
    return ("subjects",) if obj.get("kind", "").endswith("Binding") else ("rules",)


def bootstrap_token_secret(token: str, groups: str) -> dict[str, Any]:
    """A kubeadm-format join token Secret (kube-system/bootstrap-token-<id>), no expiry."""
    token_id, _, secret = token.partition(".")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system"},
        "type": "bootstrap.kubernetes.io/token",
        "stringData": {
            "token-id": token_id,
            "token-secret": secret,
            "usage-bootstrap-authentication": "true",
            "auth-extra-groups": groups,
            "description": "the node join token tinykube made at first start",
        },
    }


async def ensure_node_token(reg: Registry, path: Path) -> str:
    """The cluster's node join token, like k3s' node-token file: made once, kept in `path` (0600) and as
    a bootstrap token Secret; nodes authenticate with it in the group system:bootstrappers:nodes."""
    if path.exists():
        token = path.read_text().strip()
    else:
        token = new_bootstrap_token()
        write_private(path, token.encode() + b"\n")
    secret = bootstrap_token_secret(token, NODE_BOOTSTRAP_GROUP)
    await _ensure(reg, SECRETS, "kube-system", secret)
    return token


def cluster_info(server_url: str, ca_pem: bytes, token: str) -> dict[str, Any]:
    """kube-public/cluster-info as kubeadm lays it out: a credential-less kubeconfig (server + CA) and,
    per join token, `jws-kubeconfig-<token id>`: a detached signature of that kubeconfig keyed by the
    token's secret. Anyone may read it; only a holder of the token can check the signature."""
    namespace, name = CLUSTER_INFO
    config = yaml.safe_dump(kubeconfig.build(server_url, ca_pem, user="", cluster=""), sort_keys=False)
    token_id = token.partition(".")[0]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"kubeconfig": config, f"jws-kubeconfig-{token_id}": detached_signature(config.encode(), token)},
    }


async def ensure_cluster_info(reg: Registry, *, server_url: str, ca_pem: bytes, token: str) -> None:
    obj = cluster_info(server_url, ca_pem, token)
    await _ensure(reg, CONFIGMAPS, obj["metadata"]["namespace"], obj, sync=("data",))
