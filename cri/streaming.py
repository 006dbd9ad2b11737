"""The CRI streaming server: `Exec` and `PortForward` return one-shot URLs to it, and the kubelet
(noded) proxies a client's WebSocket there. Protocol: Kubernetes' channel framing over WebSocket
(`v5.channel.k8s.io` / `v4.channel.k8s.io`): each binary message starts with a channel byte —
0 stdin, 1 stdout, 2 stderr, 3 the final Status (JSON), 4 terminal resize, 255 close (v5).
Port forwarding uses channels 2i (data) and 2i+1 (errors) for the i-th `port` query parameter,
each opened by a little-endian uint16 port number.

Runs its own asyncio loop in one thread of the daemon; blocking runtime calls go to executor threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import secrets
import socket
import struct
import termios
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from cri.container import ExecStream
from cri.errors import CriError
from cri.runtime import Runtime

TOKEN_TTL = 60.0
EXEC_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io")
PORTFORWARD_PROTOCOLS = ("v4.channel.k8s.io", "portforward.k8s.io", "channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


@dataclass(frozen=True)
class _Pending:
    kind: str
    target: str
    cmd: tuple[str, ...] = ()
    tty: bool = False
    expires: float = 0.0


def exit_status(code: int) -> dict[str, Any]:
    """The metav1.Status kubectl reads from channel 3 (exit code in details.causes)."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


