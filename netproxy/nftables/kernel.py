"""The `nft` tool, run as a process: the thin, root-only part of the nftables backend."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Sequence

from netproxy.errors import ApplyError

TIMEOUT = 300.0  # a full sync at 10k services takes ~12 s; more means the tool hangs


class NftTool:
    def __init__(self, prefix: Sequence[str] = ()) -> None:
        self._prefix = list(prefix)  # e.g. `ip netns exec NODE`

    def apply(self, chunks: str | Iterable[str]) -> None:
        """One atomic transaction: every command of the text or none of them. Chunks are written as
        they come, so `nft` parses while the caller renders the rest."""
        argv = [*self._prefix, "nft", "-f", "-"]
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
            )
        except OSError as err:
            raise ApplyError("nft", -1, str(err)) from err
        assert proc.stdin is not None
        try:
            for chunk in [chunks] if isinstance(chunks, str) else chunks:
                proc.stdin.write(chunk)
        except BrokenPipeError:
            pass  # nft stopped reading: its exit status and stderr say why
        try:
            _, stderr = proc.communicate(timeout=TIMEOUT)  # flushes and closes stdin
        except subprocess.TimeoutExpired as err:
            proc.kill()
            proc.communicate()
            raise ApplyError("nft", -1, f"no answer after {TIMEOUT:.0f} s") from err
        if proc.returncode != 0:
            raise ApplyError("nft", proc.returncode, stderr)
