"""`tinykube-host-local`: host-local IPAM (stdlib-only, so its executable never needs pyroute2).

State lives in `<dataDir>/<network>/`, in the same shape the reference host-local uses (one file per
reserved address holding `containerID\\r\\nifname`, `last_reserved_ip.<n>` per range set), so either
plugin can read the other's reservations. Every read-modify-write of that directory happens under an
exclusive `flock` on `<dir>/lock`: concurrent ADDs (threads of the agent or separate executables) are
serialised per network and never hand out the same address twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from cni.config import Env, IPAddress, IpamConfig, NetConf, Range, parse_env, parse_host_local, parse_netconf
from cni.errors import InvalidConfig, IOFailure, PluginNotAvailable, TryAgainLater
from cni.types import Attachment, PluginRequest, version_key

LINE_BREAK = "\r\n"
LOCK_FILE = "lock"
LAST_RESERVED = "last_reserved_ip."


@dataclass(frozen=True)
class Allocation:
    ip: IPAddress
    range: Range


class Store:
    """Reservations of one network on disk. Callers hold `locked()` around every use."""

    def __init__(self, data_dir: str, network: str) -> None:
        self.dir = os.path.join(data_dir, network)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        try:
            os.makedirs(self.dir, mode=0o755, exist_ok=True)
            fd = os.open(os.path.join(self.dir, LOCK_FILE), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as err:
            raise IOFailure("cannot open the IPAM store", f"{self.dir}: {err}") from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the flock

    def reserve(self, ip: IPAddress, attachment: Attachment) -> bool:
        """Create the reservation file; False if the address is taken."""
        try:
            fd = os.open(self._path(ip), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            return False
        try:
            os.write(fd, f"{attachment.container_id}{LINE_BREAK}{attachment.ifname}".encode())
        finally:
            os.close(fd)
        return True

    def release(self, ip: IPAddress) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(ip))

    def reservations(self) -> dict[IPAddress, Attachment]:
        out: dict[IPAddress, Attachment] = {}
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return out
        for name in names:
            try:
                ip = ipaddress.ip_address(name.replace("_", ":"))
            except ValueError:
                continue  # lock, last_reserved_ip.N, temp files
            try:
                with open(os.path.join(self.dir, name), "rb") as f:
                    lines = f.read().decode(errors="replace").splitlines()
            except FileNotFoundError:
                continue
            # Files written by older host-local versions hold only the container id.
            out[ip] = Attachment(lines[0].strip() if lines else "", lines[1].strip() if len(lines) > 1 else "")
        return out

    def last_reserved(self, index: int) -> IPAddress | None:
        try:
            with open(os.path.join(self.dir, f"{LAST_RESERVED}{index}"), encoding="utf-8") as f:
                return ipaddress.ip_address(f.read().strip())
        except (OSError, ValueError):
            return None

    def set_last_reserved(self, index: int, ip: IPAddress) -> None:
        path = os.path.join(self.dir, f"{LAST_RESERVED}{index}")
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(str(ip))
        os.replace(tmp, path)

    def _path(self, ip: IPAddress) -> str:
        return os.path.join(self.dir, str(ip))


def _candidates(range_set: Sequence[Range], last: IPAddress | None) -> Iterator[tuple[IPAddress, Range]]:
    """Every address of the set once, starting right after `last` (round robin, like host-local)."""
    total = sum(r.size for r in range_set)
    start, base = 0, 0
    for r in range_set:
        if last is not None and last in r:
            start = base + int(last) - int(r.start) + 1
            break
        base += r.size
    for k in range(total):
        position = (start + k) % total
        for r in range_set:
            if position < r.size:
                yield ipaddress.ip_address(int(r.start) + position), r
                break
            position -= r.size


def allocate(store: Store, config: IpamConfig, attachment: Attachment) -> list[Allocation]:
    """One address per range set; an existing reservation of the attachment is reused. Lock held."""
    existing = store.reservations()
    mine = [ip for ip, a in existing.items() if a == attachment]
    taken_now: list[IPAddress] = []
    out: list[Allocation] = []
    try:
        for index, range_set in enumerate(config.range_sets):
            reused = next(((ip, r) for ip in mine for r in range_set if ip in r), None)
            if reused is not None:
                out.append(Allocation(reused[0], reused[1]))
                continue
            for ip, r in _candidates(range_set, store.last_reserved(index)):
                if ip == r.gateway or ip in existing:
                    continue
                if store.reserve(ip, attachment):
                    taken_now.append(ip)
                    store.set_last_reserved(index, ip)
                    out.append(Allocation(ip, r))
                    break
            else:
                subnets = ", ".join(str(r.subnet) for r in range_set)
                raise TryAgainLater("no IP addresses available in range set", subnets)
    except BaseException:
        for ip in taken_now:
            store.release(ip)
        raise
    return out


def release(store: Store, attachment: Attachment) -> list[IPAddress]:
    """Drop every reservation of the attachment (idempotent). Lock held."""
    gone = [ip for ip, a in store.reservations().items() if a == attachment]
    for ip in gone:
        store.release(ip)
    return gone


def collect_garbage(store: Store, valid: Sequence[Attachment]) -> list[IPAddress]:
    """Release reservations whose attachment is not in `valid` (spec 1.1 GC). Lock held."""
    keep = set(valid)
    gone = [ip for ip, a in store.reservations().items() if a not in keep]
    for ip in gone:
        store.release(ip)
    return gone


def free_count(store: Store, config: IpamConfig) -> int:
    """Free addresses in the emptiest-bounded range set (0 means ADD cannot succeed)."""
    reserved = store.reservations()
    counts = []
    for range_set in config.range_sets:
        total = sum(r.size - (1 if r.gateway in r else 0) for r in range_set)
        used = sum(1 for ip in reserved if any(ip in r and ip != r.gateway for r in range_set))
        counts.append(total - used)
    return min(counts) if counts else 0


def result_json(netconf: NetConf, config: IpamConfig, allocations: Sequence[Allocation]) -> dict[str, Any]:
    """The IPAM result (spec "IP Allocation"): ips without interface indexes, routes, dns."""
    legacy = version_key(netconf.cni_version) < (1, 0, 0)
    ips = []
    for a in allocations:
        entry: dict[str, Any] = {"address": f"{a.ip}/{a.range.subnet.prefixlen}"}
        if a.range.gateway is not None:
            entry["gateway"] = str(a.range.gateway)
        if legacy:
            entry["version"] = str(a.ip.version)
        ips.append(entry)
    out: dict[str, Any] = {"cniVersion": netconf.cni_version, "ips": ips}
    if config.routes:
        out["routes"] = [r.to_json() for r in config.routes]
    out["dns"] = dict(config.dns)
    return out


def _prev_ips(netconf: NetConf) -> set[IPAddress]:
    ips: set[IPAddress] = set()
    for entry in (netconf.prev_result or {}).get("ips") or []:
        with contextlib.suppress(ValueError, AttributeError):
            ips.add(ipaddress.ip_interface(str(entry.get("address"))).ip)
    return ips


# --- verbs ------------------------------------------------------------------------------------------


def cmd_add(env: Env, netconf: NetConf, config: IpamConfig) -> dict[str, Any]:
    store = Store(config.data_dir, netconf.name)
    with store.locked():
        allocations = allocate(store, config, Attachment(env.container_id, env.ifname))
    return result_json(netconf, config, allocations)


def cmd_del(env: Env, netconf: NetConf, config: IpamConfig) -> None:
    store = Store(config.data_dir, netconf.name)
    with store.locked():
        release(store, Attachment(env.container_id, env.ifname))


def cmd_check(env: Env, netconf: NetConf, config: IpamConfig) -> None:
    store = Store(config.data_dir, netconf.name)
    attachment = Attachment(env.container_id, env.ifname)
    with store.locked():
        held = {ip for ip, a in store.reservations().items() if a == attachment}
    if not held:
        raise IOFailure("no IP reservation for the container", f"{env.container_id}/{env.ifname}")
    missing = {ip for ip in _prev_ips(netconf) if any(ip in r for rs in config.range_sets for r in rs)} - held
    if missing:
        raise IOFailure("addresses of prevResult are not reserved", ", ".join(map(str, sorted(missing, key=str))))


def cmd_status(netconf: NetConf, config: IpamConfig) -> None:
    store = Store(config.data_dir, netconf.name)
    try:
        with store.locked():
            free = free_count(store, config)
    except IOFailure as err:
        raise PluginNotAvailable("IPAM store is not usable", err.details) from err
    if free <= 0:
        raise PluginNotAvailable("no free addresses left in a range set", netconf.name)


def cmd_gc(netconf: NetConf, config: IpamConfig) -> None:
    if netconf.valid_attachments is None:
        return
    store = Store(config.data_dir, netconf.name)
    with store.locked():
        collect_garbage(store, netconf.valid_attachments)


def handle(request: PluginRequest) -> dict[str, Any] | None:
    """The plugin for one request (VERSION is answered by the edge). Raises CniError."""
    env = parse_env(request)
    netconf = parse_netconf(request.stdin)
    config = parse_host_local(netconf)
    if env.command == "ADD":
        return cmd_add(env, netconf, config)
    if env.command == "DEL":
        cmd_del(env, netconf, config)
    elif env.command == "CHECK":
        cmd_check(env, netconf, config)
    elif env.command == "STATUS":
        cmd_status(netconf, config)
    elif env.command == "GC":
        cmd_gc(netconf, config)
    else:
        raise InvalidConfig(f"unsupported command {env.command}")
    return None