class StreamingServer:
    def __init__(self, runtime: Runtime, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.runtime = runtime
        self.host = host
        self.port = port
        self.base_url = ""
        self._pending: dict[str, _Pending] = {}  # guarded by _lock
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle (called from the daemon's main thread) --------------------------------------

    def start(self) -> str:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve())
            except BaseException as err:
                failure.append(err)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            loop.close()

        self._thread = threading.Thread(target=run, name="cri-streaming", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]
        return self.base_url

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_get("/exec/{token}", self._exec)
        app.router.add_get("/attach/{token}", self._attach)
        app.router.add_get("/portforward/{token}", self._portforward)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        port = self._runner.addresses[0][1] if self._runner.addresses else self.port
        self.base_url = f"http://{self.host}:{port}"

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    # ---- URLs (called from gRPC threads) -------------------------------------------------------

    def _register(self, pending: _Pending) -> str:
        token = secrets.token_urlsafe(24)
        now = time.monotonic()
        with self._lock:
            for key in [k for k, p in self._pending.items() if p.expires < now]:
                del self._pending[key]
            self._pending[token] = pending
        return token

    def exec_url(self, container_id: str, cmd: list[str], *, tty: bool) -> str:
        token = self._register(_Pending("exec", container_id, tuple(cmd), tty, time.monotonic() + TOKEN_TTL))
        return f"{self.base_url}/exec/{token}"

    def attach_url(self, container_id: str, *, tty: bool) -> str:
        token = self._register(_Pending("attach", container_id, tty=tty, expires=time.monotonic() + TOKEN_TTL))
        return f"{self.base_url}/attach/{token}"

    def portforward_url(self, sandbox_id: str) -> str:
        token = self._register(_Pending("portforward", sandbox_id, expires=time.monotonic() + TOKEN_TTL))
        return f"{self.base_url}/portforward/{token}"

    def _take(self, token: str, kind: str) -> _Pending:
        with self._lock:
            pending = self._pending.pop(token, None)
        if pending is None or pending.kind != kind or pending.expires < time.monotonic():
            raise web.HTTPNotFound(text="unknown or expired streaming token")
        return pending

    # ---- exec ------------------------------------------------------------------------------------

    async def _exec(self, request: web.Request) -> web.StreamResponse:
        pending = self._take(request.match_info["token"], "exec")
        ws = web.WebSocketResponse(protocols=EXEC_PROTOCOLS)
        await ws.prepare(request)
        loop = asyncio.get_running_loop()
        try:
            stream = await loop.run_in_executor(
                None, lambda: self.runtime.containers.exec_stream(pending.target, list(pending.cmd), tty=pending.tty)
            )
        except CriError as err:
            await ws.send_bytes(bytes([ERROR]) + json.dumps({"status": "Failure", "message": str(err)}).encode())
            await ws.close()
            return ws
        try:
            await self._pump_exec(ws, stream)
        finally:
            stream.close()
            await ws.close()
        return ws

    async def _pump_exec(self, ws: web.WebSocketResponse, stream: ExecStream) -> None:
        loop = asyncio.get_running_loop()
        outputs = [(STDOUT, stream.stdout)] + ([(STDERR, stream.stderr)] if stream.stderr >= 0 else [])
        copiers = [asyncio.ensure_future(self._copy_out(ws, ch, fd)) for ch, fd in outputs]
        inbound = asyncio.ensure_future(self._copy_in(ws, stream))
        await asyncio.gather(*copiers)
        status = await loop.run_in_executor(None, _read_status, stream.status)
        inbound.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await inbound
        code = int(status.get("exit_code", 1))
        await ws.send_bytes(bytes([ERROR]) + json.dumps(exit_status(code)).encode())

    @staticmethod
    async def _copy_out(ws: web.WebSocketResponse, channel: int, fd: int) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = await loop.run_in_executor(None, os.read, fd, 65536)
            except OSError:  # EIO: the pty's last user went away
                return
            if not data:
                return
            await ws.send_bytes(bytes([channel]) + data)

    @staticmethod
    async def _copy_in(ws: web.WebSocketResponse, stream: ExecStream) -> None:
        loop = asyncio.get_running_loop()
        async for msg in ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            channel, data = msg.data[0], msg.data[1:]
            if channel == STDIN and stream.stdin >= 0:
                await loop.run_in_executor(None, _write_all, stream.stdin, data)
            elif channel == RESIZE and stream.tty:
                size = json.loads(data)
                winsize = struct.pack("HHHH", int(size.get("Height", 0)), int(size.get("Width", 0)), 0, 0)
                fcntl.ioctl(stream.stdout, termios.TIOCSWINSZ, winsize)
            elif channel == CLOSE and data[:1] == bytes([STDIN]) and not stream.tty:
                os.close(stream.stdin)
                stream.stdin = -1

    # ---- attach ----------------------------------------------------------------------------------

    async def _attach(self, request: web.Request) -> web.StreamResponse:
        """Bridge the WebSocket to the container monitor's attach socket (same channel framing)."""
        pending = self._take(request.match_info["token"], "attach")
        ws = web.WebSocketResponse(protocols=EXEC_PROTOCOLS)
        await ws.prepare(request)
        loop = asyncio.get_running_loop()
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            address = await loop.run_in_executor(None, self.runtime.containers.attach_address, pending.target)
            conn.setblocking(False)
            await loop.sock_connect(conn, address)
        except (CriError, OSError) as err:
            conn.close()
            await ws.send_bytes(bytes([ERROR]) + json.dumps({"status": "Failure", "message": str(err)}).encode())
            await ws.close()
            return ws
        outbound = asyncio.ensure_future(_copy_frames(ws, conn))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.BINARY and msg.data:
                    await loop.sock_sendall(conn, msg.data)
                if outbound.done():
                    break
        finally:
            outbound.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await outbound
            conn.close()
            await ws.close()
        return ws

    # ---- port forward ----------------------------------------------------------------------------

    async def _portforward(self, request: web.Request) -> web.StreamResponse:
        pending = self._take(request.match_info["token"], "portforward")
        ports = [int(p) for p in request.query.getall("port", [])]
        if not ports or any(not 0 < p < 65536 for p in ports):
            raise web.HTTPBadRequest(text="port forwarding needs one or more valid port query parameters")
        ws = web.WebSocketResponse(protocols=PORTFORWARD_PROTOCOLS)
        await ws.prepare(request)
        loop = asyncio.get_running_loop()
        conns: dict[int, socket.socket] = {}
        try:
            for i, port in enumerate(ports):
                for channel in (2 * i, 2 * i + 1):
                    await ws.send_bytes(bytes([channel]) + struct.pack("<H", port))
                try:
                    conns[2 * i] = await loop.run_in_executor(None, self.runtime.port_connect, pending.target, port)
                except CriError as err:
                    await ws.send_bytes(bytes([2 * i + 1]) + str(err).encode())
            readers = [asyncio.ensure_future(_copy_socket(ws, ch, s)) for ch, s in conns.items()]
            # When every pod connection has ended, so does the stream, as the kubelet's does: the client
            # (noded, kubectl) sees its connection close instead of waiting forever.
            drained = asyncio.ensure_future(_close_after(ws, readers))
            async for msg in ws:
                if msg.type != WSMsgType.BINARY or not msg.data:
                    continue
                conn = conns.get(msg.data[0])
                if conn is not None:
                    with contextlib.suppress(OSError):  # the pod side is gone: its reader ends the stream
                        await loop.sock_sendall(conn, msg.data[1:])
            for task in (*readers, drained):
                task.cancel()
        finally:
            for conn in conns.values():
                conn.close()
            await ws.close()
        return ws


async def _close_after(ws: web.WebSocketResponse, readers: Sequence[asyncio.Future[None]]) -> None:
    await asyncio.gather(*readers, return_exceptions=True)
    await ws.close()


async def _copy_socket(ws: web.WebSocketResponse, channel: int, conn: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    conn.setblocking(False)
    while data := await loop.sock_recv(conn, 65536):
        await ws.send_bytes(bytes([channel]) + data)


async def _copy_frames(ws: web.WebSocketResponse, conn: socket.socket) -> None:
    """Monitor frames → WebSocket until the container exits (EOF), then a Success status."""
    loop = asyncio.get_running_loop()
    while frame := await loop.sock_recv(conn, 65537):
        await ws.send_bytes(frame)
    await ws.send_bytes(bytes([ERROR]) + json.dumps(exit_status(0)).encode())
    await ws.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_status(fd: int) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    with os.fdopen(os.dup(fd), "rb") as f:
        for line in f:
            with contextlib.suppress(ValueError):
                merged.update(json.loads(line))
    return merged
