"""ClusterIP and NodePort allocation for Services (done in the API server, as in Kubernetes).

State lives only in memory and is rebuilt from the stored Services at start; every allocation runs
on the event loop without awaiting between "is it free" and "take it", so concurrent creates never
get the same address. The first address of the range is reserved for the `kubernetes` Service."""

from __future__ import annotations

import ipaddress
import itertools
from dataclasses import dataclass, field


class AllocationError(Exception):
    """The value is taken, outside the range, or the range is full."""


@dataclass
class RangeAllocator:
    """Integers in [low, high]; `next` rotates so a just-released value is not handed out at once."""

    low: int
    high: int
    used: set[int] = field(default_factory=set)
    _next: int = 0

    def __post_init__(self) -> None:
        self._next = self.low

    def allocate(self, value: int | None = None) -> int:
        if value is not None:
            if not self.low <= value <= self.high:
                raise AllocationError(f"{value} is not in the range {self.low}-{self.high}")
            if value in self.used:
                raise AllocationError(f"{value} is already allocated")
            self.used.add(value)
            return value
        size = self.high - self.low + 1
        for offset in range(size):
            candidate = self.low + (self._next - self.low + offset) % size
            if candidate not in self.used:
                self.used.add(candidate)
                self._next = candidate + 1 if candidate < self.high else self.low
                return candidate
        raise AllocationError(f"range {self.low}-{self.high} is full")

    def release(self, value: int) -> None:
        self.used.discard(value)

    def contains(self, value: int) -> bool:
        return self.low <= value <= self.high


class ServiceIPs:
    """ClusterIPs from a CIDR (network and broadcast addresses excluded)."""

    def __init__(self, cidr: str) -> None:
        self.network = ipaddress.ip_network(cidr)
        first, last = int(self.network.network_address) + 1, int(self.network.broadcast_address) - 1
        self._range = RangeAllocator(first + 1, last)  # first+0 is the `kubernetes` Service's
        self.kubernetes_ip = str(ipaddress.ip_address(first))

    def allocate(self, ip: str | None = None) -> str:
        if ip is None:
            return str(ipaddress.ip_address(self._range.allocate()))
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError as err:
            raise AllocationError(f"{ip!r} is not a valid IP address") from err
        if addr not in self.network:
            raise AllocationError(f"{ip} is not in the service range {self.network}")
        if str(addr) == self.kubernetes_ip:
            return ip  # only the bootstrap code asks for it
        self._range.allocate(int(addr))
        return str(addr)

    def release(self, ip: str) -> None:
        try:
            self._range.release(int(ipaddress.ip_address(ip)))
        except ValueError:
            return

    def mark_used(self, ip: str) -> None:
        """Rebuilding state at start: tolerate addresses outside the (possibly changed) range."""
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return
        if addr in self.network:
            self._range.used.add(int(addr))


class NodePorts:
    def __init__(self, low: int = 30000, high: int = 32767) -> None:
        self._range = RangeAllocator(low, high)

    def allocate(self, port: int | None = None) -> int:
        return self._range.allocate(port)

    def release(self, port: int) -> None:
        self._range.release(port)

    def mark_used(self, port: int) -> None:
        if self._range.contains(port):
            self._range.used.add(port)


def service_ips(svc: dict[str, object]) -> list[str]:
    spec = svc.get("spec") or {}
    assert isinstance(spec, dict)
    ips = [ip for ip in spec.get("clusterIPs") or [] if isinstance(ip, str)]
    ip = spec.get("clusterIP")
    if isinstance(ip, str) and ip not in ips:
        ips.append(ip)
    return [ip for ip in ips if ip and ip != "None"]


def service_node_ports(svc: dict[str, object]) -> list[int]:
    spec = svc.get("spec") or {}
    assert isinstance(spec, dict)
    ports = (p.get("nodePort") for p in spec.get("ports") or [] if isinstance(p, dict))
    extra = [spec.get("healthCheckNodePort")]
    return [p for p in itertools.chain(ports, extra) if isinstance(p, int) and p]
