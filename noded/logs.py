"""Container logs in the CRI log format (`<RFC3339Nano> <stream> <P|F> <content>` per line, as the
runtime writes them under `/var/log/pods/<ns>_<pod>_<uid>/<container>/<attempt>.log`): parsing, tail,
and which file is the current or previous instance."""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass

from cri import logs as cri_logs

_ATTEMPT = re.compile(r"^(\d+)\.log$")


@dataclass(frozen=True)
class LogLine:
    timestamp: str
    stream: str
    partial: bool
    content: bytes


def parse_line(raw: bytes) -> LogLine | None:
    """One CRI log line; None for a line that is not in the format (the format itself is cri's)."""
    try:
        return LogLine(*cri_logs.parse_line(raw))
    except ValueError:
        return None


def render(line: LogLine, *, timestamps: bool) -> bytes:
    """The user-visible bytes: a full line gets its newline back, a partial one does not."""
    prefix = f"{line.timestamp} ".encode() if timestamps else b""
    return prefix + line.content + (b"" if line.partial else b"\n")


def tail(lines: list[bytes], n: int | None) -> list[bytes]:
    return lines if n is None or n < 0 else lines[len(lines) - n :] if n else []


def container_log_files(log_root: str, namespace: str, pod: str, container: str) -> list[str]:
    """The container's log files, oldest attempt first (the newest pod uid's directory wins)."""
    dirs = sorted(glob.glob(os.path.join(log_root, f"{namespace}_{pod}_*")), key=os.path.getmtime)
    if not dirs:
        return []
    cdir = os.path.join(dirs[-1], container)
    try:
        names = os.listdir(cdir)
    except FileNotFoundError:
        return []
    attempts = sorted((int(m.group(1)), n) for n in names if (m := _ATTEMPT.match(n)))
    return [os.path.join(cdir, n) for _, n in attempts]


def read_log(path: str, *, tail_lines: int | None, timestamps: bool) -> tuple[bytes, int]:
    """The rendered contents (last `tail_lines` lines) and the offset reading stopped at."""
    with open(path, "rb") as f:
        data = f.read()
    end = data.rfind(b"\n") + 1  # a half-written last line is read on the next poll
    raw = data[:end].split(b"\n")[:-1] if end else []
    out = [render(p, timestamps=timestamps) for r in tail(raw, tail_lines) if (p := parse_line(r))]
    return b"".join(out), end
