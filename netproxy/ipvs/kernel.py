"""The kernel side of the IPVS backend: virtual/real servers over generic netlink (read with
pyroute2's IPVS socket, written in batches by `batch.py`; never `ipvsadm` in the sync path), the holder
interface whose addresses make the kernel accept ClusterIPs as local (ipsets: `netproxy.ipset`). Narrow
on purpose: all decisions are made in `plan.py`.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Collection, Iterable, Mapping
from typing import Any, Protocol

from netproxy.errors import ApplyError
from netproxy.ipvs.batch import IP_VS_SVC_F_PERSISTENT, PROTOCOLS, BatchSender, address_message
from netproxy.ipvs.plan import (
    CurrentService,
    Operation,
    RealKey,
    RealServer,
    VirtualKey,
    VirtualServer,
)
from netproxy.netlink import RawNetlink

HOLDER = "kube-ipvs0"
PROTO_NAMES = {v: k for k, v in PROTOCOLS.items()}


class IPVSTables(Protocol):
    """Virtual and real servers of one network namespace."""

    def snapshot(self, keys: Collection[VirtualKey] | None = None) -> dict[VirtualKey, CurrentService]:
        """Services (all, or only `keys`) with their reals; reading reals costs one request per service."""
        ...

    def apply(self, ops: Iterable[Operation]) -> None: ...

    def close(self) -> None: ...


class AddressHolder(Protocol):
    """The local interface holding ClusterIPs (kube-proxy's `kube-ipvs0`)."""

    def sync(self, addresses: Iterable[str]) -> None:
        """Holds exactly `addresses` (full syncs: reads the link's addresses first)."""
        ...

    def update(self, add: Iterable[str], remove: Iterable[str]) -> None:
        """Adds and removes the given addresses only (partial syncs: nothing is read)."""
        ...

    def addresses(self) -> frozenset[str]: ...

    def close(self) -> None: ...


class NetlinkIPVS:
    """`IPVSTables` through pyroute2's IPVS generic-netlink socket (imported lazily: ~150 ms)."""

    def __init__(self) -> None:
        from pyroute2 import IPVS

        self._ipvs = IPVS()
        # pyroute2's generic-netlink sockets otherwise build and tear down an event loop, and rediscover
        # the IPVS family, on every request (~20 ms each under emulation); IPRoute keeps its loop the same way.
        self._ipvs.asyncore.local.keep_event_loop = True
        self._ipvs.service("dump")  # sets the socket up, which resolves the IPVS family id
        self._sender = BatchSender(family=int(self._ipvs.asyncore.prid))

    def close(self) -> None:
        self._sender.close()
        self._ipvs.close()

    def snapshot(self, keys: Collection[VirtualKey] | None = None) -> dict[VirtualKey, CurrentService]:
        """All services (one dump), or only `keys` (one get each: a partial sync at 10k services must
        not parse 10k service records to look at one)."""
        if keys is None:
            messages = list(self._ipvs.service("dump"))
        else:
            messages = [m for key in sorted(keys) if (m := self._get(key)) is not None]
        out: dict[VirtualKey, CurrentService] = {}
        for msg in messages:
            attrs = _attrs(msg, "IPVS_CMD_ATTR_SERVICE")
            if attrs.get("IPVS_SVC_ATTR_FWMARK"):
                continue  # firewall-mark services are not ours
            proto = PROTO_NAMES.get(attrs["IPVS_SVC_ATTR_PROTOCOL"])
            if proto is None:
                continue
            key = VirtualKey(str(attrs["IPVS_SVC_ATTR_ADDR"]), proto, int(attrs["IPVS_SVC_ATTR_PORT"]))
            flags = attrs.get("IPVS_SVC_ATTR_FLAGS") or {}
            persistent = bool(_flag_value(flags) & IP_VS_SVC_F_PERSISTENT)
            server = VirtualServer(
                key,
                str(attrs.get("IPVS_SVC_ATTR_SCHED_NAME", "")),
                int(attrs.get("IPVS_SVC_ATTR_TIMEOUT", 0)) if persistent else 0,
            )
            out[key] = CurrentService(server, self._reals(key))
        return out

    def _service(self, key: VirtualKey) -> Any:
        from pyroute2 import IPVSService

        return IPVSService(addr=key.address, port=key.port, protocol=PROTOCOLS[key.protocol])

    def _get(self, key: VirtualKey) -> Any:
        from pyroute2.netlink.exceptions import NetlinkError

        try:
            found = list(self._ipvs.service("get", service=self._service(key)))
        except NetlinkError as err:
            if err.code in (errno.ENOENT, errno.ESRCH):
                return None
            raise
        return found[0] if found else None

    def _reals(self, key: VirtualKey) -> dict[RealKey, RealServer]:
        reals: dict[RealKey, RealServer] = {}
        for dmsg in self._ipvs.dest("dump", service=self._service(key)):
            d = _attrs(dmsg, "IPVS_CMD_ATTR_DEST")
            rk = RealKey(str(d["IPVS_DEST_ATTR_ADDR"]), int(d["IPVS_DEST_ATTR_PORT"]))
            reals[rk] = RealServer(
                rk,
                int(d.get("IPVS_DEST_ATTR_WEIGHT", 0)),
                int(d.get("IPVS_DEST_ATTR_ACTIVE_CONNS", 0)),
                int(d.get("IPVS_DEST_ATTR_INACT_CONNS", 0)),
            )
        return reals

    def apply(self, ops: Iterable[Operation]) -> None:
        self._sender.apply(ops)


def _attrs(msg: Any, nla: str) -> dict[str, Any]:
    return dict(msg.get(nla)["attrs"])


def _flag_value(flags: Any) -> int:
    if isinstance(flags, Mapping):
        return int(flags.get("flags", 0))
    return int(flags or 0)


class HolderInterface:
    """kube-ipvs0: a dummy link, or, on kernels without the dummy driver, an empty bridge (both are
    local links that never forward anything). Kept down, as kube-proxy does: addresses on a down link
    are still local, and a down link answers no ARP for them."""

    def __init__(self, name: str = HOLDER) -> None:
        from pyroute2 import IPRoute

        self.name = name
        self._ip = IPRoute()
        self._link = RawNetlink(socket.NETLINK_ROUTE)
        self._index = self._ensure()

    def close(self) -> None:
        self._ip.close()
        self._link.close()

    def _ensure(self) -> int:
        from pyroute2.netlink.exceptions import NetlinkError

        found = self._ip.link_lookup(ifname=self.name)
        if found:
            return int(found[0])
        for kind in ("dummy", "bridge"):
            try:
                self._ip.link("add", ifname=self.name, kind=kind)
                break
            except NetlinkError as err:
                if err.code not in (errno.EOPNOTSUPP, errno.ENODEV, errno.ENOENT, errno.EINVAL):
                    raise
        else:
            raise ApplyError("ip-link", 1, f"cannot create {self.name}: neither dummy nor bridge links work")
        return int(self._ip.link_lookup(ifname=self.name)[0])

    def addresses(self) -> frozenset[str]:
        return frozenset(
            str(a.get_attr("IFA_ADDRESS")) for a in self._ip.get_addr(index=self._index, family=socket.AF_INET)
        )

    def sync(self, addresses: Iterable[str]) -> None:
        want = frozenset(str(ipaddress.IPv4Address(a)) for a in addresses)
        have = self.addresses()
        self.update(want - have, have - want)

    def update(self, add: Iterable[str], remove: Iterable[str]) -> None:
        """Adds then removes /32s in batches; an address already there (or already gone) is no error."""
        wanted = [(True, addr) for addr in sorted(add)] + [(False, addr) for addr in sorted(remove)]
        refused = self._link.request(wanted, lambda seq, w: address_message(seq, self._index, w[1], add=w[0]))
        for (adding, addr), code in refused:
            if code != (errno.EEXIST if adding else errno.EADDRNOTAVAIL):
                verb = "add" if adding else "delete"
                raise ApplyError("ip-address", code, f"{verb} {addr} on {self.name}: {errno.errorcode.get(code, code)}")
