"""`tinykube server --storage etcd` against Debian's etcd-server on loopback: kubectl-visible CRUD and
watch work the same, and state survives a server restart."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.testing.server import start_server
from tests.integration.apiserver.helpers import admin_session

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
pytestmark = pytest.mark.skipif(not Path(ETCD).exists(), reason="etcd-server is not installed")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[str]:
    client, peer = _port(), _port()
    url = f"http://127.0.0.1:{client}"
    proc = subprocess.Popen(
        [
            ETCD,
            "--name=t",
            f"--data-dir={tmp_path / 'etcd'}",
            f"--listen-client-urls={url}",
            f"--advertise-client-urls={url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=t=http://127.0.0.1:{peer}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield url
    finally:
        proc.kill()
        proc.wait(10)


async def test_server_on_etcd_serves_crud_and_watch_and_keeps_state_across_restart(tmp_path: Path, etcd: str) -> None:
    (tmp_path / "srv").mkdir()
    srv = start_server(tmp_path / "srv", controllers=False, storage="etcd", etcd_endpoints=[etcd])
    try:
        cm = "/api/v1/namespaces/default/configmaps"
        async with admin_session(srv) as http:
            async with http.post(cm, json={"metadata": {"name": "e1"}, "data": {"a": "1"}}) as resp:
                assert resp.status == 201
                rv = (await resp.json())["metadata"]["resourceVersion"]
            async with http.get(cm, params={"watch": "1", "resourceVersion": rv}) as watch:
                async with http.patch(
                    f"{cm}/e1", data='{"data":{"a":"2"}}', headers={"Content-Type": "application/merge-patch+json"}
                ) as resp:
                    assert resp.status == 200
                line = await asyncio.wait_for(watch.content.readline(), 5)
                while json.loads(line)["type"] == "BOOKMARK":
                    line = await asyncio.wait_for(watch.content.readline(), 5)
            ev = json.loads(line)
            assert ev["type"] == "MODIFIED"
            assert ev["object"]["data"] == {"a": "2"}
        srv.stop()
        srv.start()
        async with admin_session(srv) as http, http.get(f"{cm}/e1") as resp:
            assert (await resp.json())["data"] == {"a": "2"}
        await asyncio.sleep(0.25)
    finally:
        srv.stop()
