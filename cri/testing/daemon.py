"""Run `tinykube cri` as a subprocess for tests (any component's), on temp dirs under tmp_path.

    with start_cri(tmp_path) as cri:
        channel = grpc.insecure_channel(f"unix:{cri.socket}")

Flags are passed through as `--flag-name value` (`cni_conf_dir="…"` → `--cni-conf-dir …`; True → bare
flag; a list → the flag repeated). Pods and containers the test leaves behind survive `stop()` like
they survive a daemon restart; tests remove them (or their cgroup parent) themselves.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

READY_TIMEOUT = 30.0


class CriHandle:
    def __init__(self, proc: subprocess.Popen[bytes], socket: str, root: str, log_file: str) -> None:
        self.proc = proc
        self.socket = socket
        self.root = root
        self.log_file = log_file

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL the daemon only (its launcher follows; pods and containers stay)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log(self) -> str:
        return Path(self.log_file).read_text(errors="replace")

    def __enter__(self) -> CriHandle:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def _flags(flags: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key, value in flags.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            out.append(flag)
        elif value is False or value is None:
            continue
        elif isinstance(value, list | tuple):
            for item in value:
                out += [flag, str(item)]
        else:
            out += [flag, str(value)]
    return out


def start_cri(tmp_path: Path | str, *, netns: str = "", **flags: Any) -> CriHandle:
    """Start the daemon with socket/root/logs/CNI dirs under tmp_path unless given; wait until it serves.

    `netns` (a path like /run/netns/x) runs the daemon in that network namespace through nsenter,
    so CNI's bridges and routes land there; only the network namespace changes (not /sys).
    """
    base = Path(tmp_path) / "cri"
    base.mkdir(parents=True, exist_ok=True)
    defaults: dict[str, Any] = {
        "socket": str(base / "cri.sock"),
        "root": str(base / "root"),
        "log_root": str(base / "pods"),
        "cni_conf_dir": str(base / "net.d"),
    }
    merged = {**defaults, **flags}
    os.makedirs(merged["cni_conf_dir"], exist_ok=True)
    log_file = str(base / f"daemon-{int(time.time() * 1000)}.log")
    argv = [sys.executable, "-m", "cri", *_flags(merged)]
    if netns:
        argv = ["nsenter", f"--net={netns}", "--", *argv]
    with open(log_file, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    handle = CriHandle(proc, merged["socket"], merged["root"], log_file)
    deadline = time.monotonic() + READY_TIMEOUT
    while not _serving(handle.socket):
        if proc.poll() is not None:
            raise RuntimeError(f"tinykube cri exited with {proc.returncode}:\n{handle.log()}")
        if time.monotonic() > deadline:
            handle.kill()
            raise TimeoutError(f"tinykube cri did not serve within {READY_TIMEOUT}s:\n{handle.log()}")
        time.sleep(0.02)
    return handle


def _serving(socket_path: str) -> bool:
    import socket

    if not os.path.exists(socket_path):
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(socket_path)
        except OSError:
            return False
    return True
