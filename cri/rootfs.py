"""Child side: build a container's mount namespace on an overlayfs root and pivot into it.

Runs only in a launcher child that already joined the sandbox namespaces (never in the daemon).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat

from cri import linux
from cri.types import ContainerLaunch, MountSpec

# OCI runtime-spec defaults (what containerd hands runc when the kubelet sends no list).
DEFAULT_MASKED = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
DEFAULT_READONLY = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

_DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0))
_PROPAGATION = {"private": linux.MS_PRIVATE, "rslave": linux.MS_SLAVE, "rshared": linux.MS_SHARED}
_MAX_SYMLINKS = 40


def secure_join(root: str, path: str) -> str:
    """`root/path` with every symlink on the way resolved *inside* root, so an image cannot point a
    mount target at the host (like runc's securejoin)."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        if os.path.islink(candidate):
            hops += 1
            if hops > _MAX_SYMLINKS:
                raise OSError(errno.ELOOP, f"too many symlinks under {path}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def _ensure_target(target: str, *, is_dir: bool) -> None:
    if os.path.lexists(target):
        return
    if is_dir:
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "a"):
            pass


def _bind(spec: MountSpec, rootfs: str) -> None:
    target = secure_join(rootfs, spec.target)
    _ensure_target(target, is_dir=os.path.isdir(spec.source))
    linux.mount(spec.source, target, None, linux.MS_BIND | linux.MS_REC)
    if spec.readonly:
        linux.mount(None, target, None, linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY)
    linux.mount(None, target, None, linux.MS_REC | _PROPAGATION.get(spec.propagation, linux.MS_PRIVATE))


def _setup_dev(rootfs: str, *, privileged: bool) -> None:
    dev = os.path.join(rootfs, "dev")
    os.makedirs(dev, exist_ok=True)
    if privileged:
        linux.mount("/dev", dev, None, linux.MS_BIND | linux.MS_REC)
        return
    linux.mount("tmpfs", dev, "tmpfs", linux.MS_NOSUID, "mode=755,size=65536k")
    old = os.umask(0)
    try:
        for name, major, minor in _DEVICES:
            os.mknod(os.path.join(dev, name), stat.S_IFCHR | 0o666, os.makedev(major, minor))
        os.makedirs(os.path.join(dev, "pts"))
        os.makedirs(os.path.join(dev, "shm"), mode=0o1777)
    finally:
        os.umask(old)
    linux.mount(
        "devpts",
        os.path.join(dev, "pts"),
        "devpts",
        linux.MS_NOSUID | linux.MS_NOEXEC,
        "newinstance,ptmxmode=0666,mode=0620",
    )
    linux.mount(
        "shm",
        os.path.join(dev, "shm"),
        "tmpfs",
        linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC,
        "mode=1777,size=65536k",
    )
    for link, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ):
        os.symlink(target, os.path.join(dev, link))


def _mask(path: str) -> None:
    """Hide a path: an empty read-only tmpfs over a directory, /dev/null over a file."""
    try:
        if os.path.isdir(path):
            linux.mount("tmpfs", path, "tmpfs", linux.MS_RDONLY, "size=0")
        else:
            linux.mount("/dev/null", path, None, linux.MS_BIND)
    except OSError as err:
        if err.errno != errno.ENOENT and os.path.lexists(path):
            raise


def _make_readonly(path: str) -> None:
    if not os.path.lexists(path):
        return
    linux.mount(path, path, None, linux.MS_BIND | linux.MS_REC)
    linux.mount(None, path, None, linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY | linux.MS_REC)


def enter_rootfs(spec: ContainerLaunch) -> None:
    """New mount ns, overlay root, /proc /dev /sys, mounts, pivot_root, masks, read-only parts."""
    linux.unshare(linux.CLONE_NEWNS)
    # rslave: nothing we mount leaks to the node, while node mounts still reach rslave volumes.
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_SLAVE)
    rootfs = spec.rootfs
    lower = ":".join(spec.lower_dirs)
    linux.mount("overlay", rootfs, "overlay", 0, f"lowerdir={lower},upperdir={spec.upper_dir},workdir={spec.work_dir}")
    linux.mount(None, rootfs, None, linux.MS_PRIVATE)
    proc = secure_join(rootfs, "/proc")
    os.makedirs(proc, exist_ok=True)
    linux.mount("proc", proc, "proc", linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC)
    _setup_dev(rootfs, privileged=spec.privileged)
    sys_dir = secure_join(rootfs, "/sys")
    os.makedirs(sys_dir, exist_ok=True)
    sys_flags = linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC | (0 if spec.privileged else linux.MS_RDONLY)
    linux.mount("sysfs", sys_dir, "sysfs", sys_flags)
    for m in spec.mounts:
        _bind(m, rootfs)
    os.makedirs(secure_join(rootfs, spec.process.cwd), exist_ok=True)
    os.chdir(rootfs)
    linux.pivot_root(".", ".")
    linux.umount2(".", linux.MNT_DETACH)
    os.chdir("/")
    if not spec.privileged:
        for path in spec.masked_paths:
            _mask(path)
        for path in spec.readonly_paths:
            _make_readonly(path)
    if spec.readonly_rootfs:
        linux.mount(None, "/", None, linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY)
    with contextlib.suppress(OSError):
        os.chdir(spec.process.cwd)
