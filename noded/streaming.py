"""Interactive sessions (`exec -i/-t`, `attach`, `port-forward`): the CRI runtime serves them itself on
one-use URLs (RPCs `Exec`, `Attach`, `PortForward`); noded relays the client's WebSocket there message
by message. Both ends speak Kubernetes' channel framing (`v5`/`v4.channel.k8s.io`: a channel byte
then data — 0 stdin, 1 stdout, 2 stderr, 3 Status, 4 resize, 255 close), so frames pass untouched and
the subprotocol the runtime picks is the one the client gets.

`kubectl port-forward` speaks SPDY/3.1 instead (tunnelled in WebSocket binary messages as
`SPDY/3.1+portforward.k8s.io`): noded terminates that session itself (`SpdyPortForward`) and gives every
forwarded connection its own single-port session on the runtime's streaming server."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
from aiohttp import web

from controlplane.client.wsrelay import relay
from noded.errors import NodedError
from noded.spdy import (
    DEFAULT_WINDOW,
    DataFrame,
    Frame,
    FrameDecoder,
    FrameEncoder,
    GoAway,
    GoAwayStatus,
    Ping,
    RstStatus,
    RstStream,
    SpdyError,
    SynReply,
    SynStream,
    WindowUpdate,
)

EXEC_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
PORTFORWARD_PROTOCOLS = ("v4.channel.k8s.io", "portforward.k8s.io")
SPDY_PORTFORWARD_PROTOCOL = "SPDY/3.1+portforward.k8s.io"
CH_ERROR = 3
CONNECT_TIMEOUT = 10.0


def offered_protocols(header: str) -> list[str]:
    """The `Sec-WebSocket-Protocol` list a client sent, in its order of preference."""
    return [p.strip() for p in header.split(",") if p.strip()]


def relayable(offered: Sequence[str], supported: Sequence[str]) -> list[str]:
    """The client's offers that both noded and the runtime understand, client's order first."""
    return [p for p in offered if p in supported]


def wants_spdy(offered: Sequence[str]) -> bool:
    """kubectl's port-forward: SPDY offered and no channel protocol that a plain relay could serve."""
    return SPDY_PORTFORWARD_PROTOCOL in offered and not relayable(offered, PORTFORWARD_PROTOCOLS)


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
    if not wanted:  # e.g. an exec client offering only SPDY, or an unknown channel protocol
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


# ---- port-forward over SPDY/3.1 ------------------------------------------------------------------


@dataclass(frozen=True)
class PortChunk:
    """What one forwarded connection yields: bytes from the pod, or an error message about it."""

    data: bytes
    error: bool = False


class PortConnection(Protocol):
    """One TCP connection to a port inside the pod."""

    async def write(self, data: bytes) -> None: ...

    async def read(self) -> PortChunk | None:
        """The next chunk; None once the connection is over."""
        ...

    async def close(self) -> None: ...


Dial = Callable[[int], Awaitable[PortConnection]]


class ChannelPortConnection:
    """A single-port session on the runtime's streaming server: channel 0 carries the data, channel 1
    errors, and each channel opens with the little-endian port number, which is dropped here."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._session = session
        self._ws = ws
        self._opened: set[int] = set()

    @classmethod
    async def open(cls, url: str) -> ChannelPortConnection:
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT))
        try:
            ws = await session.ws_connect(url, protocols=PORTFORWARD_PROTOCOLS, max_msg_size=0)
        except BaseException:
            await session.close()
            raise
        return cls(session, ws)

    async def write(self, data: bytes) -> None:
        await self._ws.send_bytes(b"\x00" + data)

    async def read(self) -> PortChunk | None:
        while True:
            msg = await self._ws.receive()
            if msg.type == aiohttp.WSMsgType.TEXT:
                continue
            if msg.type != aiohttp.WSMsgType.BINARY:
                return None
            if not msg.data:
                continue
            channel, payload = msg.data[0], msg.data[1:]
            if channel not in self._opened:
                self._opened.add(channel)
                payload = payload[2:]
            if payload:
                return PortChunk(payload, error=channel % 2 == 1)

    async def close(self) -> None:
        await self._ws.close()
        await self._session.close()


@dataclass
class _Forward:
    """One forwarded connection: kubectl's pair of streams (errors, data) sharing a request id."""

    request_id: str
    port: int
    error_id: int = 0
    data_id: int = 0
    conn: PortConnection | None = None
    pending: list[bytes] = field(default_factory=list)  # client bytes that came before the dial finished
    unacked: int = 0  # data-stream bytes consumed but not yet granted back by WINDOW_UPDATE
    client_done: bool = False  # FIN came while dialing: finish once `pending` is delivered
    task: asyncio.Task[None] | None = None


