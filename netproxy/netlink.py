"""The few netlink wire helpers the proxy's raw-socket writers share (IPVS over generic netlink,
nf_tables set elements over nfnetlink). Pure."""

from __future__ import annotations

import struct
from collections.abc import Sequence

NLM_F_REQUEST, NLM_F_ACK, NLM_F_CREATE = 0x1, 0x4, 0x400
NLA_F_NESTED = 0x8000
NLMSG_ERROR = 2


def attr(kind: int, payload: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    head = struct.pack("=HH", 4 + len(payload), kind)
    return head + payload + b"\0" * (-len(payload) % 4)


def nested(kind: int, *children: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(children))


def nlmsg(kind: int, flags: int, seq: int, body: bytes) -> bytes:
    return struct.pack("=IHHII", 16 + len(body), kind, flags, seq, 0) + body


def parse_acks(data: bytes) -> Sequence[tuple[int, int]]:
    """(sequence number, errno) of each NLMSG_ERROR message in a receive buffer (errno 0 = success)."""
    out = []
    pos = 0
    while pos + 16 <= len(data):
        length, kind, _flags, seq, _pid = struct.unpack_from("=IHHII", data, pos)
        if length < 16:
            break
        if kind == NLMSG_ERROR:
            (error,) = struct.unpack_from("=i", data, pos + 16)
            out.append((seq, -error))
        pos += (length + 3) & ~3
    return out
