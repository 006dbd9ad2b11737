"""Pod volumes on the node, under `<root>/pods/<uid>/volumes/<plugin>/<name>`: emptyDir (a tmpfs for
`medium: Memory`), hostPath, configMap, secret, downwardAPI, and projected (ServiceAccount token from the
TokenRequest API, the cluster CA, configMap/secret/downwardAPI sources). Contents are written to a temp
file and renamed, so a container never reads a half-written key."""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any, Protocol

from controlplane.client.errors import ApiError, NotFound
from controlplane.resources import CONFIGMAPS, SECRETS, SERVICEACCOUNTS
from noded.errors import PodSpecError
from noded.interfaces import ApiClient
from noded.podspec import field_value, resource_value
from noded.quantity import parse_quantity

log = logging.getLogger(__name__)

ROOT_CA_CONFIGMAP = "kube-root-ca.crt"


class Mounter(Protocol):
    def mount_tmpfs(self, path: str, size_bytes: int) -> None: ...

    def unmount(self, path: str) -> None: ...


class SystemMounter:
    """mount(8)/umount(8): called once per memory-backed emptyDir, not on a hot path."""

    def mount_tmpfs(self, path: str, size_bytes: int) -> None:
        opts = "mode=0777" + (f",size={size_bytes}" if size_bytes else "")
        subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tinykube-emptydir", path], check=True, capture_output=True)

    def unmount(self, path: str) -> None:
        subprocess.run(["umount", "-l", path], check=False, capture_output=True)


def _write(path: str, data: bytes, mode: int) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _items(
    data: dict[str, bytes], items: list[dict[str, Any]] | None, default_mode: int
) -> list[tuple[str, bytes, int]]:
    """All keys, or only the listed ones at their chosen paths."""
    if not items:
        return [(k, v, default_mode) for k, v in data.items()]
    out = []
    for it in items:
        if it["key"] not in data:
            raise PodSpecError("FailedMount", f"key {it['key']!r} not found")
        out.append((it.get("path") or it["key"], data[it["key"]], int(it.get("mode", default_mode))))
    return out


