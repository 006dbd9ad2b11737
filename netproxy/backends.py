"""The one place a proxy mode name becomes a backend."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from netproxy.config import ProxyConfig
from netproxy.errors import NetproxyError
from netproxy.interfaces import Backend
from netproxy.ipset import IpsetTool
from netproxy.iptables.backend import IptablesBackend
from netproxy.iptables.kernel import IptablesTools, detect_backend
from netproxy.nftables.backend import NftablesBackend
from netproxy.nftables.elements import NetlinkElements
from netproxy.nftables.kernel import NftTool
from netproxy.nftables.render import TABLE


def _iptables(config: ProxyConfig, prefix: Sequence[str]) -> Backend:
    return IptablesBackend(
        IptablesTools(detect_backend(prefix), prefix), config, apply_ipsets=IpsetTool(prefix).restore
    )


def _nftables(config: ProxyConfig, prefix: Sequence[str]) -> Backend:
    # The element writer's netlink socket acts where it is created: with a prefix the tool runs
    # elsewhere, and every change goes through it (labs that want both make the socket in the netns).
    return NftablesBackend(NftTool(prefix), config, elements=None if prefix else NetlinkElements(TABLE))


def _ipvs(config: ProxyConfig, prefix: Sequence[str]) -> Backend:
    if prefix:
        raise NetproxyError("the ipvs backend programs the calling thread's netns (netlink); it takes no prefix")
    from netproxy.ipvs.backend import create  # imports pyroute2 (~0.15-0.6 s): only when chosen

    return create(config)


BACKENDS: dict[str, Callable[[ProxyConfig, Sequence[str]], Backend]] = {
    "iptables": _iptables,
    "nftables": _nftables,
    "ipvs": _ipvs,
}


def make_backend(mode: str, config: ProxyConfig, prefix: Sequence[str] = ()) -> Backend:
    """`prefix` runs the kernel tools elsewhere, e.g. `ip netns exec NODE` (labs, tests, benchmarks)."""
    return BACKENDS[mode](config, prefix)
