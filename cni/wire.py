"""Framing between the plugin executable and the agent (stdlib builtins only: the executable must
not even import `json`, ~7 ms).

Request:  4-byte big-endian length, then NUL-separated fields
          plugin type, CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS, CNI_PATH, stdin
          (environment values cannot contain NUL; stdin is the last field and taken whole).
Response: one byte exit status, then the plugin's stdout until the agent closes the connection.
"""

from __future__ import annotations

ENV_FIELDS = ("CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH")
HEADER = 4
MAX_REQUEST = 16 << 20


def encode_request(plugin_type: str, env: tuple[str, ...], stdin: bytes) -> bytes:
    body = b"\0".join([plugin_type.encode(), *(v.encode() for v in env), stdin])
    return len(body).to_bytes(HEADER, "big") + body


def decode_request(body: bytes) -> tuple[str, tuple[str, ...], bytes]:
    """Inverse of encode_request (without the length header)."""
    parts = body.split(b"\0", len(ENV_FIELDS) + 1)
    if len(parts) != len(ENV_FIELDS) + 2:
        raise ValueError("malformed request")
    return parts[0].decode(), tuple(p.decode() for p in parts[1:-1]), parts[-1]


def encode_response(exit_status: int, stdout: bytes) -> bytes:
    return bytes([exit_status & 0xFF]) + stdout
