"""ServiceAccount admission for pods: default `serviceAccountName`, require the account to exist, copy
its imagePullSecrets into pods that name none, and mount its token the way Kubernetes does — a
projected volume `kube-api-access-<suffix>` holding a bound token, the cluster CA (ConfigMap
`kube-root-ca.crt`) and the namespace, mounted read-only at /var/run/secrets/kubernetes.io/serviceaccount
in every container."""

from __future__ import annotations

import secrets
from typing import Any

from controlplane.admission.errors import Forbidden
from controlplane.admission.interfaces import Attributes, ObjectReader
from controlplane.resources import PODS, SERVICEACCOUNTS
from controlplane.validation.shapes import as_dict, dict_items

__all__ = ["MIRROR_POD_ANNOTATION", "TOKEN_EXPIRATION_SECONDS", "TOKEN_MOUNT_PATH", "ServiceAccountAdmission"]

TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_EXPIRATION_SECONDS = 3607  # the Kubernetes default for the projected token
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
_SUFFIX_CHARS = "bcdfghjklmnpqrstvwxz2456789"


def _token_volume(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "projected": {
            "defaultMode": 0o644,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {
                    "downwardAPI": {
                        "items": [
                            {"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}
                        ]
                    }
                },
            ],
        },
    }


class ServiceAccountAdmission:
    name = "ServiceAccount"

    def __init__(self, reader: ObjectReader, *, require_account: bool = True) -> None:
        """`require_account=False` admits pods whose account does not exist yet (clusters running
        without the ServiceAccount controller)."""
        self._reader = reader
        self._require = require_account

    async def admit(self, attrs: Attributes) -> None:
        if attrs.resource is not PODS or attrs.operation != "CREATE" or attrs.subresource or attrs.obj is None:
            return
        pod = attrs.obj
        meta = as_dict(pod.get("metadata"))
        spec = pod.get("spec")
        if not isinstance(spec, dict):
            return  # malformed: validation reports it
        if MIRROR_POD_ANNOTATION in as_dict(meta.get("annotations")):
            return  # static pods' mirrors must not depend on API objects
        account_name = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        if not isinstance(account_name, str):
            return
        spec["serviceAccountName"] = account_name
        spec["serviceAccount"] = account_name  # the deprecated alias, still set by Kubernetes
        namespace = attrs.namespace or meta.get("namespace") or "default"
        account = await self._reader.get(SERVICEACCOUNTS, namespace, account_name)
        if account is None and self._require:
            raise Forbidden(
                PODS,
                attrs.name,
                f"error looking up service account {namespace}/{account_name}: "
                f'serviceaccount "{account_name}" not found',
            )
        if account is not None and not spec.get("imagePullSecrets") and account.get("imagePullSecrets"):
            # The account's registry credentials apply to its pods, as in Kubernetes.
            spec["imagePullSecrets"] = [dict(s) for s in dict_items(account.get("imagePullSecrets"))]
        automount = spec.get("automountServiceAccountToken")
        if automount is None and account is not None:
            automount = account.get("automountServiceAccountToken")
        if automount is False:
            return
        containers = [c for key in ("initContainers", "containers") for c in dict_items(spec.get(key))]
        if all(
            any(m.get("mountPath") == TOKEN_MOUNT_PATH for m in dict_items(c.get("volumeMounts"))) for c in containers
        ):
            return
        volumes = spec.setdefault("volumes", [])
        if not isinstance(volumes, list) or not all(isinstance(c.get("volumeMounts", []), list) for c in containers):
            return
        volume_name = "kube-api-access-" + "".join(secrets.choice(_SUFFIX_CHARS) for _ in range(5))
        volumes.append(_token_volume(volume_name))
        for container in containers:
            mounts = container.setdefault("volumeMounts", [])
            if not any(m.get("mountPath") == TOKEN_MOUNT_PATH for m in dict_items(mounts)):
                mounts.append({"name": volume_name, "readOnly": True, "mountPath": TOKEN_MOUNT_PATH})
