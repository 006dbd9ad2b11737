"""pyroute2 implementation of `cni.interfaces.Netlink` (imported only by the agent and the
executable's no-agent fallback: `import pyroute2` costs ~150 ms).

Sockets for another namespace are made by `setns()`-ing the calling thread into it just long enough
to create the netlink socket (a socket stays bound to the namespace it was created in). pyroute2's
own `netns=` option forks a helper process per socket, which costs more than a whole ADD.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import ipaddress
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from cni.interfaces import IPAddress, IPInterface, IPNetwork, Link, Netlink, NetlinkOpener, RouteEntry, VethPair

CLONE_NEWNET = 0x40000000
NETLINK_ROUTE = 0
IFF_UP = 0x1
IFF_PROMISC = 0x100
BRIDGE_MODE_HAIRPIN = 1
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def thread_in_netns(fd: int) -> Iterator[None]:
    """Run the block with the calling thread inside the netns `fd`; always switch back."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(fd)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(own)


def netlink_socket_in(fd: int) -> socket.socket:
    with thread_in_netns(fd):
        return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE)


def _ignore(err: NetlinkError, *codes: int) -> None:
    if err.code not in codes:
        raise err


def _link_from_msg(msg: Any) -> Link:
    info = msg.get_attr("IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info is not None else ""
    hairpin = False
    if info is not None and info.get_attr("IFLA_INFO_SLAVE_KIND") == "bridge":
        data = info.get_attr("IFLA_INFO_SLAVE_DATA")
        hairpin = bool(data is not None and data.get_attr("IFLA_BRPORT_MODE"))
    return Link(
        index=msg["index"],
        name=msg.get_attr("IFLA_IFNAME"),
        kind=kind or "",
        mac=msg.get_attr("IFLA_ADDRESS") or "",
        mtu=msg.get_attr("IFLA_MTU") or 0,
        master=msg.get_attr("IFLA_MASTER"),
        alias=msg.get_attr("IFLA_IFALIAS") or "",
        up=bool(msg["flags"] & IFF_UP),
        promisc=bool(msg["flags"] & IFF_PROMISC),
        hairpin=hairpin,
    )


class PyRoute2Netlink:
    def __init__(self, ipr: IPRoute) -> None:
        self._ipr = ipr

    def link(self, name: str) -> Link | None:
        try:
            (msg,) = self._ipr.link("get", ifname=name)
        except NetlinkError as err:
            _ignore(err, errno.ENODEV)
            return None
        return _link_from_msg(msg)

    def links(self) -> list[Link]:
        return [_link_from_msg(m) for m in self._ipr.get_links()]

    def add_bridge(self, name: str, *, mtu: int | None, mac: str | None = None) -> None:
        kwargs: dict[str, Any] = {"mtu": mtu} if mtu else {}
        if mac:
            kwargs["address"] = mac
        try:
            self._ipr.link("add", ifname=name, kind="bridge", **kwargs)
        except NetlinkError as err:
            _ignore(err, errno.EEXIST)

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
        """One RTM_NEWLINK: the peer is born inside the pod netns, the host end already enslaved;
        the kernel's echo of the new link carries both indexes (IFLA_LINK is the peer's)."""
        peer_spec: dict[str, Any] = {"ifname": peer, "net_ns_fd": peer_netns_fd}
        kwargs: dict[str, Any] = {}
        if mtu:
            peer_spec["mtu"] = mtu
            kwargs["mtu"] = mtu
        if peer_mac:
            peer_spec["address"] = peer_mac
        if mac:
            kwargs["address"] = mac
        if master is not None:
            kwargs["master"] = master
        try:
            echoed = self._ipr.link("add", ifname=name, kind="veth", peer=peer_spec, **kwargs)
        except NetlinkError as err:
            if err.code == errno.EEXIST:
                raise FileExistsError(err.code, f"{name} or {peer} already exists") from err
            raise OSError(err.code, str(err)) from err
        for msg in echoed:
            if msg.get_attr("IFLA_IFNAME") == name and msg.get_attr("IFLA_LINK"):
                return VethPair(host_index=msg["index"], peer_index=msg.get_attr("IFLA_LINK"))
        raise OSError(errno.EIO, f"no echo of the new link {name}")

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
        attrs: dict[str, Any] = {}
        if mtu is not None:
            attrs["mtu"] = mtu
        if master is not None:
            attrs["master"] = master
        if alias is not None:
            attrs["ifalias"] = alias
        if name is not None:  # renaming and taking the link down go in one request (kernel allows it)
            attrs["ifname"] = name
            if up is False:
                attrs["state"] = "down"
                up = None
        if attrs:
            self._ipr.link("set", index=index, **attrs)
        if promisc is not None:
            self._ipr.link("set", index=index, flags=IFF_PROMISC if promisc else 0, change=IFF_PROMISC)
        if hairpin is not None:
            self._ipr.brport("set", index=index, mode=BRIDGE_MODE_HAIRPIN if hairpin else 0)
        if up is not None:
            self._ipr.link("set", index=index, state="up" if up else "down")

    def delete_link(self, index: int) -> None:
        try:
            self._ipr.link("del", index=index)
        except NetlinkError as err:
            _ignore(err, errno.ENODEV)

    def delete_link_named(self, name: str) -> None:
        try:
            self._ipr.link("del", ifname=name)
        except NetlinkError as err:
            _ignore(err, errno.ENODEV)

    def add_address(self, index: int, address: IPInterface) -> None:
        kwargs: dict[str, Any] = {}
        if address.version == 4:
            kwargs["broadcast"] = str(address.network.broadcast_address)
        try:
            self._ipr.addr("add", index=index, address=str(address.ip), prefixlen=address.network.prefixlen, **kwargs)
        except NetlinkError as err:
            _ignore(err, errno.EEXIST)

    def addresses(self, index: int) -> list[IPInterface]:
        out: list[IPInterface] = []
        for msg in self._ipr.get_addr(index=index):
            addr = msg.get_attr("IFA_ADDRESS")
            if addr:
                out.append(ipaddress.ip_interface(f"{addr}/{msg['prefixlen']}"))
        return out

    def add_route(self, dst: IPNetwork, gw: IPAddress | None, index: int) -> None:
        # RTPROT_BOOT, what `ip route add` and the reference plugins use when no protocol is given.
        kwargs: dict[str, Any] = {"dst": str(dst), "oif": index, "proto": RTPROT_BOOT}
        if gw is not None:
            kwargs["gateway"] = str(gw)
        try:
            self._ipr.route("add", **kwargs)
        except NetlinkError as err:
            _ignore(err, errno.EEXIST)

    def routes(self) -> list[RouteEntry]:
        out: list[RouteEntry] = []
        for family in (socket.AF_INET, socket.AF_INET6):
            for msg in self._ipr.get_routes(family=family, table=RT_TABLE_MAIN):
                dst = msg.get_attr("RTA_DST")
                zero = "0.0.0.0" if family == socket.AF_INET else "::"
                gw = msg.get_attr("RTA_GATEWAY")
                out.append(
                    RouteEntry(
                        dst=ipaddress.ip_network(f"{dst or zero}/{msg['dst_len']}", strict=False),
                        gw=ipaddress.ip_address(gw) if gw else None,
                        index=msg.get_attr("RTA_OIF"),
                    )
                )
        return out

    def close(self) -> None:
        self._ipr.close()

    def detach(self) -> IPRoute:
        return self._ipr


class _SharedHost(PyRoute2Netlink):
    """A host handle kept open for the thread that made it; close() leaves it open."""

    def close(self) -> None:
        pass

    def really_close(self) -> None:
        super().close()


def _iproute(fileno: int | None = None) -> IPRoute:
    # nlm_echo: the kernel answers RTM_NEWLINK with the new link, sparing a lookup per ADD.
    # groups=0: no multicast subscriptions; a cached handle would otherwise queue every link/addr/
    # route event of the host between calls.
    return IPRoute(fileno=fileno, nlm_echo=True, groups=0)


class PyRoute2Opener:
    """Opens handles on the host side (this process's netns, or `host_netns` when given: tests and
    benchmarks run the "host" in a namespace of their own) and in pod namespaces.

    `shared_host()` keeps one host handle per thread (pyroute2 keeps per-thread state in each
    IPRoute), saving a socket and an event loop per call in long-lived worker threads; the thread
    that made it closes it with `close_shared()`.
    """

    def __init__(self, host_netns: str | None = None) -> None:
        self._host_netns = host_netns
        self._local = threading.local()

    def host(self) -> Netlink:
        if self._host_netns is None:
            return PyRoute2Netlink(_iproute())
        fd = os.open(self._host_netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return self.netns(fd)
        finally:
            os.close(fd)

    def shared_host(self) -> Netlink:
        handle: Netlink | None = getattr(self._local, "host", None)
        if handle is None:
            opened = self.host()
            assert isinstance(opened, PyRoute2Netlink)
            handle = self._local.host = _SharedHost(opened.detach())
        return handle

    def close_shared(self) -> None:
        handle: _SharedHost | None = getattr(self._local, "host", None)
        if handle is not None:
            del self._local.host
            handle.really_close()

    def netns(self, fd: int) -> Netlink:
        return PyRoute2Netlink(_iproute(netlink_socket_in(fd).detach()))


_: NetlinkOpener = PyRoute2Opener()
