"""Per-container monitor (a forked launcher child, like conmon): starts the container process, pumps
its stdout/stderr into the CRI log file, and records its exit in `exit.json` — so exits are recorded
even while the daemon is down, and the container never depends on the daemon staying alive."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import signal
import socket
import struct
import termios
import time
import traceback
from typing import Any

from cri import init, linux, logs
from cri.atomic import write_json
from cri.types import ContainerLaunch, ExecLaunch

RUN_FILE = "run.json"
EXIT_FILE = "exit.json"
_SIGKILL_EXIT = 128 + signal.SIGKILL


def exit_code(status: int) -> int:
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def _enter_pid_namespace(mode: str) -> None:
    """setns/unshare a pid namespace here so that the next fork lands in it as the container."""
    if mode == "new":
        linux.unshare(linux.CLONE_NEWPID)
    elif mode:
        linux.setns(mode, linux.CLONE_NEWPID)


def _fork_child(pid_ns: str, start: Any, *, stdio: tuple[int, int, int]) -> tuple[int, int]:
    """Fork the payload; returns (pid, read end of its error pipe). The pipe is close-on-exec, so EOF
    without data means the exec succeeded."""
    _enter_pid_namespace(pid_ns)
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(err_r)
            for target, fd in enumerate(stdio):
                os.dup2(fd, target)
            start()
        except BaseException as err:  # report whatever stopped us before exec
            msg = str(err) or type(err).__name__
            if not isinstance(err, OSError | ValueError):
                msg += "\n" + traceback.format_exc(limit=3)
            os.write(err_w, msg.encode()[:4096])
        os._exit(127)
    os.close(err_w)
    return pid, err_r


def _receive_terminal(channel: socket.socket) -> int:
    """The pty master the container sends (or -1 if it failed before: its error pipe says why)."""
    with channel:
        _, fds, _, _ = socket.recv_fds(channel, 16, 1)
    return fds[0] if fds else -1


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def _oom_kills(path: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
    except (OSError, ValueError):
        pass
    return 0


class _LogPump:
    def __init__(self, path: str) -> None:
        self.path = path
        self.file = open(path, "ab", buffering=0)  # noqa: SIM115 (reopened on SIGUSR1)
        self.reopen = False

    def write(self, records: list[bytes]) -> None:
        if self.reopen:
            self.reopen = False
            self.file.close()
            self.file = open(self.path, "ab", buffering=0)  # noqa: SIM115
        if records:
            self.file.write(b"".join(records))


def attach_address(container_id: str) -> str:
    """The abstract unix socket (in the daemon's network namespace) a container's monitor serves
    attach on; abstract, because a path under a deep state dir can exceed sun_path's 108 bytes."""
    return f"\0tinykube-attach-{container_id}"


class _Attach:
    """Attached clients: SOCK_SEQPACKET connections, one frame per message — a channel byte, then data.
    We send 1 stdout / 2 stderr; clients send 0 stdin, 4 resize (JSON Width/Height), 255+0 close stdin."""

    def __init__(self, container_id: str, *, stdin: int, tty: int, stdin_once: bool) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.listener.bind(attach_address(container_id))
        self.listener.listen(8)
        self.clients: dict[int, socket.socket] = {}
        self.stdin = stdin
        self.tty = tty
        self.stdin_once = stdin_once

    def fds(self) -> list[int]:
        return [self.listener.fileno(), *self.clients]

    def handle(self, fd: int) -> None:
        if fd == self.listener.fileno():
            conn, _ = self.listener.accept()
            conn.settimeout(1.0)
            self.clients[conn.fileno()] = conn
            return
        conn = self.clients[fd]
        try:
            frame = conn.recv(65536)
        except OSError:
            frame = b""
        if not frame:
            self._drop(fd)
            if self.stdin_once:
                self._close_stdin()
            return
        channel, data = frame[0], frame[1:]
        if channel == 0 and self.stdin >= 0:
            with contextlib.suppress(OSError):
                os.write(self.stdin, data)
        elif channel == 4 and self.tty >= 0:
            with contextlib.suppress(ValueError, OSError):
                size = json.loads(data)
                winsize = struct.pack("HHHH", int(size.get("Height", 0)), int(size.get("Width", 0)), 0, 0)
                fcntl.ioctl(self.tty, termios.TIOCSWINSZ, winsize)
        elif channel == 255 and data[:1] == b"\0" and self.tty < 0:
            self._close_stdin()

    def broadcast(self, channel: int, data: bytes) -> None:
        for fd, conn in list(self.clients.items()):
            try:
                conn.sendall(bytes([channel]) + data)
            except OSError:
                self._drop(fd)

    def _drop(self, fd: int) -> None:
        conn = self.clients.pop(fd, None)
        if conn is not None:
            conn.close()

    def _close_stdin(self) -> None:
        if self.stdin >= 0 and self.stdin != self.tty:
            os.close(self.stdin)
            self.stdin = -1

    def close(self) -> None:
        for fd in list(self.clients):
            self._drop(fd)
        self.listener.close()


def run_container_monitor(spec: ContainerLaunch, ready_fd: int) -> None:
    """The monitor's whole life; ends with os._exit. Reports {"pid"} or {"error"} on ready_fd."""
    try:
        os.makedirs(os.path.dirname(spec.log_path), exist_ok=True)
        pump = _LogPump(spec.log_path)
        stdin_w = terminal = -1
        streams: dict[int, logs.LineSplitter] = {}
        if spec.tty:
            # The container opens its pty on its own devpts and sends us the master (init.take_terminal).
            mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            child_ends = [theirs.detach()]
            stdio = (child_ends[0],) * 3
        else:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            in_r, stdin_w = os.pipe() if spec.stdin else (os.open(os.devnull, os.O_RDONLY), -1)
            child_ends = [in_r, out_w, err_w]
            stdio = (in_r, out_w, err_w)
            streams = {out_r: logs.LineSplitter("stdout"), err_r: logs.LineSplitter("stderr")}
        oom_before = _oom_kills(spec.oom_file)
        pid, errpipe = _fork_child(spec.namespaces.get("pid", ""), lambda: init.start_container(spec), stdio=stdio)
        for fd in child_ends:
            os.close(fd)
        if spec.tty:
            stdin_w = terminal = _receive_terminal(mine)
            streams = {terminal: logs.LineSplitter("stdout")} if terminal >= 0 else {}
        failure = _read_all(errpipe)
        if failure:
            os.waitpid(pid, 0)
            raise RuntimeError(failure.decode(errors="replace"))
        attach = _Attach(spec.id, stdin=stdin_w, tty=terminal, stdin_once=spec.stdin_once)
        started = time.time_ns()
        write_json(
            os.path.join(spec.state_dir, RUN_FILE),
            {
                "pid": pid,
                "start_time": linux.process_start_time(pid),
                "monitor_pid": os.getpid(),
                "started_at": started,
            },
        )
        os.write(ready_fd, json.dumps({"ok": True, "pid": pid, "started_at": started}).encode())
        os.close(ready_fd)
    except BaseException as err:
        os.write(ready_fd, json.dumps({"ok": False, "error": str(err)}).encode())
        os._exit(1)
    signal.signal(signal.SIGUSR1, lambda *_: setattr(pump, "reopen", True))
    status = _pump_until_exit(pid, streams, pump, attach)
    attach.close()
    code = exit_code(status)
    oom = code == _SIGKILL_EXIT and _oom_kills(spec.oom_file) > oom_before
    reason = "OOMKilled" if oom else ("Completed" if code == 0 else "Error")
    write_json(
        os.path.join(spec.state_dir, EXIT_FILE), {"exit_code": code, "finished_at": time.time_ns(), "reason": reason}
    )
    os._exit(0)


def _pump_until_exit(pid: int, streams: dict[int, logs.LineSplitter], pump: _LogPump, attach: _Attach) -> int:
    """Copy output (to the log and to attached clients) until the process exits; then drain what is
    buffered (a daemonized grandchild holding the pipe open must not keep the container 'running')."""
    pidfd = os.pidfd_open(pid)
    open_fds = set(streams)
    exited = False
    while not exited:
        try:
            ready, _, _ = select.select([*open_fds, *attach.fds(), pidfd], [], [])
        except InterruptedError:
            continue
        exited = pidfd in ready
        for fd in ready:
            if fd in open_fds:
                _copy(fd, streams, open_fds, pump, attach)
            elif fd != pidfd:
                attach.handle(fd)
    for fd in list(open_fds):
        os.set_blocking(fd, False)
        while fd in open_fds:
            try:
                _copy(fd, streams, open_fds, pump, attach)
            except BlockingIOError:
                break
    for splitter in streams.values():
        pump.write(splitter.flush())
    _, status = os.waitpid(pid, 0)
    return status


def _copy(fd: int, streams: dict[int, logs.LineSplitter], open_fds: set[int], pump: _LogPump, attach: _Attach) -> None:
    try:
        data = os.read(fd, 65536)
    except BlockingIOError:
        raise
    except OSError:  # EIO: a pty whose other side is gone
        data = b""
    if not data:
        open_fds.discard(fd)
        return
    splitter = streams[fd]
    pump.write(splitter.feed(data))
    attach.broadcast(1 if splitter.stream == "stdout" else 2, data)


def run_exec_monitor(spec: ExecLaunch, stdin_fd: int, stdout_fd: int, stderr_fd: int, status_fd: int) -> None:
    """Exec: start the command in the container, write `{"pid"}` then `{"exit_code"}` lines."""
    try:
        pid, errpipe = _fork_child(
            f"/proc/{spec.container_pid}/ns/pid", lambda: init.start_exec(spec), stdio=(stdin_fd, stdout_fd, stderr_fd)
        )
        for fd in (stdin_fd, stdout_fd, stderr_fd):
            os.close(fd)
        failure = _read_all(errpipe)
        if failure:
            os.waitpid(pid, 0)
            raise RuntimeError(failure.decode(errors="replace"))
        os.write(status_fd, json.dumps({"pid": pid}).encode() + b"\n")
        _, status = os.waitpid(pid, 0)
        os.write(status_fd, json.dumps({"exit_code": exit_code(status)}).encode() + b"\n")
    except BaseException as err:
        os.write(status_fd, json.dumps({"error": str(err)}).encode() + b"\n")
    os._exit(0)
