"""The CRI container log format: `<RFC3339Nano> <stream> <F|P> <content>` per line (pure).

`F` marks the end of a line the container wrote, `P` a piece of a longer line split because it
exceeded the buffer (kubelet joins P pieces up to the next F).
"""

from __future__ import annotations

import time

MAX_LINE = 16 * 1024


def timestamp(ns: int | None = None) -> str:
    """RFC 3339 with nanoseconds in UTC, e.g. 2026-11-23T13:04:39.123456789Z."""
    ns = time.time_ns() if ns is None else ns
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def format_line(stream: str, content: bytes, *, partial: bool, ns: int | None = None) -> bytes:
    tag = b"P" if partial else b"F"
    return b"%s %s %s %s\n" % (timestamp(ns).encode(), stream.encode(), tag, content)


class LineSplitter:
    """Buffers one stream's bytes and yields CRI log records for complete lines (and for pieces of
    overlong lines); `flush()` at EOF emits a trailing unterminated line as a full one."""

    def __init__(self, stream: str, max_line: int = MAX_LINE) -> None:
        self.stream = stream
        self.max_line = max_line
        self._buf = b""

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while True:
            nl = self._buf.find(b"\n")
            if 0 <= nl <= self.max_line:
                out.append(format_line(self.stream, self._buf[:nl], partial=False))
                self._buf = self._buf[nl + 1 :]
            elif len(self._buf) > self.max_line:
                out.append(format_line(self.stream, self._buf[: self.max_line], partial=True))
                self._buf = self._buf[self.max_line :]
            else:
                return out

    def flush(self) -> list[bytes]:
        if not self._buf:
            return []
        rec = format_line(self.stream, self._buf, partial=False)
        self._buf = b""
        return [rec]


def parse_line(line: bytes) -> tuple[str, str, bool, bytes]:
    """(timestamp, stream, partial, content) of one record; the inverse of `format_line`."""
    ts, stream, tag, content = line.rstrip(b"\n").split(b" ", 3)
    return ts.decode(), stream.decode(), tag == b"P", content
