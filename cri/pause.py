"""The pause-holder: the process that owns a pod's namespaces and, as pid 1 of a shared pid
namespace, reaps the pod's orphans. Forked by the launcher; execs the tiny static pause binary
(`cri.pause_binary`) when there is one, else stays a Python loop."""

from __future__ import annotations

import json
import os
import signal
import socket
from typing import Any

from cri import linux


def _hold() -> None:
    """The Python pause loop (when no compiled pause binary is available)."""

    def reap(*_: object) -> None:
        while True:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    signal.signal(signal.SIGCHLD, reap)
    while True:
        signal.pause()


def run_sandbox_holder(payload: dict[str, Any], ready_fd: int) -> None:
    """In a launcher child: unshare the pod namespaces, then fork the holder (pid 1 of a new pid ns)
    and report its pid. This intermediate process exits; the holder is re-parented, not killed."""
    flags = 0
    flags |= linux.CLONE_NEWNET if payload["new_net"] else 0
    flags |= linux.CLONE_NEWIPC if payload["new_ipc"] else 0
    flags |= linux.CLONE_NEWUTS if payload["new_uts"] else 0
    flags |= linux.CLONE_NEWPID if payload["new_pid"] else 0
    if flags:
        linux.unshare(flags)
    if payload["new_uts"] and payload["hostname"]:
        socket.sethostname(payload["hostname"])
    if payload["new_net"]:
        linux.set_loopback_up()
    # Namespaced sysctls land in the namespaces this process now owns (/proc/sys/net follows the netns).
    for key, value in payload.get("sysctls", {}).items():
        with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
            f.write(value)
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(err_r)
            os.close(ready_fd)
            for path in payload["cgroup_procs"]:
                with open(path, "w") as f:
                    f.write("0")
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            binary = payload.get("pause_binary") or ""
            if binary:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                os.execv(binary, [binary])
            os.close(err_w)
            _hold()
        except BaseException as err:
            os.write(err_w, str(err).encode()[:4096])
        os._exit(127)
    os.close(err_w)
    failure = b""
    while chunk := os.read(err_r, 4096):
        failure += chunk
    if failure:
        raise RuntimeError(f"pause holder: {failure.decode(errors='replace')}")
    os.write(ready_fd, json.dumps({"ok": True, "pid": pid, "start_time": linux.process_start_time(pid)}).encode())
    os.close(ready_fd)
    os._exit(0)
