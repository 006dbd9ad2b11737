"""The netlink wire helpers and the raw socket the proxy's batch writers share (IPVS over generic
netlink, holder addresses over rtnetlink, nf_tables set elements over nfnetlink). All but
`RawNetlink` is pure."""

from __future__ import annotations

import select
import socket
import struct
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
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


BATCH = 256  # requests per send(); their acknowledgements fit the default receive buffer
T = TypeVar("T")


class RawNetlink:
    """A raw netlink socket. It acts in the network namespace it was created in, whichever thread uses
    it later (a lab creates it inside a node's namespace)."""

    def __init__(self, protocol: int) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, protocol)
        self._sock.bind((0, 0))
        self._seq = 0

    def close(self) -> None:
        self._sock.close()

    def next_seq(self) -> int:
        self._seq = (self._seq % 0x7FFFFFFF) + 1
        return self._seq

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(data)

    def receive(self, timeout: float) -> bytes | None:
        """One receive buffer, or None when nothing came within `timeout` seconds."""
        ready, _, _ = select.select([self._sock], [], [], timeout)
        return self._sock.recv(1 << 20) if ready else None

    def _exchange(self, requests: Sequence[tuple[int, bytes]]) -> dict[int, int]:
        """Sends (sequence number, message) requests that each ask for an acknowledgement, many to a
        send(), and reads every acknowledgement back; returns the errno of each request that failed."""
        errors: dict[int, int] = {}
        for start in range(0, len(requests), BATCH):
            chunk = requests[start : start + BATCH]
            waiting = {seq for seq, _ in chunk}
            self._sock.sendall(b"".join(message for _, message in chunk))
            while waiting:
                for seq, code in parse_acks(self._sock.recv(1 << 20)):
                    if seq in waiting:
                        waiting.discard(seq)
                        if code:
                            errors[seq] = code
        return errors

    def request(self, items: Iterable[T], message: Callable[[int, T], bytes]) -> list[tuple[T, int]]:
        """One request per item (`message(seq, item)`), exchanged in batches; the items the kernel
        refused, in the order given, with their errno (the caller decides which are no error)."""
        by_seq: dict[int, T] = {}
        requests = []
        for item in items:
            seq = self.next_seq()
            by_seq[seq] = item
            requests.append((seq, message(seq, item)))
        errors = self._exchange(requests)
        return [(item, errors[seq]) for seq, item in by_seq.items() if seq in errors]
