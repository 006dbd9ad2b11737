"""Element-only partial syncs: which changes qualify, how they are encoded, and that the backend sends
them to the element writer instead of `nft`."""

from __future__ import annotations

import itertools
import socket
import struct

import pytest

from netproxy.errors import ApplyError
from netproxy.model import DesiredState
from netproxy.netlink import NLA_F_NESTED
from netproxy.nftables.backend import NftablesBackend
from netproxy.nftables.elements import (
    NFNL_MSG_BATCH_BEGIN,
    NFNL_MSG_BATCH_END,
    NFT_MSG_DELSETELEM,
    NFT_MSG_NEWSETELEM,
    ElementEdit,
    batch,
    encode_key,
    encode_value,
)
from netproxy.nftables.render import element_edits
from netproxy.testing import FakeNft, FakeNftElements
from netproxy.testing.objects import endpoint_slice, service
from tests.unit.netproxy.scenario import CFG, state_of

WEB = service("web", "10.96.0.10")
OLD, NEW = (
    state_of([WEB, endpoint_slice("web", ["10.1.0.1", "10.1.0.2"])]),
    state_of([WEB, endpoint_slice("web", ["10.1.0.1", "10.1.0.3"])]),
)


def test_an_endpoint_replaced_is_element_edits_only_deletes_first() -> None:
    edits = element_edits(NEW, OLD, {"default/web"}, CFG)
    assert edits is not None
    assert [e.add for e in edits] == [False, True, True]
    assert [e.set_name for e in edits][1] == "hairpin"
    assert edits[2].value == "10.1.0.3 . 8080"
    assert edits[0].key == edits[2].key  # the second endpoint's range now maps to the new address


@pytest.mark.parametrize(
    "after",
    [
        state_of([WEB]),  # no endpoints left: the verdict maps change
        state_of([WEB, endpoint_slice("web", ["10.1.0.1"]), service("new", "10.96.0.11")]),  # a new chain
        state_of([service("web", "10.96.0.10", sessionAffinity="ClientIP"), endpoint_slice("web", ["10.1.0.1"])]),
    ],
)
def test_changes_beyond_endpoint_elements_go_through_nft(after: DesiredState) -> None:
    assert element_edits(after, OLD, {"default/web", "default/new"}, CFG) is None


def test_keys_and_values_are_packed_as_nft_stores_them() -> None:
    key, end = encode_key(ElementEdit(True, "endpoints-tcp-7", "1 . 2 . 0-524287", "10.1.0.3 . 8080"))
    assert key == struct.pack("!III", 1, 2, 0)
    assert end == struct.pack("!III", 1, 2, 524287)
    assert encode_value(ElementEdit(True, "endpoints-tcp-7", "", "10.1.0.3 . 8080")) == bytes(
        [10, 1, 0, 3, 0x1F, 0x90, 0, 0]
    )
    assert encode_key(ElementEdit(True, "hairpin", "10.1.0.3 . 10.1.0.3")) == (bytes([10, 1, 0, 3] * 2), None)


def _messages(data: bytes) -> list[tuple[int, int, bytes]]:
    out, pos = [], 0
    while pos < len(data):
        length, kind, _flags, seq, _pid = struct.unpack_from("=IHHII", data, pos)
        out.append((kind, seq, data[pos + 16 : pos + length]))
        pos += length
    return out


def test_a_batch_is_one_transaction_with_a_message_per_run_of_edits() -> None:
    edits = element_edits(NEW, OLD, {"default/web"}, CFG)
    assert edits is not None
    data, acked = batch("tinykube", edits, itertools.count(41).__next__)
    msgs = _messages(data)
    kinds = [kind for kind, _, _ in msgs]
    assert kinds == [
        NFNL_MSG_BATCH_BEGIN,
        (10 << 8) | NFT_MSG_DELSETELEM,
        (10 << 8) | NFT_MSG_NEWSETELEM,  # hairpin
        (10 << 8) | NFT_MSG_NEWSETELEM,  # the endpoint map
        NFNL_MSG_BATCH_END,
    ]
    assert acked == [42, 43, 44] == [seq for kind, seq, _ in msgs[1:-1]]
    family, _version, res_id = struct.unpack_from("=BBH", msgs[0][2])
    assert (family, socket.ntohs(res_id)) == (socket.AF_INET, 10)  # NFPROTO_IPV4, the nf_tables subsystem
    attrs = _attrs(msgs[1][2][4:])
    assert [kind for kind, _ in attrs] == [1, 2, 3 | NLA_F_NESTED]  # table, set, the nested element list
    assert attrs[0][1] == b"tinykube\0"
    assert attrs[1][1] == edits[0].set_name.encode() + b"\0"


def _attrs(data: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], 0
    while pos < len(data):
        length, kind = struct.unpack_from("=HH", data, pos)
        out.append((kind, data[pos + 4 : pos + length]))
        pos += (length + 3) & ~3
    return out


def test_backend_sends_element_changes_to_the_writer_and_the_rest_to_nft() -> None:
    nft, writer = FakeNft(), FakeNftElements()
    backend = NftablesBackend(nft, CFG, elements=writer)
    backend.sync(OLD, previous=DesiredState(), changed=None)
    backend.sync(NEW, previous=OLD, changed={"default/web"})
    assert len(nft.applied) == 1
    assert len(writer.batches) == 1
    backend.sync(state_of([WEB]), previous=NEW, changed={"default/web"})
    assert len(nft.applied) == 2
    writer.fail_next = "ENOENT"
    with pytest.raises(ApplyError):
        backend.sync(NEW, previous=OLD, changed={"default/web"})
