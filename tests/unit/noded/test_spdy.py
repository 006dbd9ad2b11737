"""The SPDY/3.1 codec under `kubectl port-forward`: frames survive a round trip through any slicing of
the byte stream, header blocks share one zlib context per direction (with the spec's dictionary), and
the wire layout matches SPDY draft 3 byte for byte where it is fixed; then kubectl's port-forward
session on top of it, against a fake pod port."""

from __future__ import annotations

import asyncio
import struct
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from noded.spdy import (
    HEADER_DICTIONARY,
    DataFrame,
    Frame,
    FrameDecoder,
    FrameEncoder,
    GoAway,
    HeadersFrame,
    Ping,
    RstStatus,
    RstStream,
    Setting,
    Settings,
    SpdyError,
    SynReply,
    SynStream,
    WindowUpdate,
)
from noded.streaming import PortChunk, PortConnection, SpdyPortForward, wants_spdy

FRAMES: list[Frame] = [
    SynStream(1, {"streamtype": "error", "port": "8080", "requestid": "0"}, priority=3),
    SynStream(3, {"streamtype": "data", "port": "8080", "requestid": "0"}, fin=True, unidirectional=True),
    SynReply(1, {}),
    SynReply(3, {"x": "a\x00b"}, fin=True),
    HeadersFrame(3, {"status": "200"}),
    DataFrame(3, b"hello"),
    DataFrame(3, b"", fin=True),
    RstStream(5, RstStatus.CANCEL),
    Settings((Setting(7, 1 << 20), Setting(4, 100, flags=1)), clear=True),
    Ping(7),
    GoAway(9, 0),
    WindowUpdate(0, 4096),
    WindowUpdate(3, 1),
]


def test_dictionary_is_the_1423_bytes_of_draft_3() -> None:
    assert len(HEADER_DICTIONARY) == 1423
    assert HEADER_DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert HEADER_DICTIONARY.endswith(b"charset=iso-8859-1,utf-,*,enq=0.")


def test_every_frame_type_round_trips_in_one_session() -> None:
    encoder, decoder = FrameEncoder(), FrameDecoder()
    wire = b"".join(encoder.encode(f) for f in FRAMES)
    assert decoder.feed(wire) == FRAMES


@given(st.lists(st.integers(min_value=1, max_value=40), max_size=30))
def test_frames_decode_however_the_stream_is_sliced(cuts: list[int]) -> None:
    encoder = FrameEncoder()
    wire = b"".join(encoder.encode(f) for f in FRAMES)
    decoder, got, pos = FrameDecoder(), list[Frame](), 0
    for size in cuts:
        got += decoder.feed(wire[pos : pos + size])
        pos += size
    got += decoder.feed(wire[pos:])
    assert got == FRAMES


def test_data_frame_layout_is_stream_id_flags_and_24_bit_length() -> None:
    assert FrameEncoder().encode(DataFrame(5, b"abc", fin=True)) == bytes.fromhex("00000005 01000003") + b"abc"


def test_control_frame_layout_carries_version_3_and_type() -> None:
    encoder = FrameEncoder()
    assert encoder.encode(Ping(2)) == bytes.fromhex("80030006 00000004 00000002")
    assert encoder.encode(WindowUpdate(0, 65536)) == bytes.fromhex("80030009 00000008 00000000 00010000")
    assert encoder.encode(RstStream(1, RstStatus.PROTOCOL_ERROR)) == bytes.fromhex(
        "80030003 00000008 00000001 00000001"
    )


def test_header_blocks_are_zlib_with_the_spdy_dictionary_and_one_context_per_session() -> None:
    frame = FrameEncoder().encode(SynReply(1, {"port": "80"}))
    block = frame[12:]
    (dict_id,) = struct.unpack(">I", block[2:6])
    assert dict_id == zlib.adler32(HEADER_DICTIONARY)  # FDICT names the dictionary by its Adler-32
    inflate = zlib.decompressobj(zdict=HEADER_DICTIONARY)
    assert inflate.decompress(block) == struct.pack(">I", 1) + b"\x00\x00\x00\x04port\x00\x00\x00\x0280"
    # The second block continues the same stream: a fresh decompressor cannot read it alone.
    encoder = FrameEncoder()
    encoder.encode(SynReply(1, {"port": "80"}))
    second = encoder.encode(SynReply(3, {"port": "80"}))[12:]
    with pytest.raises(zlib.error):
        zlib.decompressobj(zdict=HEADER_DICTIONARY).decompress(second)


