"""Endpoint-map and hairpin-set element edits sent as one nf_tables netlink batch, without the `nft` tool.

Why: an endpoint change edits a few elements (render.py's docstring), but `nft` 1.0.6 first fetches its
cache of the whole table, every chain included, for any element command: ~25-30 ms at 10k Services,
most of a partial sync. The kernel itself applies the same batch in well under a millisecond. Only
the two element shapes of our table are encoded here (field layout from linux/netfilter/nf_tables.h;
each field of a concatenation takes a whole 32-bit register):

  endpoints-<proto>-<k>   key  numgen . numgen . numgen-range  (u32 each, stored big-endian)  -> ip . port
  hairpin                 key  ip . ip

render.py decides which sets qualify (`element_edits`); here a key's shape says which one it is.

Anything else (chains, verdict maps, new sets) still goes through `nft -f`. The batch is atomic: the
kernel applies every edit or none.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from netproxy.errors import ApplyError
from netproxy.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_REQUEST, RawNetlink, attr, nested, nlmsg, parse_acks

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END = 0x10, 0x11
NFT_MSG_NEWSETELEM, NFT_MSG_DELSETELEM = 12, 14
NFPROTO_IPV4 = 2
SET_ELEM_LIST_TABLE, SET_ELEM_LIST_SET, SET_ELEM_LIST_ELEMENTS = 1, 2, 3
LIST_ELEM = 1
SET_ELEM_KEY, SET_ELEM_DATA, SET_ELEM_KEY_END = 1, 2, 10
DATA_VALUE = 1
ACK_TIMEOUT = 5.0  # seconds: the kernel answers a batch of a few elements in microseconds


@dataclass(frozen=True)
class ElementEdit:
    """One element added to or deleted from a set or map, written as render.py writes it."""

    add: bool
    set_name: str
    key: str  # e.g. "4258433073 . 1679667255 . 0-104856" or "10.1.0.5 . 10.1.0.5"
    value: str = ""  # a map's data, e.g. "10.1.0.5 . 8080"; "" for a set or a delete


def _ipv4(text: str) -> bytes:
    return ipaddress.IPv4Address(text).packed


def encode_key(edit: ElementEdit) -> tuple[bytes, bytes | None]:
    """(key, key end) of an element: an end only for the endpoint maps' ranges."""
    fields = edit.key.split(" . ")
    if len(fields) == 2:  # the hairpin set's address pair
        return b"".join(_ipv4(f) for f in fields), None
    hi, lo, span = fields
    first, last = (int(v) for v in span.split("-"))
    return struct.pack("!III", int(hi), int(lo), first), struct.pack("!III", int(hi), int(lo), last)


def encode_value(edit: ElementEdit) -> bytes:
    """An endpoint map's data: the address, then the port in network order padded to 4 bytes."""
    ip, port = edit.value.split(" . ")
    return _ipv4(ip) + struct.pack("!H", int(port)) + b"\0\0"


def _element(edit: ElementEdit) -> bytes:
    key, key_end = encode_key(edit)
    parts = [nested(SET_ELEM_KEY, attr(DATA_VALUE, key))]
    if key_end is not None:
        parts.append(nested(SET_ELEM_KEY_END, attr(DATA_VALUE, key_end)))
    if edit.add and edit.value:
        parts.append(nested(SET_ELEM_DATA, attr(DATA_VALUE, encode_value(edit))))
    return nested(LIST_ELEM, *parts)


def _nfgen(res_id: int = 0) -> bytes:
    return struct.pack("=BBH", NFPROTO_IPV4, 0, socket.htons(res_id))


def batch(table: str, edits: Sequence[ElementEdit], next_seq: Callable[[], int]) -> tuple[bytes, list[int]]:
    """One transaction: batch begin, a message per run of same-kind edits to one set, batch end.
    Returns the bytes and the sequence numbers whose acknowledgements to wait for. Pure but for
    `next_seq`."""
    runs: list[list[ElementEdit]] = []
    for edit in edits:
        if runs and (runs[-1][0].add, runs[-1][0].set_name) == (edit.add, edit.set_name):
            runs[-1].append(edit)
        else:
            runs.append([edit])
    out = [nlmsg(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, next_seq(), _nfgen(NFNL_SUBSYS_NFTABLES))]
    acked = []
    for run in runs:
        seq = next_seq()
        kind = NFT_MSG_NEWSETELEM if run[0].add else NFT_MSG_DELSETELEM
        flags = NLM_F_REQUEST | NLM_F_ACK | (NLM_F_CREATE if run[0].add else 0)
        body = _nfgen() + b"".join((
            attr(SET_ELEM_LIST_TABLE, table.encode() + b"\0"),
            attr(SET_ELEM_LIST_SET, run[0].set_name.encode() + b"\0"),
            nested(SET_ELEM_LIST_ELEMENTS, *(_element(e) for e in run)),
        ))  # fmt: skip
        out.append(nlmsg((NFNL_SUBSYS_NFTABLES << 8) | kind, flags, seq, body))
        acked.append(seq)
    out.append(nlmsg(NFNL_MSG_BATCH_END, NLM_F_REQUEST, next_seq(), _nfgen(NFNL_SUBSYS_NFTABLES)))
    return b"".join(out), acked


class NetlinkElements:
    """Element batches over a raw nfnetlink socket (netproxy.netlink.RawNetlink: it stays in the network
    namespace it was created in)."""

    def __init__(self, table: str) -> None:
        self.table = table
        self._link = RawNetlink(NETLINK_NETFILTER)

    def close(self) -> None:
        self._link.close()

    def apply(self, edits: Sequence[ElementEdit]) -> None:
        """Every edit or none; raises ApplyError with the kernel's errno when it refuses the batch."""
        if not edits:
            return
        data, acked = batch(self.table, edits, self._link.next_seq)
        self._link.sendall(data)
        waiting, failure = set(acked), 0
        while waiting:
            # After a refusal the kernel may not answer the rest of the (aborted) batch.
            received = self._link.receive(ACK_TIMEOUT if not failure else 0.05)
            if received is None:
                break
            for seq, code in parse_acks(received):
                waiting.discard(seq)
                failure = failure or code
        if failure or waiting:
            code = failure or errno.ETIMEDOUT
            raise ApplyError("nftables-netlink", code, f"set element batch refused: {errno.errorcode.get(code, code)}")
