"""Handlers that hand requests straight to the agent's socket: a runtime gets the agent's speed
without an exec per call, and without pyroute2 or setns() in its own process (stdlib-only).

    handlers = cni.client.agent_handlers("/run/tinykube/cni.sock")
    cni.invoke.add(conflist, sandbox_id, netns, "eth0", bin_dirs, handlers=handlers)

When no agent listens, the request goes to the plugin executable as usual (found on CNI_PATH).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable
from typing import Any

from cni import wire
from cni.errors import DecodeFailure, TryAgainLater, error_from_json
from cni.invoke import DEFAULT_TIMEOUT, Handler, run_plugin
from cni.types import PluginRequest

PLUGIN_TYPES = ("tinykube-bridge", "tinykube-host-local")


def call_agent(socket_path: str, plugin_type: str, request: PluginRequest, *, timeout: float) -> bytes | None:
    """The agent's raw wire response, or None when nobody listens on the socket."""
    env = (request.command, request.container_id, request.netns, request.ifname, request.args, request.path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(socket_path)
        except (FileNotFoundError, ConnectionRefusedError):
            return None
        sock.sendall(wire.encode_request(plugin_type, env, request.stdin))
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(1 << 16):
            chunks.append(chunk)
    except OSError as err:
        raise TryAgainLater("tinykube CNI agent failed mid-request", str(err)) from err
    finally:
        sock.close()
    if not chunks:
        raise TryAgainLater("tinykube CNI agent closed the connection")
    return b"".join(chunks)


def _decode(response: bytes) -> dict[str, Any] | None:
    status, out = response[0], response[1:].strip()
    try:
        obj = json.loads(out) if out else None
    except ValueError as err:
        raise DecodeFailure("agent returned invalid JSON", out[:500].decode(errors="replace")) from err
    if status != 0:
        raise error_from_json(obj)
    if obj is not None and not isinstance(obj, dict):
        raise DecodeFailure("agent returned a non-object result", repr(obj)[:500])
    return obj


def agent_handlers(
    socket_path: str, plugin_types: Iterable[str] = PLUGIN_TYPES, *, timeout: float = DEFAULT_TIMEOUT
) -> dict[str, Handler]:
    def make(plugin_type: str) -> Handler:
        def handle(request: PluginRequest) -> dict[str, Any] | None:
            response = call_agent(socket_path, plugin_type, request, timeout=timeout)
            if response is None:
                bin_dirs = [p for p in request.path.split(":") if p]
                return run_plugin(plugin_type, request, bin_dirs, timeout=timeout)
            return _decode(response)

        return handle

    return {t: make(t) for t in plugin_types}
