"""Interactive sessions (`exec -i/-t`, `attach`, `port-forward`): the CRI runtime serves them itself on
one-use URLs (RPCs `Exec`, `Attach`, `PortForward`); noded relays the client's WebSocket there message
by message. Both ends speak Kubernetes' channel framing (`v5`/`v4.channel.k8s.io`: a channel byte
then data — 0 stdin, 1 stdout, 2 stderr, 3 Status, 4 resize, 255 close), so frames pass untouched and
the subprotocol the runtime picks is the one the client gets."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
from aiohttp import web

from noded.errors import NodedError

EXEC_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
PORTFORWARD_PROTOCOLS = ("v4.channel.k8s.io", "portforward.k8s.io")
CH_ERROR = 3
CONNECT_TIMEOUT = 10.0


def offered_protocols(header: str) -> list[str]:
    """The `Sec-WebSocket-Protocol` list a client sent, in its order of preference."""
    return [p.strip() for p in header.split(",") if p.strip()]


def relayable(offered: Sequence[str], supported: Sequence[str]) -> list[str]:
    """The client's offers that both noded and the runtime understand, client's order first."""
    return [p for p in offered if p in supported]


def failure_frame(message: str) -> bytes:
    """A Failure Status on the error channel, for sessions that cannot start."""
    status = {"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError"}
    return bytes([CH_ERROR]) + json.dumps(status).encode()


async def serve_relay(
    request: web.Request, url_for: Callable[[], Awaitable[str]], supported: Sequence[str]
) -> web.WebSocketResponse:
    """Open the runtime's streaming URL, then accept the client with the subprotocol the runtime chose
    and relay until either side closes. A session that cannot start gets a Failure Status."""
    offered = offered_protocols(request.headers.get("Sec-WebSocket-Protocol", ""))
    wanted = relayable(offered, supported)
    if not wanted:  # e.g. kubectl's SPDY-in-WebSocket port-forward (`SPDY/3.1+portforward.k8s.io`)
        raise web.HTTPBadRequest(text=f"none of the offered subprotocols {offered} is served; use one of {supported}")
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        try:
            upstream = await session.ws_connect(await url_for(), protocols=wanted, max_msg_size=0)
        except (NodedError, aiohttp.ClientError, OSError) as err:
            ws = web.WebSocketResponse(protocols=wanted, max_msg_size=0)
            await ws.prepare(request)
            with contextlib.suppress(ConnectionError):
                await ws.send_bytes(failure_frame(f"cannot start the session: {err}"))
                await ws.close()
            return ws
        async with upstream:
            client = web.WebSocketResponse(protocols=[upstream.protocol] if upstream.protocol else (), max_msg_size=0)
            await client.prepare(request)
            await relay(client, upstream)
            return client


async def relay(client: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse) -> None:
    """Copy binary and text messages both ways; when one side closes, close the other."""
    tasks = [
        asyncio.create_task(_copy(upstream, client.send_bytes, client.send_str)),
        asyncio.create_task(_copy(client, upstream.send_bytes, upstream.send_str)),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, aiohttp.ClientError):
                await task
        await upstream.close()
        await client.close()


async def _copy(
    source: Any, send_bytes: Callable[[bytes], Awaitable[None]], send_str: Callable[[str], Awaitable[None]]
) -> None:
    async for msg in source:
        if msg.type == aiohttp.WSMsgType.BINARY:
            await send_bytes(msg.data)
        elif msg.type == aiohttp.WSMsgType.TEXT:
            await send_str(msg.data)
        else:
            return
