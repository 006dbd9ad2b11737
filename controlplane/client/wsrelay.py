"""A WebSocket relay between a server-side connection and an upstream client connection: the API
server uses it to pass `kubectl exec/attach/port-forward` to the node agent, and the node agent to pass
them on to the CRI runtime's streaming server. Messages are copied as they are, both ways."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

__all__ = ["relay"]


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
