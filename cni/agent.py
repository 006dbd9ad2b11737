"""The resident tinykube network agent: serves plugin requests from the executables over a unix
socket, so each CNI call costs an interpreter start plus a socket round trip instead of `import
pyroute2` (~150 ms). Started by whoever runs the node:

    python -m cni.agent --socket /run/tinykube/cni.sock

Requests run on a pool of worker threads; requests for different containers run concurrently (IPAM serialises on its
per-network file lock, netlink sockets are per request).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import socketserver
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import Any

from cni import wire
from cni.edge import serve_request
from cni.registry import HandlerSet
from cni.registry import handlers as make_handlers

DEFAULT_SOCKET = "/run/tinykube/cni.sock"


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = sock.recv(min(left, 1 << 16))
        if not chunk:
            raise ConnectionError("peer closed mid-request")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class _RequestHandler(socketserver.BaseRequestHandler):
    server: AgentServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        try:
            size = int.from_bytes(_recv_exact(sock, wire.HEADER), "big")
            if size > wire.MAX_REQUEST:
                return
            plugin_type, env, stdin = wire.decode_request(_recv_exact(sock, size))
        except (ConnectionError, ValueError, UnicodeDecodeError):
            return
        sock.sendall(serve_request(plugin_type, env, stdin, handlers=self.server.handlers))


class AgentServer(socketserver.UnixStreamServer):
    """Requests run on a fixed pool of worker threads (not a thread per request) so each worker's
    cached netlink handle is reused across requests."""

    def __init__(self, path: str, handlers: HandlerSet, *, workers: int = 16, bind: bool = True) -> None:
        self.handlers = handlers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cni-agent")
        super().__init__(path, _RequestHandler, bind_and_activate=bind)

    def process_request(self, request: Any, client_address: Any) -> None:
        self._pool.submit(self._work, request, client_address)

    def _work(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        self._pool.shutdown(wait=True)
        self.handlers.close()


def _refuse_if_running(path: str) -> None:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # stale socket of a dead agent
        return
    finally:
        probe.close()
    raise SystemExit(f"an agent already listens on {path}")


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="cni.agent", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--socket", default=DEFAULT_SOCKET, help="unix socket the plugin executables call")
    parser.add_argument("--host-netns", default=None, help="netns path to treat as the host (tests, benchmarks)")
    args = parser.parse_args(list(argv))
    os.makedirs(os.path.dirname(args.socket) or ".", exist_ok=True)
    _refuse_if_running(args.socket)
    server = AgentServer(args.socket, make_handlers(host_netns=args.host_netns), bind=False)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever() to return: never on the signalled thread. It works
        # whether serve_forever() already runs or starts later.
        threading.Thread(target=server.shutdown, daemon=True).start()

    # Handlers before the socket exists: whoever waits for the socket may signal us right away.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.server_bind()
    server.server_activate()
    os.chmod(args.socket, 0o600)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        server.server_close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(args.socket)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