@dataclass
class PodVolumes:
    api: ApiClient
    root: str
    mounter: Mounter
    cluster_ca: bytes = b""
    node_allocatable: dict[str, str] | None = None

    def pod_dir(self, uid: str) -> str:
        return os.path.join(self.root, "pods", uid)

    async def prepare(self, pod: dict[str, Any]) -> dict[str, str]:
        """Make every volume of the pod; returns volume name → host path. Idempotent (rewrites data)."""
        uid = pod["metadata"]["uid"]
        paths: dict[str, str] = {}
        for vol in (pod.get("spec") or {}).get("volumes") or []:
            paths[vol["name"]] = await self._prepare_one(pod, uid, vol)
        return paths

    async def _prepare_one(self, pod: dict[str, Any], uid: str, vol: dict[str, Any]) -> str:
        name = vol["name"]
        if "hostPath" in vol:
            return self._host_path(vol["hostPath"])
        plugin = next((k for k in vol if k != "name"), "emptyDir")
        path = os.path.join(self.pod_dir(uid), "volumes", plugin, name)
        fresh = not os.path.isdir(path)
        os.makedirs(path, exist_ok=True)
        if plugin == "emptyDir":
            spec = vol.get("emptyDir") or {}
            if spec.get("medium") == "Memory" and fresh:
                size = int(parse_quantity(spec["sizeLimit"])) if spec.get("sizeLimit") else 0
                self.mounter.mount_tmpfs(path, size)
            os.chmod(path, 0o777)
        elif plugin in ("configMap", "secret"):
            await self._write_source(pod, path, plugin, vol[plugin])
        elif plugin == "downwardAPI":
            self._write_files(path, self._downward(pod, vol["downwardAPI"]))
        elif plugin == "projected":
            await self._projected(pod, path, vol["projected"])
        else:
            raise PodSpecError("FailedMount", f"volume type {plugin!r} is not supported")
        return path

    @staticmethod
    def _host_path(spec: dict[str, Any]) -> str:
        path, kind = spec["path"], spec.get("type", "")
        if kind == "DirectoryOrCreate":
            os.makedirs(path, mode=0o755, exist_ok=True)
        elif kind == "FileOrCreate" and not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            open(path, "a").close()
        elif kind == "Directory" and not os.path.isdir(path):
            raise PodSpecError("FailedMount", f"hostPath {path} is not a directory")
        elif kind == "File" and not os.path.isfile(path):
            raise PodSpecError("FailedMount", f"hostPath {path} is not a file")
        return str(path)

    @staticmethod
    def _write_files(path: str, files: list[tuple[str, bytes, int]]) -> None:
        for rel, data, mode in files:
            if os.path.isabs(rel) or ".." in rel.split("/"):
                raise PodSpecError("FailedMount", f"invalid path {rel!r}")
            _write(os.path.join(path, rel), data, mode)

    async def _data(self, pod: dict[str, Any], kind: str, name: str, optional: bool) -> dict[str, bytes] | None:
        ns = pod["metadata"].get("namespace", "default")
        try:
            obj = await self.api.get(CONFIGMAPS if kind == "configMap" else SECRETS, name, ns)
        except NotFound as err:
            if kind == "configMap" and name == ROOT_CA_CONFIGMAP and self.cluster_ca:
                return {"ca.crt": self.cluster_ca}
            if optional:
                return None
            raise PodSpecError("FailedMount", f"{kind} {name!r} not found") from err
        if kind == "secret":
            return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
        data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
        return data

    async def _write_source(self, pod: dict[str, Any], path: str, kind: str, spec: dict[str, Any]) -> None:
        name = spec.get("name") or spec.get("secretName") or ""
        data = await self._data(pod, kind, name, bool(spec.get("optional")))
        mode = int(spec.get("defaultMode", 0o644))
        self._write_files(path, _items(data or {}, spec.get("items"), mode))

    def _downward(self, pod: dict[str, Any], spec: dict[str, Any]) -> list[tuple[str, bytes, int]]:
        mode = int(spec.get("defaultMode", 0o644))
        containers = {c["name"]: c for c in (pod.get("spec") or {}).get("containers") or []}
        out = []
        for it in spec.get("items") or []:
            if "fieldRef" in it:
                value = field_value(pod, it["fieldRef"]["fieldPath"])
            else:
                ref = it["resourceFieldRef"]
                container = containers.get(ref.get("containerName", ""), {})
                value = resource_value(container, ref, self.node_allocatable or {})
            out.append((it["path"], value.encode(), int(it.get("mode", mode))))
        return out

    async def _token(self, pod: dict[str, Any], spec: dict[str, Any]) -> bytes:
        """A bound ServiceAccount token from the TokenRequest API (`serviceaccounts/<sa>/token`)."""
        meta = pod["metadata"]
        sa = (pod.get("spec") or {}).get("serviceAccountName") or "default"
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "metadata": {"name": sa, "namespace": meta.get("namespace", "default")},
            "spec": {
                "audiences": [spec["audience"]] if spec.get("audience") else [],
                "expirationSeconds": int(spec.get("expirationSeconds", 3607)),
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]},
            },
        }
        resp = await self.api.create(SERVICEACCOUNTS, request, meta.get("namespace", "default"), subresource="token")
        return str((resp.get("status") or {}).get("token", "")).encode()

    async def _projected(self, pod: dict[str, Any], path: str, spec: dict[str, Any]) -> None:
        mode = int(spec.get("defaultMode", 0o644))
        files: list[tuple[str, bytes, int]] = []
        for src in spec.get("sources") or []:
            if "serviceAccountToken" in src:
                sat = src["serviceAccountToken"]
                try:
                    files.append((sat.get("path", "token"), await self._token(pod, sat), mode))
                except ApiError as err:
                    # The pod still runs; only in-cluster API calls from it will be refused.
                    log.warning("no ServiceAccount token for %s: %s", pod["metadata"]["name"], err)
            elif "downwardAPI" in src:
                files += self._downward(pod, {"defaultMode": mode, **src["downwardAPI"]})
            else:
                kind = "configMap" if "configMap" in src else "secret"
                s = src[kind]
                data = await self._data(pod, kind, s["name"], bool(s.get("optional")))
                files += _items(data or {}, s.get("items"), int(s.get("mode", mode)))
        self._write_files(path, files)

    def cleanup(self, uid: str) -> None:
        """Unmount memory-backed emptyDirs and remove the pod's directory."""
        base = os.path.join(self.pod_dir(uid), "volumes", "emptyDir")
        if os.path.isdir(base):
            for name in os.listdir(base):
                self.mounter.unmount(os.path.join(base, name))
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.pod_dir(uid))
