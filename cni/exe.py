"""Entry point of the installed plugin executables (`tinykube-bridge`, `tinykube-host-local`).

The hot path imports nothing beyond builtins: it forwards the CNI_* environment and stdin to the
resident agent over its unix socket and relays the answer (the "thick plugin" design, issue #5).
Only when no agent listens does it import the implementation and do the work itself.
"""

from __future__ import annotations

import os
import sys

from cni import wire

# Answer for an agent that accepted the request but died before replying (spec code 11: retry).
AGENT_LOST = b'{"cniVersion":"1.0.0","code":11,"msg":"tinykube CNI agent closed the connection"}'


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def via_agent(socket_path: str, payload: bytes) -> bytes | None:
    """The agent's raw response, or None if no agent is listening."""
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        try:
            sock.connect(socket_path)
        except OSError:
            return None
        sock.sendall(payload)
        sock.shutdown(_socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(1 << 16):
            chunks.append(chunk)
        return b"".join(chunks) or b"\x01" + AGENT_LOST
    finally:
        sock.close()


def in_process(plugin_type: str, env: tuple[str, ...], stdin: bytes) -> bytes:
    """No agent: do the work here (the venv's site-packages are off the path under `-S`)."""
    import site

    site.main()
    from cni.edge import serve_request

    return serve_request(plugin_type, env, stdin)


def main(plugin_type: str, agent_socket: str) -> int:
    env = tuple(os.environ.get(name, "") for name in wire.ENV_FIELDS)
    stdin = _read_all(0)
    response = via_agent(agent_socket, wire.encode_request(plugin_type, env, stdin)) if agent_socket else None
    if response is None:
        response = in_process(plugin_type, env, stdin)
    _write_all(1, response[1:])
    return response[0]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else ""))
