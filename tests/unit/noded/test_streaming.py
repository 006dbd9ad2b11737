"""Interactive exec, attach and port-forward: noded relays the client's WebSocket to the runtime's
streaming URL frame by frame, with the subprotocol the runtime chose (a fake streaming server here)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import aiohttp.web
import pytest
from aiohttp.test_utils import TestClient, TestServer

from noded.server import NodeServer
from noded.streaming import failure_frame, offered_protocols, relayable
from tests.unit.noded.conftest import NODE, Node, make_pod

V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"


def test_offered_protocols_keep_the_clients_order_and_drop_blanks() -> None:
    assert offered_protocols(f" {V5}, {V4},,") == [V5, V4]
    assert offered_protocols("") == []


def test_only_protocols_both_sides_understand_are_relayed() -> None:
    assert relayable([V5, "SPDY/3.1+portforward.k8s.io", V4], (V4, V5)) == [V5, V4]


def test_failure_frame_is_a_status_on_the_error_channel() -> None:
    frame = failure_frame("boom")
    assert frame[0] == 3
    assert json.loads(frame[1:]) == {"metadata": {}, "status": "Failure", "message": "boom", "reason": "InternalError"}


@dataclass
class FakeStreaming:
    """A runtime streaming server: echoes stdin on stdout, records other frames, and ends the session
    with a Success Status when the client signals stdin close (v5) — like a `cat` in the container."""

    protocols: tuple[str, ...] = (V5, V4)
    seen: list[tuple[str, bytes]] = field(default_factory=list)
    queries: list[dict[str, str]] = field(default_factory=list)

    async def handle(self, request: aiohttp.web.Request) -> aiohttp.web.WebSocketResponse:
        self.queries.append(dict(request.query))
        ws = aiohttp.web.WebSocketResponse(protocols=self.protocols)
        await ws.prepare(request)
        async for msg in ws:
            data = msg.data
            self.seen.append((request.path, data))
            if data[0] == 0:
                await ws.send_bytes(b"\x01" + data[1:])
            elif data == b"\xff\x00":
                await ws.send_bytes(b'\x03{"metadata":{},"status":"Success"}')
                break
        await ws.close()
        return ws


@pytest.fixture
async def clients(node: Node) -> AsyncIterator[tuple[TestClient[Any, Any], FakeStreaming]]:
    fake = FakeStreaming()
    app = aiohttp.web.Application()
    app.router.add_get("/{kind}/{id}", fake.handle)
    upstream = TestServer(app)
    await upstream.start_server()
    node.runtime.stream_base = str(upstream.make_url("")).rstrip("/")
    pod = make_pod(containers=[{"name": "main", "image": "busybox", "tty": True, "stdin": True}])
    await node.create(pod)
    await node.wait(lambda: len(node.runtime.running("main")) == 1)
    client = TestClient(TestServer(NodeServer(node.runtime, node.manager, node.ctx.log_root, NODE).app()))
    await client.start_server()
    yield client, fake
    await client.close()
    await upstream.close()


async def _session(ws: aiohttp.ClientWebSocketResponse, *frames: bytes) -> list[bytes]:
    for frame in frames:
        await ws.send_bytes(frame)
    return [msg.data async for msg in ws if msg.type == aiohttp.WSMsgType.BINARY]


async def test_exec_with_stdin_relays_frames_both_ways_until_the_status(
    node: Node, clients: tuple[TestClient[Any, Any], FakeStreaming]
) -> None:
    client, fake = clients
    resize = b'\x04{"Width":80,"Height":24}'
    ws = await client.ws_connect("/exec/default/web/main?command=sh&input=1&output=1&tty=1", protocols=[V5, V4])
    assert ws.protocol == V5
    assert fake.queries == [{"tty": "1", "stdin": "1"}]
    got = await _session(ws, resize, b"\x00hello\n", b"\xff\x00")
    assert got == [b"\x01hello\n", b'\x03{"metadata":{},"status":"Success"}']
    assert [data for _, data in fake.seen] == [resize, b"\x00hello\n", b"\xff\x00"]
    assert ("exec", node.runtime.running("main")[0].id) in node.runtime.calls
    assert ("exec_sync", node.runtime.running("main")[0].id) not in node.runtime.calls


async def test_the_client_gets_the_subprotocol_the_runtime_chose(
    clients: tuple[TestClient[Any, Any], FakeStreaming],
) -> None:
    client, fake = clients
    fake.protocols = (V4,)
    ws = await client.ws_connect("/exec/default/web/main?command=cat&input=1&output=1", protocols=[V5, V4])
    assert ws.protocol == V4
    await ws.close()


async def test_attach_uses_the_containers_terminal_setting_and_relays(
    node: Node, clients: tuple[TestClient[Any, Any], FakeStreaming]
) -> None:
    client, fake = clients
    ws = await client.ws_connect("/attach/default/web/main?input=1&output=1", protocols=[V5])
    assert await _session(ws, b"\x00x", b"\xff\x00") == [b"\x01x", b'\x03{"metadata":{},"status":"Success"}']
    assert fake.seen[0][0].startswith("/attach/")
    assert fake.queries == [{"tty": "1", "stdin": "1"}]  # from the pod spec, though the client asked no tty


async def test_port_forward_opens_the_pods_sandbox(
    node: Node, clients: tuple[TestClient[Any, Any], FakeStreaming]
) -> None:
    client, fake = clients
    ws = await client.ws_connect("/portForward/default/web?port=80", protocols=[V4])
    assert ws.protocol == V4
    await ws.send_bytes(b"\x00data")
    msg = await ws.receive(timeout=5)
    assert msg.data == b"\x01data"
    await ws.close()
    (sandbox,) = node.runtime.sandboxes
    assert fake.seen[0][0] == f"/portforward/{sandbox}"
    assert fake.queries == [{"port": "80"}]


async def test_a_client_without_a_relayable_subprotocol_is_refused_before_the_upgrade(
    clients: tuple[TestClient[Any, Any], FakeStreaming],
) -> None:
    client, fake = clients
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await client.ws_connect("/portForward/default/web?port=80", protocols=["base64.channel.k8s.io"])
    assert err.value.status == 400
    assert fake.seen == []


async def test_a_session_for_a_missing_container_ends_with_a_failure_status(
    clients: tuple[TestClient[Any, Any], FakeStreaming],
) -> None:
    client, fake = clients
    ws = await client.ws_connect("/exec/default/web/nope?command=sh&input=1", protocols=[V5])
    frames = await _session(ws)
    assert len(frames) == 1
    assert frames[0][0] == 3
    assert 'container \\"nope\\" in pod \\"web\\" is not running' in frames[0].decode()
    assert fake.seen == []
