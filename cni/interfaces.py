"""Narrow Protocols for the kernel state the bridge plugin touches, so its logic is testable with
fakes (`cni.testing`) and the pyroute2/iptables implementations stay small.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    kind: str
    mac: str
    mtu: int
    master: int | None = None
    alias: str = ""
    up: bool = False
    promisc: bool = False
    hairpin: bool = False


@dataclass(frozen=True)
class RouteEntry:
    dst: IPNetwork
    gw: IPAddress | None
    index: int | None


@dataclass(frozen=True)
class VethPair:
    host_index: int
    peer_index: int


class Netlink(Protocol):
    """Link/address/route operations inside one network namespace. `add_bridge`, `add_address` and
    `add_route` tolerate EEXIST, `delete_*` tolerate ENODEV, so retries and idempotent DEL need no
    special cases. `add_veth` raises FileExistsError when either name is taken and OSError(EINVAL or
    ENODEV) when `master` is gone."""

    def link(self, name: str) -> Link | None: ...
    def links(self) -> list[Link]: ...
    def add_bridge(self, name: str, *, mtu: int | None, mac: str | None = None) -> None: ...
    def add_veth(
        self,
        name: str,
        *,
        peer: str,
        peer_netns_fd: int,
        mtu: int | None,
        master: int | None = None,
        mac: str | None = None,
        peer_mac: str | None = None,
    ) -> VethPair: ...
    def set_link(
        self,
        index: int,
        *,
        up: bool | None = None,
        mtu: int | None = None,
        master: int | None = None,
        alias: str | None = None,
        promisc: bool | None = None,
        hairpin: bool | None = None,
        name: str | None = None,
    ) -> None: ...
    def delete_link(self, index: int) -> None: ...
    def delete_link_named(self, name: str) -> None: ...
    def add_address(self, index: int, address: IPInterface) -> None: ...
    def addresses(self, index: int) -> list[IPInterface]: ...
    def add_route(self, dst: IPNetwork, gw: IPAddress | None, index: int) -> None: ...
    def routes(self) -> list[RouteEntry]: ...
    def close(self) -> None: ...


class NetlinkOpener(Protocol):
    def host(self) -> Netlink: ...
    def shared_host(self) -> Netlink: ...
    def close_shared(self) -> None: ...
    def netns(self, fd: int) -> Netlink: ...


class Masquerader(Protocol):
    """Source NAT for pod traffic leaving the pod network (`ipMasq`), one jump rule per attachment
    (tagged, so DEL and GC find it) into one chain per network."""

    def add(self, network: str, tag: str, addresses: Sequence[IPInterface]) -> None: ...
    def remove(self, network: str, tag: str, addresses: Sequence[IPInterface] | None) -> None: ...
    def check(self, network: str, tag: str, addresses: Sequence[IPInterface]) -> None: ...
    def gc(self, network: str, keep_tags: Collection[str]) -> None: ...