def test_header_names_are_sent_lowercase() -> None:
    decoder = FrameDecoder()
    (frame,) = decoder.feed(FrameEncoder().encode(SynReply(1, {"StreamType": "data"})))
    assert frame == SynReply(1, {"streamtype": "data"})


def test_unknown_control_frames_are_skipped() -> None:
    unknown = bytes.fromhex("8003000a 00000002") + b"zz"
    assert FrameDecoder().feed(unknown + FrameEncoder().encode(Ping(1))) == [Ping(1)]


def test_wrong_version_and_garbage_headers_are_protocol_errors() -> None:
    with pytest.raises(SpdyError, match="version 2"):
        FrameDecoder().feed(bytes.fromhex("80020006 00000004 00000001"))
    with pytest.raises(SpdyError, match="header block"):
        FrameDecoder().feed(bytes.fromhex("80030002 00000008 00000001") + b"junk")
    with pytest.raises(SpdyError, match="too short"):
        FrameDecoder().feed(bytes.fromhex("80030006 00000002 0000"))


def test_partial_frame_waits_for_the_rest() -> None:
    decoder = FrameDecoder()
    wire = FrameEncoder().encode(DataFrame(1, b"x" * 100))
    assert decoder.feed(wire[:50]) == []
    assert decoder.feed(wire[50:]) == [DataFrame(1, b"x" * 100)]


# ---- the port-forward session over SPDY (noded.streaming.SpdyPortForward) with a fake pod port ----


class FakePortConnection:
    """A connection to a pod port that answers every write with `echo:<bytes>` and can be ended."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False
        self._chunks: asyncio.Queue[PortChunk | None] = asyncio.Queue()

    async def write(self, data: bytes) -> None:
        self.written.append(data)
        await self._chunks.put(PortChunk(b"echo:" + data))

    async def read(self) -> PortChunk | None:
        return await self._chunks.get()

    async def close(self) -> None:
        self.closed = True

    def end(self, error: str = "") -> None:
        self._chunks.put_nowait(PortChunk(error.encode(), error=True) if error else None)


class Client:
    """kubectl's side: encodes frames into the session and decodes what the session sends back."""

    def __init__(self, refuse: bool = False) -> None:
        self.conns: dict[int, FakePortConnection] = {}
        self.encoder, self.decoder = FrameEncoder(), FrameDecoder()
        self.received: list[Frame] = []
        self.refuse = refuse
        self.session = SpdyPortForward(self._collect, self._dial)

    async def _collect(self, data: bytes) -> None:
        self.received += self.decoder.feed(data)

    async def _dial(self, port: int) -> PortConnection:
        if self.refuse:
            raise OSError(f"connection refused on {port}")
        conn = FakePortConnection()
        self.conns[port] = conn
        return conn

    async def send(self, *frames: Frame) -> None:
        await self.session.receive(b"".join(self.encoder.encode(f) for f in frames))

    async def open_pair(self, error_id: int, port: int, request_id: str) -> None:
        for sid, kind in ((error_id, "error"), (error_id + 2, "data")):
            await self.send(SynStream(sid, {"streamtype": kind, "port": str(port), "requestid": request_id}))

    async def settle(self) -> list[Frame]:
        for _ in range(20):
            await asyncio.sleep(0)
        frames, self.received = self.received, []
        return frames


async def test_each_stream_is_answered_and_data_reaches_the_pod_port_and_back() -> None:
    client = Client()
    await client.open_pair(1, 8080, "0")
    await client.send(DataFrame(3, b"ping"))
    frames = await client.settle()
    assert frames == [SynReply(1), SynReply(3), DataFrame(3, b"echo:ping")]
    assert client.conns[8080].written == [b"ping"]


async def test_pod_side_end_finishes_both_streams_and_closes_the_connection() -> None:
    client = Client()
    await client.open_pair(1, 80, "7")
    await client.settle()
    client.conns[80].end()
    assert await client.settle() == [DataFrame(3, fin=True), DataFrame(1, fin=True)]
    assert client.conns[80].closed


