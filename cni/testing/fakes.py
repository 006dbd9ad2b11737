"""In-memory stand-ins for `Netlink`/`NetlinkOpener`/`Masquerader` that keep state like the kernel
would: links per namespace (a veth pair dies as a whole), addresses, routes, tagged NAT rules.
Namespaces are looked up by the fd the plugin opened, via the path registered with `add_netns`.
"""

from __future__ import annotations

import dataclasses
import errno
import itertools
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from cni.errors import CniError
from cni.interfaces import (
    IPAddress,
    IPInterface,
    IPNetwork,
    Link,
    Masquerader,
    Netlink,
    NetlinkOpener,
    RouteEntry,
    VethPair,
)

_indexes = itertools.count(2)


@dataclass
class FakeNamespace:
    name: str
    links: dict[int, Link] = field(default_factory=dict)
    addresses: dict[int, list[IPInterface]] = field(default_factory=dict)
    routes: list[RouteEntry] = field(default_factory=list)
    peers: dict[int, tuple[FakeNamespace, int]] = field(default_factory=dict)

    def by_name(self, name: str) -> Link | None:
        return next((link for link in self.links.values() if link.name == name), None)

    def remove(self, index: int) -> None:
        self.links.pop(index, None)
        self.addresses.pop(index, None)
        self.routes = [r for r in self.routes if r.index != index]
        peer = self.peers.pop(index, None)
        if peer is not None:
            ns, peer_index = peer
            ns.peers.pop(peer_index, None)
            ns.remove(peer_index)


class FakeNetlink:
    def __init__(self, ns: FakeNamespace, opener: FakeNetlinkOpener) -> None:
        self.ns = ns
        self._opener = opener
        self.closed = False

    def link(self, name: str) -> Link | None:
        return self.ns.by_name(name)

    def links(self) -> list[Link]:
        return list(self.ns.links.values())

    def add_bridge(self, name: str, *, mtu: int | None, mac: str | None = None) -> None:
        if self.ns.by_name(name) is None:
            index = next(_indexes)
            self.ns.links[index] = Link(index, name, "bridge", mac or "02:00:00:00:00:01", mtu or 1500)

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
    ) -> VethPair:
        target = self._opener.namespace_of(peer_netns_fd)
        if self.ns.by_name(name) is not None or target.by_name(peer) is not None:
            raise FileExistsError(errno.EEXIST, "exists")
        if master is not None and master not in self.ns.links:
            raise OSError(errno.ENODEV, "no such master")
        host_index, peer_index = next(_indexes), next(_indexes)
        self.ns.links[host_index] = Link(host_index, name, "veth", mac or "02:00:00:00:01:01", mtu or 1500, master)
        target.links[peer_index] = Link(peer_index, peer, "veth", peer_mac or "02:00:00:00:01:02", mtu or 1500)
        self.ns.peers[host_index] = (target, peer_index)
        target.peers[peer_index] = (self.ns, host_index)
        return VethPair(host_index, peer_index)

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
    ) -> None:
        link = self.ns.links.get(index)
        if link is None:
            raise OSError(errno.ENODEV, "no such link")
        changes: dict[str, Any] = {
            "up": up,
            "mtu": mtu,
            "master": master,
            "alias": alias,
            "promisc": promisc,
            "hairpin": hairpin,
        }
        self.ns.links[index] = dataclasses.replace(link, **{k: v for k, v in changes.items() if v is not None})

    def delete_link(self, index: int) -> None:
        self.ns.remove(index)

    def delete_link_named(self, name: str) -> None:
        link = self.ns.by_name(name)
        if link is not None:
            self.ns.remove(link.index)

    def add_address(self, index: int, address: IPInterface) -> None:
        if index not in self.ns.links:
            raise OSError(errno.ENODEV, "no such link")
        held = self.ns.addresses.setdefault(index, [])
        if address not in held:
            held.append(address)

    def addresses(self, index: int) -> list[IPInterface]:
        return list(self.ns.addresses.get(index, []))

    def add_route(self, dst: IPNetwork, gw: IPAddress | None, index: int) -> None:
        entry = RouteEntry(dst, gw, index)
        if entry not in self.ns.routes:
            self.ns.routes.append(entry)

    def routes(self) -> list[RouteEntry]:
        return list(self.ns.routes)

    def close(self) -> None:
        self.closed = True


class FakeNetlinkOpener:
    """`host` is the host namespace; pods are registered by path and found by the fd opened on it."""

    def __init__(self) -> None:
        self.host_ns = FakeNamespace("host")
        self._by_path: dict[str, FakeNamespace] = {}

    def add_netns(self, path: str) -> FakeNamespace:
        ns = self._by_path[os.path.realpath(path)] = FakeNamespace(path)
        return ns

    def namespace_of(self, fd: int) -> FakeNamespace:
        return self._by_path[os.path.realpath(f"/proc/self/fd/{fd}")]

    def host(self) -> Netlink:
        return FakeNetlink(self.host_ns, self)

    def shared_host(self) -> Netlink:
        return FakeNetlink(self.host_ns, self)

    def close_shared(self) -> None:
        pass

    def netns(self, fd: int) -> Netlink:
        return FakeNetlink(self.namespace_of(fd), self)


class FakeMasquerader:
    """Jump rules as (network, tag, address); `fail_next_add` makes the next add() fail."""

    def __init__(self) -> None:
        self.rules: set[tuple[str, str, IPInterface]] = set()
        self.fail_next_add = False

    def add(self, network: str, tag: str, addresses: Sequence[IPInterface]) -> None:
        if self.fail_next_add:
            self.fail_next_add = False
            raise CniError("simulated iptables failure")
        self.rules.update((network, tag, a) for a in addresses)

    def remove(self, network: str, tag: str, addresses: Sequence[IPInterface] | None) -> None:
        self.rules = {r for r in self.rules if not (r[0] == network and r[1] == tag)}

    def check(self, network: str, tag: str, addresses: Sequence[IPInterface]) -> None:
        for a in addresses:
            if (network, tag, a) not in self.rules:
                raise CniError("ipMasq rule missing", str(a))

    def gc(self, network: str, keep_tags: Collection[str]) -> None:
        self.rules = {r for r in self.rules if r[0] != network or r[1] in keep_tags}


_netlink: Netlink = FakeNetlink(FakeNamespace("typecheck"), FakeNetlinkOpener())
_opener: NetlinkOpener = FakeNetlinkOpener()
_masq: Masquerader = FakeMasquerader()
