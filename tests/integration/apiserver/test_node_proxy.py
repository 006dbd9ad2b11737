"""pods/log and pods/exec go through the API server to the node agent's HTTPS port (contract 2):
a fake node agent on loopback answers the kubelet paths, real kubectl is the client."""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from controlplane.pki import issue_serving_cert, new_ca
from controlplane.testing.server import ServerHandle, free_port, start_server
from tests.integration.apiserver.helpers import admin_session

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    with start_server(tmp_path_factory.mktemp("proxy"), controllers=False) as srv:
        yield srv


class FakeNode:
    def __init__(self) -> None:
        self.requests: list[str] = []

    async def logs(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path_qs)
        return web.Response(text="line one\nline two\n")

    async def exec(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path_qs)
        ws = web.WebSocketResponse(protocols=["v5.channel.k8s.io", "v4.channel.k8s.io"])
        await ws.prepare(request)
        command = " ".join(request.query.getall("command", []))
        await ws.send_bytes(b"\x01" + f"ran: {command}\n".encode())
        await ws.send_bytes(b"\x03" + b'{"metadata":{},"status":"Success"}')
        await ws.close()
        return ws


@pytest.fixture
async def fake_node(tmp_path: Path) -> AsyncIterator[tuple[FakeNode, int]]:
    node = FakeNode()
    app = web.Application()
    app.router.add_get("/containerLogs/{ns}/{pod}/{container}", node.logs)
    app.router.add_get("/exec/{ns}/{pod}/{container}", node.exec)
    pair = issue_serving_cert(new_ca("fake-node-ca"), hosts=["127.0.0.1"])
    (tmp_path / "n.crt").write_bytes(pair.cert_pem)
    (tmp_path / "n.key").write_bytes(pair.key_pem)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tmp_path / "n.crt", tmp_path / "n.key")
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=ctx)
    await site.start()
    yield node, port
    await runner.cleanup()


async def _register(http: aiohttp.ClientSession, port: int) -> None:
    node: dict[str, Any] = {
        "metadata": {"name": "n1"},
        "status": {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        },
    }
    async with http.post("/api/v1/nodes", json=node) as resp:
        if resp.status == 409:
            async with http.get("/api/v1/nodes/n1") as cur:
                live = await cur.json()
            live["status"] = node["status"]
            async with http.put("/api/v1/nodes/n1/status", json=live) as put:
                assert put.status == 200
        else:
            assert resp.status == 201, await resp.text()
    pod = {"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]}}
    async with http.post("/api/v1/namespaces/default/pods", json=pod) as resp:
        assert resp.status in (201, 409)


async def _kubectl(server: ServerHandle, *args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as home:
        return await asyncio.to_thread(
            subprocess.run,
            [KUBECTL, "--kubeconfig", server.kubeconfig, *args],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "HOME": home},
            check=False,
        )


async def test_kubectl_logs_are_streamed_from_the_node(server: ServerHandle, fake_node: tuple[FakeNode, int]) -> None:
    node, port = fake_node
    async with admin_session(server) as http:
        await _register(http, port)
    out = await _kubectl(server, "logs", "p", "--tail=5", "--timestamps")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "line one\nline two\n"
    assert node.requests[-1].startswith("/containerLogs/default/p/c?")
    assert "tailLines=5" in node.requests[-1]
    assert "timestamps=true" in node.requests[-1]
    await asyncio.sleep(0.25)


async def test_kubectl_exec_runs_through_a_websocket_to_the_node(
    server: ServerHandle, fake_node: tuple[FakeNode, int]
) -> None:
    node, port = fake_node
    async with admin_session(server) as http:
        await _register(http, port)
    out = await _kubectl(server, "exec", "p", "--", "echo", "hi")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "ran: echo hi\n"
    assert node.requests[-1].startswith("/exec/default/p/c?command=echo&command=hi")
    await asyncio.sleep(0.25)


async def test_logs_of_an_unscheduled_pod_is_a_400(server: ServerHandle) -> None:
    async with admin_session(server) as http:
        pod = {"metadata": {"name": "nowhere"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
        async with http.post("/api/v1/namespaces/default/pods", json=pod) as resp:
            assert resp.status == 201
        async with http.get("/api/v1/namespaces/default/pods/nowhere/log") as resp:
            assert resp.status == 400
    await asyncio.sleep(0.25)
