"""Process supervision for the netns lab: start detached daemons inside a lab cgroup, record them by
(pid, start time), and stop exactly those.

A pid alone can be reused after its process dies; the kernel's start time of the process
(/proc/PID/stat field 22, clock ticks since boot) makes the pair unique for the life of the machine,
so `lab down` never signals a process the lab did not start.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass

from tinykube.lab.netns_errors import StartError


@dataclass(frozen=True)
class ProcRecord:
    """One process the lab started: who it is for (`owner`: a node name or "controlplane"), its role."""

    owner: str
    role: str
    pid: int
    start_time: int
    log: str


def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time) of pid, or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its closing ')'.
    fields = data[data.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def start_time(pid: int) -> int | None:
    st = _stat(pid)
    return None if st is None else st[1]


def is_alive(rec: ProcRecord) -> bool:
    """True while the very process recorded runs (a zombie or a reused pid counts as gone)."""
    st = _stat(rec.pid)
    return st is not None and st[1] == rec.start_time and st[0] not in ("Z", "X")


def _reap(pid: int) -> None:
    # Processes started by this very process (tests call the lab in-process) stay zombies until waited.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


@dataclass(frozen=True)
class Spawned:
    pid: int
    stdout: int | None  # read end of the child's stdout, when a pipe was asked for


def wrap(argv: Sequence[str], cgroup_procs: Sequence[str]) -> list[str]:
    """argv behind a shell that leaves the caller's cwd and joins the cgroups, then execs argv:
    the pid stays the same, so everything argv forks is born inside the cgroups."""
    joins = "".join(f"echo $$ >{shlex.quote(p)}; " for p in cgroup_procs)
    return ["sh", "-c", f'cd / && {joins}exec "$@"', "sh", *argv]


def spawn(
    argv: Sequence[str],
    *,
    log: str,
    cgroup_procs: Sequence[str] = (),
    pass_fds: Sequence[int] = (),
    stdout_pipe: bool = False,
) -> Spawned:
    """Start argv in its own session (it outlives `lab up`) with stdin from /dev/null and output
    appended to `log`. posix_spawn rather than subprocess: no preexec hook in a possibly threaded
    caller, and no Popen object warning about a daemon that is meant to outlive it."""
    full = wrap(argv, cgroup_procs)
    log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    read_end, write_end = os.pipe() if stdout_pipe else (None, None)
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_DUP2, log_fd if write_end is None else write_end, 1),
        (os.POSIX_SPAWN_DUP2, log_fd, 2),
    ]
    for fd in pass_fds:
        os.set_inheritable(fd, True)
    try:
        pid = os.posix_spawnp(full[0], full, dict(os.environ), file_actions=actions, setsid=True)
    except BaseException:
        if read_end is not None:
            os.close(read_end)
        raise
    finally:
        os.close(log_fd)
        if write_end is not None:
            os.close(write_end)
    return Spawned(pid, read_end)


def record(spawned: Spawned, *, owner: str, role: str, log: str) -> ProcRecord:
    started = start_time(spawned.pid)
    if started is None:
        raise StartError(f"{role} of {owner} exited at once (see {log})")
    return ProcRecord(owner=owner, role=role, pid=spawned.pid, start_time=started, log=log)


def signal_all(records: Sequence[ProcRecord], sig: signal.Signals) -> None:
    for rec in records:
        if is_alive(rec):
            with contextlib.suppress(ProcessLookupError):
                os.kill(rec.pid, sig)


def wait_gone(records: Sequence[ProcRecord], timeout: float) -> list[ProcRecord]:
    """Wait (bounded) until none of records runs; returns those still running."""
    deadline = time.monotonic() + timeout
    while True:
        for rec in records:
            _reap(rec.pid)
        left = [r for r in records if is_alive(r)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.02)


def stop(records: Sequence[ProcRecord], *, grace: float = 5.0) -> None:
    """SIGTERM, up to `grace` seconds to exit, then SIGKILL whatever is left."""
    signal_all(records, signal.SIGTERM)
    left = wait_gone(records, grace)
    signal_all(left, signal.SIGKILL)
    wait_gone(left, 5.0)


def kill_pids(pids: Sequence[int]) -> None:
    """SIGKILL pids found inside lab-owned cgroups or namespaces (so started by the lab's daemons)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _reap(pid)