class SpdyPortForward:
    """kubectl's port-forward protocol (`portforward.k8s.io` v1) over a SPDY/3.1 session, server side.

    Per local connection kubectl opens an `error` stream, then a `data` stream, both with headers `port`
    and `requestid`; each gets a SYN_REPLY. The data stream is joined to a new connection to that port
    in the pod; a failure goes as text on the error stream. We end the pair with FIN on both streams
    when the pod side ends or the client finishes sending (the runtime's channel framing has no
    half-close, so the pod connection is closed then, as a client that stopped sending usually wants).

    Flow control (SPDY/3.1 §2.6.8): we grant window back with WINDOW_UPDATE, per stream and for the
    session, once half a window has been consumed. We do not hold our own sends to the peer's windows:
    kubectl's SPDY library (spdystream) never sends WINDOW_UPDATE, so honouring them would stall every
    connection after 64 KiB."""

    def __init__(self, send: Callable[[bytes], Awaitable[None]], dial: Dial) -> None:
        self._send_bytes = send
        self._dial = dial
        self._encoder = FrameEncoder()
        self._decoder = FrameDecoder()
        self._send_lock = asyncio.Lock()  # guards _encoder: header blocks must leave in encoding order
        self._forwards: dict[str, _Forward] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # strong references until each pair's task ends
        self._by_stream: dict[int, _Forward] = {}
        self._session_unacked = 0
        self._last_stream_id = 0
        self._going_away = False

    async def receive(self, data: bytes) -> None:
        """Bytes from the client (any slicing); raises SpdyError on a protocol violation."""
        for frame in self._decoder.feed(data):
            await self._handle(frame)

    async def close(self) -> None:
        """The client went away: drop every forwarded connection."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._forwards.clear()
        self._by_stream.clear()

    async def protocol_error(self) -> None:
        """Tell the client its bytes made no sense before we hang up (§2.4.2)."""
        await self._send(GoAway(self._last_stream_id, GoAwayStatus.PROTOCOL_ERROR))

    async def _send(self, frame: Frame) -> None:
        async with self._send_lock:
            await self._send_bytes(self._encoder.encode(frame))

    async def _handle(self, frame: Frame) -> None:
        match frame:
            case SynStream():
                await self._open_stream(frame)
            case DataFrame():
                await self._data(frame)
            case RstStream(stream_id=sid):
                forward = self._by_stream.get(sid)
                if forward is not None:
                    self._drop(forward)
            case Ping():
                if frame.ping_id % 2 == 1:  # client-initiated ids are odd; even ones answer our pings
                    await self._send(frame)
            case GoAway():
                self._going_away = True
            case _:
                pass  # SETTINGS, WINDOW_UPDATE, HEADERS, SYN_REPLY: nothing to act on (see class doc)

    async def _open_stream(self, frame: SynStream) -> None:
        sid = frame.stream_id
        if sid % 2 == 0 or sid <= self._last_stream_id:
            raise SpdyError(f"stream id {sid} is not a new client stream")
        self._last_stream_id = sid
        kind = frame.headers.get("streamtype", "")
        try:
            port = int(frame.headers.get("port", ""))
        except ValueError:
            port = 0
        if self._going_away:
            await self._send(RstStream(sid, RstStatus.REFUSED_STREAM))
            return
        if kind not in ("error", "data") or not 0 < port < 65536:
            await self._send(RstStream(sid, RstStatus.PROTOCOL_ERROR))
            return
        # Clients without request ids create the error stream right before the data stream.
        request_id = frame.headers.get("requestid") or str(sid if kind == "error" else sid - 2)
        forward = self._forwards.setdefault(request_id, _Forward(request_id, port))
        if kind == "error":
            forward.error_id = sid
        else:
            forward.data_id = sid
        self._by_stream[sid] = forward
        await self._send(SynReply(sid))
        if kind == "data" and forward.task is None:
            forward.task = asyncio.create_task(self._run(forward))
            self._tasks.add(forward.task)
            forward.task.add_done_callback(self._tasks.discard)

    async def _data(self, frame: DataFrame) -> None:
        forward = self._by_stream.get(frame.stream_id)
        if frame.data:
            await self._grant_session(len(frame.data))
        if forward is None or frame.stream_id != forward.data_id:
            return  # a stream we already ended, or the client writing to its error stream
        if frame.data:
            if forward.conn is None:
                forward.pending.append(frame.data)
            else:
                with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                    await forward.conn.write(frame.data)
            forward.unacked += len(frame.data)
            if forward.unacked >= DEFAULT_WINDOW // 2:
                await self._send(WindowUpdate(forward.data_id, forward.unacked))
                forward.unacked = 0
        if frame.fin:
            if forward.conn is None and forward.task is not None and not forward.task.done():
                forward.client_done = True
            else:
                await self._finish(forward)

    async def _grant_session(self, size: int) -> None:
        self._session_unacked += size
        if self._session_unacked >= DEFAULT_WINDOW // 2:
            await self._send(WindowUpdate(0, self._session_unacked))
            self._session_unacked = 0

    async def _run(self, forward: _Forward) -> None:
        try:
            conn = await self._dial(forward.port)
        except (NodedError, aiohttp.ClientError, OSError) as err:
            with contextlib.suppress(ConnectionError):  # the client may be gone as well
                await self._fail(forward, str(err))
            return
        try:
            while forward.pending:  # in arrival order, including bytes that arrive meanwhile
                await conn.write(forward.pending.pop(0))
            forward.conn = conn
            if forward.client_done:
                await self._finish(forward)
                return
            while (chunk := await conn.read()) is not None:
                if chunk.error:
                    await self._fail(forward, chunk.data.decode(errors="replace"))
                    return
                await self._send(DataFrame(forward.data_id, chunk.data))
            await self._finish(forward)
        except (ConnectionError, aiohttp.ClientError) as err:
            with contextlib.suppress(ConnectionError):
                await self._fail(forward, str(err))
        finally:
            await conn.close()

    async def _fail(self, forward: _Forward, message: str) -> None:
        if forward.error_id and self._forwards.get(forward.request_id) is forward:
            text = f"error forwarding port {forward.port} to pod: {message}"
            await self._send(DataFrame(forward.error_id, text.encode()))
        await self._finish(forward)

    async def _finish(self, forward: _Forward) -> None:
        """End both streams with FIN and forget the pair; the pod connection closes with its task."""
        if self._forwards.get(forward.request_id) is not forward:
            return
        self._forget(forward)
        for sid in (forward.data_id, forward.error_id):
            if sid:
                await self._send(DataFrame(sid, fin=True))
        if forward.task is not None and forward.task is not asyncio.current_task():
            forward.task.cancel()

    def _drop(self, forward: _Forward) -> None:
        """The client reset a stream of the pair: no more frames for either."""
        if self._forwards.get(forward.request_id) is forward:
            self._forget(forward)
            if forward.task is not None:
                forward.task.cancel()

    def _forget(self, forward: _Forward) -> None:
        del self._forwards[forward.request_id]
        for sid in (forward.data_id, forward.error_id):
            self._by_stream.pop(sid, None)


async def serve_spdy_portforward(
    request: web.Request, url_for_port: Callable[[int], Awaitable[str]]
) -> web.WebSocketResponse:
    """Accept kubectl's SPDY-in-WebSocket port-forward and run the session until the client leaves."""
    ws = web.WebSocketResponse(protocols=[SPDY_PORTFORWARD_PROTOCOL], max_msg_size=0)
    await ws.prepare(request)

    async def dial(port: int) -> PortConnection:
        return await ChannelPortConnection.open(await url_for_port(port))

    session = SpdyPortForward(ws.send_bytes, dial)
    try:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.BINARY:
                await session.receive(msg.data)
    except SpdyError:
        with contextlib.suppress(ConnectionError):
            await session.protocol_error()
    finally:
        await session.close()
        await ws.close()
    return ws
