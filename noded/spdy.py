"""SPDY/3.1 framing (SPDY Protocol draft 3, §2.2–2.6, plus 3.1's session-level flow control): the byte
layer under `kubectl port-forward`, which since v1.31 carries it inside WebSocket binary messages
(`SPDY/3.1+portforward.k8s.io`). Pure: `FrameDecoder.feed` turns any slicing of the byte stream into
frames, `FrameEncoder.encode` turns a frame into bytes. Both hold the one zlib context per direction that
the spec makes header blocks share for the whole session (§2.6.10), so each session needs its own pair.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum

from noded.errors import NodedError

VERSION = 3
DEFAULT_WINDOW = 64 * 1024  # §2.6.8: initial stream window; 3.1 gives the session the same
MAX_LENGTH = (1 << 24) - 1  # 24-bit length field
FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02  # SYN_STREAM only
FLAG_CLEAR_SETTINGS = 0x01  # SETTINGS only
SETTINGS_INITIAL_WINDOW_SIZE = 7
_STREAM_MASK = 0x7FFFFFFF


class ControlType(IntEnum):
    """Control frame types (§2.6); NOOP (5) is gone in draft 3, CREDENTIAL (10) is not used by anyone."""

    SYN_STREAM = 1
    SYN_REPLY = 2
    RST_STREAM = 3
    SETTINGS = 4
    PING = 6
    GOAWAY = 7
    HEADERS = 8
    WINDOW_UPDATE = 9


class RstStatus(IntEnum):
    """RST_STREAM status codes (§2.6.3)."""

    PROTOCOL_ERROR = 1
    INVALID_STREAM = 2
    REFUSED_STREAM = 3
    UNSUPPORTED_VERSION = 4
    CANCEL = 5
    INTERNAL_ERROR = 6
    FLOW_CONTROL_ERROR = 7
    STREAM_IN_USE = 8
    STREAM_ALREADY_CLOSED = 9
    FRAME_TOO_LARGE = 11


class GoAwayStatus(IntEnum):
    """GOAWAY status codes (§2.6.6)."""

    OK = 0
    PROTOCOL_ERROR = 1
    INTERNAL_ERROR = 2


class SpdyError(NodedError):
    """The peer sent bytes that are not SPDY/3 (bad version, truncated block, undecodable headers)."""


# Header names and values as SPDY carries them: lowercase names; a value holding several values joins
# them with NUL (§2.6.10), which we keep as is since port-forward headers are single-valued.
Headers = Mapping[str, str]


@dataclass(frozen=True)
class DataFrame:
    stream_id: int
    data: bytes = b""
    fin: bool = False


@dataclass(frozen=True)
class SynStream:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    associated_to: int = 0
    priority: int = 0
    fin: bool = False
    unidirectional: bool = False


@dataclass(frozen=True)
class SynReply:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    fin: bool = False


@dataclass(frozen=True)
class RstStream:
    stream_id: int
    status: int


@dataclass(frozen=True)
class Setting:
    id: int
    value: int
    flags: int = 0


@dataclass(frozen=True)
class Settings:
    entries: tuple[Setting, ...] = ()
    clear: bool = False


@dataclass(frozen=True)
class Ping:
    ping_id: int


@dataclass(frozen=True)
class GoAway:
    last_good_stream_id: int
    status: int = GoAwayStatus.OK


@dataclass(frozen=True)
class HeadersFrame:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    fin: bool = False


@dataclass(frozen=True)
class WindowUpdate:
    """Stream 0 is the whole session (SPDY/3.1 §2.6.8 as amended)."""

    stream_id: int
    delta: int


Frame = DataFrame | SynStream | SynReply | RstStream | Settings | Ping | GoAway | HeadersFrame | WindowUpdate


def _dictionary() -> bytes:
    """The zlib dictionary for header blocks, fixed by SPDY draft 3 §2.6.10.1: the listed names and
    values each behind a 32-bit big-endian length, then one run of plain text (1423 bytes in all)."""
    names = (
        "options head post put delete trace accept accept-charset accept-encoding accept-language accept-ranges "
        "age allow authorization cache-control connection content-base content-encoding content-language "
        "content-length content-location content-md5 content-range content-type date etag expect expires from "
        "host if-match if-modified-since if-none-match if-range if-unmodified-since last-modified location "
        "max-forwards pragma proxy-authenticate proxy-authorization range referer retry-after server te trailer "
        "transfer-encoding upgrade user-agent vary via warning www-authenticate method get status"
    )
    words = [*names.split(), "200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"]
    tail = (
        "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
        "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
        "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
        "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
        "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
        "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
    )
    return b"".join(struct.pack(">I", len(w)) + w.encode() for w in words) + tail.encode()


HEADER_DICTIONARY = _dictionary()


def _pack_headers(headers: Headers) -> bytes:
    """§2.6.10: a 32-bit pair count, then each name and value behind a 32-bit length."""
    parts = [struct.pack(">I", len(headers))]
    for name, value in headers.items():
        for item in (name.lower().encode(), value.encode()):
            parts.append(struct.pack(">I", len(item)) + item)
    return b"".join(parts)


def _unpack_headers(block: bytes) -> dict[str, str]:
    def take(offset: int) -> tuple[bytes, int]:
        if offset + 4 > len(block):
            raise SpdyError("truncated header block")
        (size,) = struct.unpack_from(">I", block, offset)
        end = offset + 4 + size
        if end > len(block):
            raise SpdyError("truncated header block")
        return block[offset + 4 : end], end

    count_raw, offset = block[:4], 4
    if len(count_raw) < 4:
        raise SpdyError("truncated header block")
    (count,) = struct.unpack(">I", count_raw)
    headers: dict[str, str] = {}
    for _ in range(count):
        name, offset = take(offset)
        value, offset = take(offset)
        if not name:
            raise SpdyError("empty header name")
        headers[name.decode("latin-1")] = value.decode("latin-1")
    return headers


def _control(kind: ControlType, flags: int, payload: bytes) -> bytes:
    if len(payload) > MAX_LENGTH:
        raise SpdyError(f"{kind.name} payload of {len(payload)} bytes does not fit a frame")
    return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload


class FrameEncoder:
    """Frames → bytes for one direction of one session (its zlib context spans the session)."""

    def __init__(self) -> None:
        self._zlib = zlib.compressobj(zlib.Z_BEST_COMPRESSION, zlib.DEFLATED, 15, zdict=HEADER_DICTIONARY)

    def _block(self, headers: Headers) -> bytes:
        # A sync flush ends every block on a byte boundary so the peer can decode it alone (§2.6.10.1).
        return self._zlib.compress(_pack_headers(headers)) + self._zlib.flush(zlib.Z_SYNC_FLUSH)

    def encode(self, frame: Frame) -> bytes:
        fin = FLAG_FIN if getattr(frame, "fin", False) else 0
        match frame:
            case DataFrame(stream_id=sid, data=data):
                if len(data) > MAX_LENGTH:
                    raise SpdyError(f"DATA of {len(data)} bytes does not fit a frame")
                return struct.pack(">II", sid & _STREAM_MASK, (fin << 24) | len(data)) + data
            case SynStream():
                flags = fin | (FLAG_UNIDIRECTIONAL if frame.unidirectional else 0)
                head = struct.pack(">IIBB", frame.stream_id, frame.associated_to, (frame.priority & 7) << 5, 0)
                return _control(ControlType.SYN_STREAM, flags, head + self._block(frame.headers))
            case SynReply(stream_id=sid, headers=headers):
                return _control(ControlType.SYN_REPLY, fin, struct.pack(">I", sid) + self._block(headers))
            case HeadersFrame(stream_id=sid, headers=headers):
                return _control(ControlType.HEADERS, fin, struct.pack(">I", sid) + self._block(headers))
            case RstStream(stream_id=sid, status=status):
                return _control(ControlType.RST_STREAM, 0, struct.pack(">II", sid, status))
            case Settings(entries=entries, clear=clear):
                body = struct.pack(">I", len(entries)) + b"".join(
                    struct.pack(">II", (e.flags << 24) | e.id, e.value) for e in entries
                )
                return _control(ControlType.SETTINGS, FLAG_CLEAR_SETTINGS if clear else 0, body)
            case Ping(ping_id=ping_id):
                return _control(ControlType.PING, 0, struct.pack(">I", ping_id))
            case GoAway(last_good_stream_id=last, status=status):
                return _control(ControlType.GOAWAY, 0, struct.pack(">II", last, status))
            case WindowUpdate(stream_id=sid, delta=delta):
                return _control(ControlType.WINDOW_UPDATE, 0, struct.pack(">II", sid, delta))
        raise TypeError(f"not a SPDY frame: {frame!r}")


class FrameDecoder:
    """Bytes → frames for one direction of one session. `feed` accepts the stream cut anywhere (a
    WebSocket message may hold half a frame or several) and returns every frame completed so far.
    Control frames of unknown type are skipped, as §2.2.1 asks."""

    def __init__(self) -> None:
        self._zlib = zlib.decompressobj(zdict=HEADER_DICTIONARY)
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames: list[Frame] = []
        while len(self._buffer) >= 8:
            first, second = struct.unpack_from(">II", self._buffer)
            length = second & 0xFFFFFF
            if len(self._buffer) < 8 + length:
                break
            payload = bytes(self._buffer[8 : 8 + length])
            del self._buffer[: 8 + length]
            flags = second >> 24
            if first & 0x80000000:
                frame = self._control((first >> 16) & 0x7FFF, first & 0xFFFF, flags, payload)
                if frame is not None:
                    frames.append(frame)
            else:
                frames.append(DataFrame(first & _STREAM_MASK, payload, bool(flags & FLAG_FIN)))
        return frames

    def _headers(self, block: bytes) -> dict[str, str]:
        try:
            raw = self._zlib.decompress(block)
        except zlib.error as err:
            raise SpdyError(f"undecodable header block: {err}") from err
        return _unpack_headers(raw)

    def _control(self, version: int, kind: int, flags: int, payload: bytes) -> Frame | None:
        if version != VERSION:
            raise SpdyError(f"SPDY version {version} is not served (only {VERSION})")
        fin = bool(flags & FLAG_FIN)
        try:
            match kind:
                case ControlType.SYN_STREAM:
                    sid, assoc, prio = struct.unpack_from(">IIB", payload)
                    return SynStream(
                        sid & _STREAM_MASK, self._headers(payload[10:]), associated_to=assoc & _STREAM_MASK,
                        priority=prio >> 5, fin=fin, unidirectional=bool(flags & FLAG_UNIDIRECTIONAL),
                    )  # fmt: skip
                case ControlType.SYN_REPLY:
                    (sid,) = struct.unpack_from(">I", payload)
                    return SynReply(sid & _STREAM_MASK, self._headers(payload[4:]), fin=fin)
                case ControlType.HEADERS:
                    (sid,) = struct.unpack_from(">I", payload)
                    return HeadersFrame(sid & _STREAM_MASK, self._headers(payload[4:]), fin=fin)
                case ControlType.RST_STREAM:
                    sid, status = struct.unpack_from(">II", payload)
                    return RstStream(sid & _STREAM_MASK, status)
                case ControlType.SETTINGS:
                    (count,) = struct.unpack_from(">I", payload)
                    entries = []
                    for i in range(count):
                        head, value = struct.unpack_from(">II", payload, 4 + 8 * i)
                        entries.append(Setting(head & 0xFFFFFF, value, flags=head >> 24))
                    return Settings(tuple(entries), clear=bool(flags & FLAG_CLEAR_SETTINGS))
                case ControlType.PING:
                    (ping_id,) = struct.unpack_from(">I", payload)
                    return Ping(ping_id)
                case ControlType.GOAWAY:
                    # Draft 3 adds the status; tolerate a draft-2-sized frame without it.
                    (last,) = struct.unpack_from(">I", payload)
                    status = struct.unpack_from(">I", payload, 4)[0] if len(payload) >= 8 else GoAwayStatus.OK
                    return GoAway(last & _STREAM_MASK, status)
                case ControlType.WINDOW_UPDATE:
                    sid, delta = struct.unpack_from(">II", payload)
                    return WindowUpdate(sid & _STREAM_MASK, delta & _STREAM_MASK)
        except struct.error as err:
            raise SpdyError(f"control frame type {kind} too short ({len(payload)} bytes)") from err
        return None
