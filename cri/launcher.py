"""The fork server: a resident, single-threaded process the daemon starts before any gRPC thread.

The daemon sends it JSON requests (and file descriptors) over a SOCK_SEQPACKET socketpair; it forks
pause-holders, container monitors and exec monitors. Forking here instead of in the daemon keeps
setns/unshare away from gRPC's threads and costs a fork instead of an interpreter start per
container. When the daemon goes away the launcher exits too, but what it started keeps running.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from cri import linux
from cri.errors import RuntimeFailure
from cri.types import container_from_wire, exec_from_wire

_MAX_MESSAGE = 1 << 20
_MAX_FDS = 8


class Launcher(Protocol):
    """What the daemon needs of the fork server (the real one, or a fake in unit tests)."""

    def request(self, op: str, payload: dict[str, Any], fds: Sequence[int] = ()) -> dict[str, Any]: ...

    def close(self) -> None: ...


class LauncherClient:
    """Daemon side: one request in flight at a time (the launcher is single-threaded anyway)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards the socket: one request/response exchange at a time
        self._sock: socket.socket | None = None
        self.pid = 0

    def start(self) -> None:
        """Fork the launcher; must be called while this process still has a single thread."""
        if threading.active_count() > 1:
            raise RuntimeError("the launcher must be started before any other thread")
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            parent.close()
            code = 1
            try:
                serve(child)
                code = 0
            finally:
                os._exit(code)
        child.close()
        self._sock = parent
        self.pid = pid

    def request(self, op: str, payload: dict[str, Any], fds: Sequence[int] = ()) -> dict[str, Any]:
        if self._sock is None:
            raise RuntimeFailure("launcher not started")
        message = json.dumps({"op": op, "payload": payload}).encode()
        with self._lock:
            try:
                socket.send_fds(self._sock, [message], list(fds))
                data, got_fds, _, _ = socket.recv_fds(self._sock, _MAX_MESSAGE, _MAX_FDS)
            except OSError as err:
                raise RuntimeFailure(f"launcher: {err}") from err
        if not data:
            raise RuntimeFailure("launcher exited")
        reply: dict[str, Any] = json.loads(data)
        if not reply.get("ok"):
            for fd in got_fds:
                os.close(fd)
            raise RuntimeFailure(str(reply.get("error", "launcher request failed")))
        reply["fds"] = got_fds
        return reply

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self.pid:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.pid = 0


# ---- launcher side ----------------------------------------------------------------------------


def serve(sock: socket.socket) -> None:
    """Answer requests until the daemon closes its end. Children are reaped automatically — also the
    pause holders and monitors re-parented to us as subreaper, while we live (then init takes over)."""
    linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(sock, _MAX_MESSAGE, _MAX_FDS)
        except InterruptedError:
            continue
        if not data:
            return
        try:
            request = json.loads(data)
            reply = HANDLERS[request["op"]](request["payload"], fds, sock)
        except Exception as err:
            reply = {"ok": False, "error": f"{type(err).__name__}: {err}"}
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
        out_fds = reply.pop("fds", [])
        socket.send_fds(sock, [json.dumps(reply).encode()], out_fds)
        for fd in out_fds:
            os.close(fd)


def _forked(sock: socket.socket, body: Any) -> dict[str, Any]:
    """Fork a detached child that runs body(ready_fd); wait only for its JSON report on ready_fd."""
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            sock.close()
            os.close(ready_r)
            os.setsid()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            body(ready_w)
        except BaseException as err:
            with contextlib.suppress(OSError):
                os.write(ready_w, json.dumps({"ok": False, "error": str(err)}).encode())
        os._exit(1)
    os.close(ready_w)
    chunks = []
    while chunk := os.read(ready_r, 65536):
        chunks.append(chunk)
    os.close(ready_r)
    if not chunks:
        return {"ok": False, "error": "child exited without reporting"}
    reply: dict[str, Any] = json.loads(b"".join(chunks))
    return reply


def _ping(payload: dict[str, Any], fds: list[int], sock: socket.socket) -> dict[str, Any]:
    return {"ok": True, "pid": os.getpid()}


def _sandbox(payload: dict[str, Any], fds: list[int], sock: socket.socket) -> dict[str, Any]:
    from cri.pause import run_sandbox_holder

    return _forked(sock, lambda ready: run_sandbox_holder(payload, ready))


def _container(payload: dict[str, Any], fds: list[int], sock: socket.socket) -> dict[str, Any]:
    from cri.monitor import run_container_monitor

    spec = container_from_wire(payload)
    return _forked(sock, lambda ready: run_container_monitor(spec, ready))


def _exec(payload: dict[str, Any], fds: list[int], sock: socket.socket) -> dict[str, Any]:
    """fds: the command's stdin, stdout, stderr and a status pipe, owned by the daemon's exec call."""
    from cri.monitor import run_exec_monitor

    if len(fds) != 4:
        return {"ok": False, "error": "exec needs four file descriptors"}
    spec = exec_from_wire(payload)
    inheritable = [os.dup(fd) for fd in fds]

    def body(ready: int) -> None:
        os.write(ready, b'{"ok": true}')
        os.close(ready)
        run_exec_monitor(spec, *inheritable)

    try:
        return _forked(sock, body)
    finally:
        for fd in inheritable:
            os.close(fd)


def _connect(payload: dict[str, Any], fds: list[int], sock: socket.socket) -> dict[str, Any]:
    """A TCP connection to 127.0.0.1:<port> made inside a pod's network namespace (PortForward);
    the connected socket goes back to the daemon as a file descriptor."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    pid = os.fork()
    if pid == 0:
        try:
            parent.close()
            sock.close()
            if payload["netns"]:
                linux.setns(payload["netns"], linux.CLONE_NEWNET)
            conn = socket.create_connection(("127.0.0.1", int(payload["port"])), timeout=10)
            socket.send_fds(child, [b"ok"], [conn.fileno()])
        except BaseException as err:
            with contextlib.suppress(OSError):
                child.send(f"connect to port {payload['port']} in the pod: {err}".encode())
        os._exit(0)
    child.close()
    try:
        msg, got, _, _ = socket.recv_fds(parent, 4096, 1)
    finally:
        parent.close()
    if not got:
        return {"ok": False, "error": msg.decode(errors="replace") or "connect failed"}
    return {"ok": True, "fds": got}


HANDLERS = {"ping": _ping, "sandbox": _sandbox, "container": _container, "exec": _exec, "connect": _connect}

__all__ = ["HANDLERS", "Launcher", "LauncherClient", "serve"]