async def test_client_fin_on_the_data_stream_ends_the_pair() -> None:
    client = Client()
    await client.open_pair(1, 80, "0")
    await client.send(DataFrame(3, b"last", fin=True))
    frames = await client.settle()
    assert frames[-2:] == [DataFrame(3, fin=True), DataFrame(1, fin=True)]
    assert client.conns[80].written == [b"last"]
    assert client.conns[80].closed


async def test_a_port_that_cannot_be_reached_is_reported_on_the_error_stream() -> None:
    client = Client(refuse=True)
    await client.open_pair(1, 81, "0")
    frames = await client.settle()
    assert frames[:2] == [SynReply(1), SynReply(3)]
    assert isinstance(frames[2], DataFrame)
    assert frames[2].stream_id == 1
    assert b"error forwarding port 81" in frames[2].data
    assert b"connection refused" in frames[2].data
    assert frames[3:] == [DataFrame(3, fin=True), DataFrame(1, fin=True)]


async def test_an_error_from_the_runtime_ends_the_pair_with_the_message() -> None:
    client = Client()
    await client.open_pair(1, 80, "0")
    await client.settle()
    client.conns[80].end(error="no such port")
    frames = await client.settle()
    assert frames[0] == DataFrame(1, b"error forwarding port 80 to pod: no such port")
    assert frames[1:] == [DataFrame(3, fin=True), DataFrame(1, fin=True)]


async def test_concurrent_requests_use_separate_connections_by_request_id() -> None:
    client = Client()
    await client.open_pair(1, 80, "0")
    await client.open_pair(5, 443, "1")
    await client.send(DataFrame(7, b"b"), DataFrame(3, b"a"))
    frames = await client.settle()
    assert DataFrame(3, b"echo:a") in frames
    assert DataFrame(7, b"echo:b") in frames
    assert client.conns[80].written == [b"a"]
    assert client.conns[443].written == [b"b"]


async def test_reset_stream_closes_the_pod_connection_without_more_frames() -> None:
    client = Client()
    await client.open_pair(1, 80, "0")
    await client.settle()
    await client.send(RstStream(3, RstStatus.CANCEL))
    assert await client.settle() == []
    assert client.conns[80].closed


async def test_pings_from_the_client_are_echoed() -> None:
    client = Client()
    await client.send(Ping(1), Ping(2))
    assert await client.settle() == [Ping(1)]


async def test_window_is_granted_back_per_stream_and_per_session_after_half_a_window() -> None:
    client = Client()
    await client.open_pair(1, 80, "0")
    chunk = b"x" * 16384
    await client.send(DataFrame(3, chunk))
    assert not [f for f in await client.settle() if isinstance(f, WindowUpdate)]
    await client.send(DataFrame(3, chunk))
    updates = [f for f in await client.settle() if isinstance(f, WindowUpdate)]
    assert sorted(updates, key=lambda f: f.stream_id) == [WindowUpdate(0, 32768), WindowUpdate(3, 32768)]


async def test_bad_headers_are_refused_and_reused_stream_ids_are_protocol_errors() -> None:
    client = Client()
    await client.send(SynStream(1, {"streamtype": "data", "port": "x"}))
    assert await client.settle() == [RstStream(1, RstStatus.PROTOCOL_ERROR)]
    with pytest.raises(SpdyError, match="not a new client stream"):
        await client.send(SynStream(1, {"streamtype": "data", "port": "80"}))


async def test_streams_after_goaway_are_refused() -> None:
    client = Client()
    await client.send(GoAway(0), SynStream(1, {"streamtype": "error", "port": "80"}))
    assert await client.settle() == [RstStream(1, RstStatus.REFUSED_STREAM)]


async def test_closing_the_session_closes_every_pod_connection() -> None:
    client = Client()
    await client.open_pair(1, 80, "0")
    await client.settle()
    await client.session.close()
    assert client.conns[80].closed


def test_kubectl_spdy_offer_is_served_only_when_no_channel_protocol_is_offered() -> None:
    assert wants_spdy(["SPDY/3.1+portforward.k8s.io"])
    assert not wants_spdy(["v4.channel.k8s.io", "SPDY/3.1+portforward.k8s.io"])
    assert not wants_spdy(["v5.channel.k8s.io"])
