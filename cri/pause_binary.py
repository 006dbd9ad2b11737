"""The pause holder as a tiny static ELF (`cri.images.pause_elf`, the same program as the pause
image's): exec'ing it after the fork drops the holder's RSS from a forked interpreter's megabytes to
a few kilobytes. x86-64 only; elsewhere pods use the Python holder loop."""

from __future__ import annotations

import hashlib
import os
import platform


def ensure_pause_binary(root: str, *, required: bool = False) -> str:
    """Path of the pause binary under root (written if missing), or "" where it cannot run."""
    if platform.machine() not in ("x86_64", "amd64"):
        if required:
            raise RuntimeError(f"the built-in pause binary is x86-64 only, not {platform.machine()}")
        return ""
    from cri.images.pause_elf import pause_elf

    data = pause_elf()
    target = os.path.join(root, "bin", f"pause-{hashlib.sha256(data).hexdigest()[:12]}")
    if not os.access(target, os.X_OK):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        tmp = f"{target}.tmp.{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
    return target
