"""The one place where plugin outcomes become spec output: result JSON on success, error JSON and a
non-zero exit status on failure, the VERSION report. Shared by the executable's fallback path and the
agent, so both print byte-for-byte the same thing.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass

from cni import wire
from cni.config import version_of
from cni.errors import CniError, InvalidConfig
from cni.invoke import Handler
from cni.registry import handler_for
from cni.types import SUPPORTED_VERSIONS, PluginRequest

# Code for failures that are not one of the spec's well-known errors (spec: 100+ are plugin-specific).
INTERNAL_ERROR = 999


@dataclass(frozen=True)
class Response:
    exit_status: int
    stdout: bytes


def version_report(stdin: bytes) -> bytes:
    return json.dumps({"cniVersion": version_of(stdin), "supportedVersions": list(SUPPORTED_VERSIONS)}).encode()


def respond(handler: Handler, request: PluginRequest) -> Response:
    """Run the handler and render its outcome as the spec requires."""
    if request.command == "VERSION":
        return Response(0, version_report(request.stdin))
    try:
        result = handler(request)
    except CniError as err:
        return Response(1, json.dumps(err.to_json(version_of(request.stdin))).encode())
    except Exception as err:  # the edge: anything unexpected still reaches the runtime as spec JSON
        error = CniError(f"internal error: {err}", traceback.format_exc(limit=5), code=INTERNAL_ERROR)
        return Response(1, json.dumps(error.to_json(version_of(request.stdin))).encode())
    return Response(0, json.dumps(result).encode() if result is not None else b"")


def _unknown_type(plugin_type: str) -> Handler:
    def refuse(_request: PluginRequest) -> None:
        raise InvalidConfig(f"this agent does not implement plugin type {plugin_type!r}")

    return refuse


def serve_request(
    plugin_type: str, env: tuple[str, ...], stdin: bytes, *, handlers: dict[str, Handler] | None = None
) -> bytes:
    """One wire request in, one wire response out (the agent and the executable's fallback)."""
    command, container_id, netns, ifname, args, path = env
    request = PluginRequest(command, container_id, netns, ifname, args, path, stdin)
    if command == "VERSION":  # answered without loading any plugin implementation
        response = Response(0, version_report(stdin))
    else:
        handler = handlers.get(plugin_type) if handlers is not None else handler_for(plugin_type)
        response = respond(handler or _unknown_type(plugin_type), request)
    return wire.encode_response(response.exit_status, response.stdout)
