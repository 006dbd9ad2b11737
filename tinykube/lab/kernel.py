"""The kernel lab: run a command under a stock Debian kernel in a qemu guest.

This machine's kernel has no `ip_vs` (and no loadable modules at all), so IPVS is tested in a guest:
qemu boots Debian's `linux-image-amd64` with a busybox initramfs, the guest mounts the host's root
read-only over 9p, loads the modules asked for, and runs the command chrooted into the host's root —
so the project's venv and code run unchanged in the guest. Results come back on the serial console,
ended by an exit-status marker. Software emulation (TCG) only: `/dev/kvm` exists here but hangs.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import re
import select
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from tinykube.lab import initramfs

EXIT_MARKER = "TINYKUBE-LAB-EXIT="
# Modules the initramfs itself needs to reach the host root; everything else is loaded later with
# the host's own modprobe from inside the chroot (which knows modules.dep).
BOOT_MODULES = ("virtio_pci", "9pnet_virtio", "9p")
# What a proxy or node needs in the guest: links, netfilter (both iptables backends, nftables), ipset
# types kube-proxy's IPVS mode uses, and IPVS with its schedulers.
NETWORK_MODULES = (
    "veth", "bridge", "dummy", "br_netfilter", "nf_conntrack", "nf_nat", "iptable_nat", "iptable_filter",
    "nf_tables", "nft_chain_nat", "nft_compat", "nft_numgen", "nft_ct", "nft_nat", "nft_masq", "nft_reject_inet",
    "xt_MASQUERADE", "xt_mark", "xt_comment", "xt_conntrack", "xt_addrtype", "xt_statistic", "xt_recent",
    "xt_set", "xt_nat", "xt_tcpudp", "xt_multiport", "xt_physdev", "ipt_REJECT", "nft_fib_ipv4", "nft_reject_ipv4",
    "nft_limit", "nft_hash", "nft_objref", "nft_redir", "ip_set", "ip_set_hash_ip", "ip_set_hash_ipport",
    "ip_set_hash_ipportip", "ip_set_bitmap_port", "ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_lc", "ip_vs_sh", "xt_ipvs",
)  # fmt: skip
CACHE_DIR = Path(os.environ.get("TINYKUBE_LAB_CACHE", "/var/cache/tinykube/lab"))
QEMU = "qemu-system-x86_64"
BUSYBOX = "/bin/busybox"

_INIT = r"""#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /boot-modules); do insmod /modules/$m || echo "lab: insmod $m failed"; done
mkdir -p /host
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 hostroot /host || echo "lab: 9p mount failed"
mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
mount -t devtmpfs dev /host/dev
mkdir -p /host/dev/pts /host/dev/shm 2>/dev/null
mount -t devpts devpts /host/dev/pts
# Scratch space over the read-only host root; a working directory under one of these (a checkout in
# /tmp or /root) is bound back on top, so the command still finds its files.
cwd=$(cat /cwd)
for d in /tmp /run /var/tmp /var/lib/tinykube /var/cache/tinykube /etc/cni/net.d /var/lib/cni /root; do
  case "$cwd/" in "$d"/*) mkdir -p /keep$d; mount -o bind /host$d /keep$d;; esac
  mount -t tmpfs -o mode=1777 lab /host$d 2>/dev/null
  case "$cwd/" in "$d"/*) mkdir -p /host$cwd; mount -o bind /keep$cwd /host$cwd;; esac
done
cat /cmd.sh > /host/run/tinykube-lab-cmd.sh
chroot /host /bin/sh /run/tinykube-lab-cmd.sh
echo "TINYKUBE-LAB-EXIT=$?"
sync
poweroff -f
"""


class LabError(RuntimeError):
    """The guest could not be built or booted, or did not finish in time; carries the console log."""

    def __init__(self, message: str, console: str = "") -> None:
        super().__init__(message)
        self.console = console


@dataclass(frozen=True)
class LabResult:
    exit_code: int
    output: str  # the command's output as the guest printed it (console noise before it removed)
    seconds: float


@dataclass(frozen=True)
class LabConfig:
    kernel: str
    modules_dir: str
    memory_mb: int = 2048
    cpus: int = 2
    timeout: float = 300.0


def find_kernel() -> LabConfig:
    """The newest Debian kernel installed in /boot that has a matching /lib/modules tree."""
    for vmlinuz in sorted(glob.glob("/boot/vmlinuz-*"), reverse=True):
        version = vmlinuz.removeprefix("/boot/vmlinuz-")
        modules = f"/lib/modules/{version}"
        if os.path.isdir(modules):
            return LabConfig(kernel=vmlinuz, modules_dir=modules)
    raise LabError("no kernel found in /boot: install linux-image-amd64 (make deps does)")


def check_tools() -> None:
    if shutil.which(QEMU) is None:
        raise LabError(f"{QEMU} not found: install qemu-system-x86 (make deps does)")
    if not os.path.exists(BUSYBOX):
        raise LabError(f"{BUSYBOX} not found: install busybox-static (make deps does)")


def module_closure(modules_dir: str, names: tuple[str, ...]) -> list[str]:
    """Relative .ko paths for `names` and their dependencies, dependencies first (from modules.dep)."""
    deps: dict[str, list[str]] = {}
    with open(os.path.join(modules_dir, "modules.dep")) as f:
        for line in f:
            target, _, rest = line.partition(":")
            deps[target] = rest.split()
    by_name = {re.sub(r"\.ko(\..*)?$", "", os.path.basename(p)).replace("-", "_"): p for p in deps}
    ordered: list[str] = []

    def visit(path: str) -> None:
        if path in ordered:
            return
        for dep in deps.get(path, []):
            visit(dep)
        ordered.append(path)

    for name in names:
        if name not in by_name:
            raise LabError(f"module {name} is not in {modules_dir}/modules.dep")
        visit(by_name[name])
    return ordered


def base_initramfs(config: LabConfig) -> Path:
    """Builds (once per kernel and busybox) the cached base archive: busybox, boot modules, init."""
    mods = module_closure(config.modules_dir, BOOT_MODULES)
    busybox = Path(BUSYBOX).read_bytes()
    key = hashlib.sha256(busybox + _INIT.encode() + config.modules_dir.encode() + "\n".join(mods).encode())
    out = CACHE_DIR / f"base-{key.hexdigest()[:16]}.cpio.gz"
    if out.exists():
        return out
    entries = [initramfs.directory(d) for d in ("bin", "dev", "proc", "sys", "modules", "host")]
    entries += [
        initramfs.char_device("dev/console", 5, 1),
        initramfs.regular("bin/busybox", busybox, executable=True),
        initramfs.regular("init", _INIT.encode(), executable=True),
    ]
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    entries += [initramfs.symlink(f"bin/{a}", "busybox") for a in applets if a != "busybox"]
    for rel in mods:
        entries.append(
            initramfs.regular(f"modules/{os.path.basename(rel)}", Path(config.modules_dir, rel).read_bytes())
        )
    entries.append(initramfs.regular("boot-modules", "\n".join(os.path.basename(m) for m in mods).encode()))
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(initramfs.gzip_cpio(entries))
    tmp.rename(out)
    return out


def command_script(argv: list[str], *, cwd: str, modules: tuple[str, ...], env: dict[str, str]) -> str:
    """The shell script the guest runs chrooted into the host root."""
    lines = [
        "#!/bin/sh",
        "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "export HOME=/root PYTHONDONTWRITEBYTECODE=1",
    ]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in sorted(env.items())]
    # Explicit modprobe: autoload from a chroot is unreliable (ENVIRONMENT.md).
    lines += [f"modprobe {shlex.quote(m)} || echo 'lab: modprobe {m} failed'" for m in modules]
    lines += [
        "ip link set lo up",
        f"cd {shlex.quote(cwd)} || exit 99",
        "echo TINYKUBE-LAB-BEGIN",
        " ".join(shlex.quote(a) for a in argv),
    ]
    return "\n".join(lines) + "\n"


def qemu_argv(config: LabConfig, initrd: str) -> list[str]:
    return [
        QEMU, "-machine", "q35", "-accel", "tcg,thread=multi", "-cpu", "max",
        "-m", str(config.memory_mb), "-smp", str(config.cpus),
        "-kernel", config.kernel, "-initrd", initrd,
        "-append", "console=ttyS0 panic=-1 quiet loglevel=3",
        "-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot", "-nic", "none",
        "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
    ]  # fmt: skip


def parse_console(console: str) -> tuple[int | None, str]:
    """The exit status and the command's output from the serial console text."""
    text = console.replace("\r\n", "\n")
    begin = text.find("TINYKUBE-LAB-BEGIN\n")
    body = text[begin + len("TINYKUBE-LAB-BEGIN\n") :] if begin >= 0 else text
    match = re.search(rf"^{EXIT_MARKER}(\d+)$", body, re.MULTILINE)
    if match is None:
        return None, body
    return int(match.group(1)), body[: match.start()]


def _pump(
    proc: subprocess.Popen[bytes], source: IO[bytes], sink: IO[bytes], follow: BinaryIO | None, *, deadline: float
) -> bool:
    """Copies the console to `sink` (and `follow`, live) until the guest exits; False on timeout."""
    fd = source.fileno()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            proc.kill()
            proc.wait()
            return False
        ready, _, _ = select.select([fd], [], [], min(remaining, 1.0))
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            proc.wait()
            return True
        sink.write(chunk)
        if follow is not None:
            follow.write(chunk)
            follow.flush()


def run(
    argv: list[str],
    *,
    cwd: str | None = None,
    modules: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    config: LabConfig | None = None,
    follow: BinaryIO | None = None,
) -> LabResult:
    """Boots a guest, runs argv in it and returns its exit status and output; `follow` (e.g. stderr)
    receives the console as it comes, for long runs."""
    check_tools()
    config = config or find_kernel()
    base = base_initramfs(config)
    script = command_script(argv, cwd=cwd or os.getcwd(), modules=modules, env=env or {})
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tinykube-lab-") as tmp:
        initrd = Path(tmp, "initrd")
        # The kernel unpacks concatenated archives in order: the per-run one adds /cmd.sh.
        run_files = [
            initramfs.regular("cmd.sh", script.encode()),
            initramfs.regular("cwd", (cwd or os.getcwd()).encode()),
        ]
        initrd.write_bytes(base.read_bytes() + initramfs.gzip_cpio(run_files))
        console_path = Path(tmp, "console.log")
        with (
            console_path.open("wb") as sink,
            subprocess.Popen(
                qemu_argv(config, str(initrd)),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            ) as proc,
        ):
            assert proc.stdout is not None
            if not _pump(proc, proc.stdout, sink, follow, deadline=started + config.timeout):
                raise LabError(f"guest did not finish within {config.timeout:.0f} s",
                               console_path.read_bytes().decode(errors="replace"))  # fmt: skip
        raw = console_path.read_bytes()
    console = raw.decode(errors="replace")
    code, output = parse_console(console)
    if code is None:
        raise LabError("guest stopped without reporting an exit status (boot failure?)", console)
    return LabResult(exit_code=code, output=output, seconds=time.monotonic() - started)


def available() -> str | None:
    """None when the lab can run here, else the reason it cannot (for test skips)."""
    try:
        check_tools()
        find_kernel()
    except LabError as err:
        return str(err)
    with contextlib.suppress(OSError):
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
    if not os.access(CACHE_DIR.parent if not CACHE_DIR.exists() else CACHE_DIR, os.W_OK):
        return f"cache dir {CACHE_DIR} is not writable"
    return None
