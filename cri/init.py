"""Child side: the last steps before exec — cgroup, namespaces, identity, capabilities, seccomp.

Everything here runs in a process forked by the single-threaded launcher (or its monitor), never in
the daemon: setns(2) and unshare(2) change the calling thread, and the daemon's threads are gRPC's.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import termios
from collections.abc import Mapping

from cri import caps, linux, seccomp
from cri.rootfs import enter_rootfs
from cri.types import ContainerLaunch, ExecLaunch, ProcessSpec

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def join_cgroup(procs_files: list[str]) -> None:
    for path in procs_files:
        with open(path, "w") as f:
            f.write("0")


def join_namespaces(paths: Mapping[str, str], kinds: tuple[str, ...]) -> None:
    for kind in kinds:
        path = paths.get(kind, "")
        if path and path != "new":
            linux.setns(path, linux.NS_FLAGS[kind])


def _last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return max(caps.CAPABILITIES.values())


def lookup(executable: str, env: list[str]) -> str:
    """Resolve a command like execvp(3), against the container's PATH (we are inside its root)."""
    if "/" in executable:
        return executable
    path = next((e[5:] for e in env if e.startswith("PATH=")), DEFAULT_PATH)
    for directory in path.split(":"):
        candidate = os.path.join(directory or ".", executable)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(f'executable file "{executable}" not found in $PATH')


def exec_process(proc: ProcessSpec) -> None:
    """Drop to the requested identity and privileges and exec; only returns by raising."""
    program = lookup(proc.args[0], proc.env)
    wanted = caps.to_mask(proc.caps) & linux.capget_permitted()
    for cap in range(_last_cap() + 1):
        if not wanted & (1 << cap):
            # Already outside our bounding set is fine (this host lacks e.g. CAP_SYS_RESOURCE).
            with contextlib.suppress(OSError):
                linux.prctl(linux.PR_CAPBSET_DROP, cap)
    if proc.no_new_privs:
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    if proc.seccomp:
        linux.install_seccomp(seccomp.runtime_default_program())
    linux.prctl(linux.PR_SET_KEEPCAPS, 1)
    os.setgroups(proc.groups)
    os.setresgid(proc.gid, proc.gid, proc.gid)
    os.setresuid(proc.uid, proc.uid, proc.uid)
    linux.capset(wanted, wanted, wanted)
    for name in proc.ambient_caps:
        linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_RAISE, caps.CAPABILITIES[name])
    for sig in (signal.SIGCHLD, signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    os.umask(0o022)
    env = dict(e.partition("=")[::2] for e in proc.env)
    os.execve(program, proc.args, env)


def take_terminal() -> None:
    """Open a pty on the container's own devpts (so `tty` names it inside), hand the master to
    whoever listens on the unix socket we have as stdin, and make the slave our controlling terminal."""
    master, slave = os.openpty()
    with socket.socket(fileno=os.dup(0)) as channel:
        socket.send_fds(channel, [b"pty"], [master])
    os.close(master)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    os.close(slave)
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def start_container(spec: ContainerLaunch) -> None:
    """In the container's first process (already in the pod's pid namespace, if any)."""
    join_cgroup(spec.cgroup_procs)
    join_namespaces(spec.namespaces, ("ipc", "uts", "net"))
    enter_rootfs(spec)
    if spec.tty:
        take_terminal()
    exec_process(spec.process)


def start_exec(spec: ExecLaunch) -> None:
    """In an exec'd process: the container's cgroup and every namespace of its first process."""
    join_cgroup(spec.cgroup_procs)
    ns = {kind: f"/proc/{spec.container_pid}/ns/{kind}" for kind in ("ipc", "uts", "net", "mnt")}
    join_namespaces(ns, ("ipc", "uts", "net", "mnt"))
    os.chdir(spec.process.cwd or "/")
    if spec.tty:
        take_terminal()
    exec_process(spec.process)
