"""Element edits written over netlink leave the kernel exactly where `nft -f` of the same change
leaves it (two node namespaces, the same syncs, `nft list table` compared)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from netproxy.config import ProxyConfig
from netproxy.nftables.backend import NftablesBackend
from netproxy.nftables.elements import NetlinkElements
from netproxy.nftables.kernel import NftTool
from netproxy.nftables.render import TABLE
from netproxy.proxier import Proxier
from netproxy.testing import FakeConntrack, FakeEvents
from netproxy.testing.objects import endpoint_slice, service
from tests.support.namespaces import NetNS
from tinykube.lab.nsthread import NetnsThread

CONFIG = ProxyConfig(node_name="node-a", cluster_cidr="10.1.0.0/16")
PORTS = [{"name": "http", "port": 80, "targetPort": 8080}, {"name": "dns", "port": 53, "protocol": "UDP"}]
SLICE_PORTS = [{"name": "http", "port": 8080}, {"name": "dns", "port": 5353, "protocol": "UDP"}]


class CountingTool(NftTool):
    runs = 0

    def apply(self, chunks: str | Iterable[str]) -> None:
        self.runs += 1
        super().apply(chunks)


def _slices(addresses: list[str]) -> dict:
    return endpoint_slice("web", addresses, SLICE_PORTS)


def test_netlink_element_edits_equal_nft_edits(netns_factory: Callable[[str], NetNS]) -> None:
    by_text, by_netlink = netns_factory("tkn"), netns_factory("tkn")
    with NetnsThread(by_netlink.path) as thread:
        writer = thread.call(lambda: NetlinkElements(TABLE))
    try:
        text_proxy = Proxier(NftablesBackend(NftTool(["ip", "netns", "exec", by_text.name]), CONFIG), CONFIG,
                             conntrack=FakeConntrack(), events=FakeEvents())  # fmt: skip
        tool = CountingTool(["ip", "netns", "exec", by_netlink.name])
        netlink_proxy = Proxier(NftablesBackend(tool, CONFIG, elements=writer), CONFIG,
                                conntrack=FakeConntrack(), events=FakeEvents())  # fmt: skip
        steps = [
            ["10.1.0.1", "10.1.0.2", "10.1.0.3"],
            ["10.1.0.1", "10.1.0.4", "10.1.0.3"],  # one replaced
            ["10.1.0.5"],  # fewer
            ["10.1.0.5", "10.1.0.6", "10.1.0.7", "10.1.0.8"],  # more
        ]
        for proxy in (text_proxy, netlink_proxy):
            proxy.on_service(service("web", "10.96.0.10", PORTS))
        for n, addresses in enumerate(steps):
            for proxy in (text_proxy, netlink_proxy):
                proxy.on_slice(_slices(addresses))
                result = proxy.sync_once()
                assert result.full == (n == 0)
                assert not result.recovered
            listing = [ns.run(["nft", "list", "table", "ip", TABLE]).stdout for ns in (by_text, by_netlink)]
            assert listing[0] == listing[1], addresses
            assert "10.1.0.5 . 8080" in listing[1] or n < 2
        assert tool.runs == 1  # the full sync; every endpoint change went over netlink
    finally:
        writer.close()
