from __future__ import annotations

import base64
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from controlplane.resources import CONFIGMAPS, SECRETS
from noded.errors import PodSpecError
from noded.podspec import resolve_env
from noded.testing import FakeApi, RecordingMounter
from noded.volumes import PodVolumes


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
async def api() -> FakeApi:
    api = FakeApi()
    await api.create(CONFIGMAPS, {"metadata": {"name": "cfg"}, "data": {"greeting": "hi", "mode": "fast"}}, "ns")
    await api.create(SECRETS, {"metadata": {"name": "sec"}, "data": {"password": _b64("s3cr3t")}}, "ns")
    return api


LABELS, NS = "metadata.labels", "metadata.namespace"
POD: dict[str, Any] = {
    "metadata": {"name": "p", "namespace": "ns", "uid": "uid-1", "labels": {"app": "web"}},
    "spec": {"nodeName": "n1", "serviceAccountName": "robot"},
    "status": {"podIP": "10.0.0.9"},
}


async def test_env_resolves_every_source_in_api_order(api: FakeApi) -> None:
    container = {
        "name": "c",
        "resources": {"limits": {"memory": "64Mi"}},
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}, {"secretRef": {"name": "sec"}}],
        "env": [
            {"name": "A", "value": "x"},
            {"name": "B", "value": "$(A)-$(CFG_greeting)"},
            {"name": "G", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}},
            {"name": "P", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "password"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
            {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k", "optional": True}}},
        ],
    }
    env = dict(await resolve_env(api, POD, container, base={"KUBERNETES_SERVICE_HOST": "10.96.0.1"}))
    assert env["CFG_greeting"] == "hi"
    assert env["password"] == "s3cr3t"
    assert env["B"] == "x-hi"
    assert (env["G"], env["P"], env["IP"], env["MEM"]) == ("hi", "s3cr3t", "10.0.0.9", "64")
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    assert "OPT" not in env


async def test_missing_config_map_key_is_a_config_error(api: FakeApi) -> None:
    container = {"name": "c", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "no"}}}]}
    with pytest.raises(PodSpecError) as err:
        await resolve_env(api, POD, container)
    assert err.value.reason == "CreateContainerConfigError"


async def test_volumes_are_written_with_their_contents_and_modes(api: FakeApi, tmp_path: Path) -> None:
    mounter = RecordingMounter()
    vols = PodVolumes(api, str(tmp_path), mounter, cluster_ca=b"CA-PEM")
    pod = {
        **POD,
        "spec": {
            **POD["spec"],
            "volumes": [
                {"name": "cfg", "configMap": {"name": "cfg", "items": [{"key": "greeting", "path": "dir/g.txt"}]}},
                {"name": "sec", "secret": {"secretName": "sec", "defaultMode": 0o400}},
                {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
                {"name": "disk", "emptyDir": {}},
                {"name": "host", "hostPath": {"path": str(tmp_path / "h"), "type": "DirectoryOrCreate"}},
                {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": LABELS}}]}},
                {
                    "name": "sa",
                    "projected": {
                        "sources": [
                            {"serviceAccountToken": {"path": "token", "expirationSeconds": 600}},
                            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": NS}}]}},
                        ]
                    },
                },
            ],
        },
    }  # fmt: skip
    paths = await vols.prepare(pod)
    assert Path(paths["cfg"], "dir", "g.txt").read_text() == "hi"
    secret = Path(paths["sec"], "password")
    assert secret.read_text() == "s3cr3t"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o400
    assert mounter.mounted == {paths["mem"]: 1 << 20}
    assert os.path.isdir(paths["disk"])
    assert paths["host"] == str(tmp_path / "h")
    assert os.path.isdir(tmp_path / "h")
    assert Path(paths["info"], "labels").read_text() == 'app="web"'
    assert Path(paths["sa"], "token").read_text() == "token-for-robot"
    assert Path(paths["sa"], "ca.crt").read_bytes() == b"CA-PEM"
    assert Path(paths["sa"], "namespace").read_text() == "ns"

    vols.cleanup("uid-1")
    assert mounter.mounted == {}
    assert not os.path.exists(vols.pod_dir("uid-1"))
    assert os.path.isdir(tmp_path / "h")


async def test_missing_config_map_volume_fails_the_mount(api: FakeApi, tmp_path: Path) -> None:
    vols = PodVolumes(api, str(tmp_path), RecordingMounter())
    pod = {**POD, "spec": {"volumes": [{"name": "x", "configMap": {"name": "absent"}}]}}
    with pytest.raises(PodSpecError) as err:
        await vols.prepare(pod)
    assert err.value.reason == "FailedMount"
