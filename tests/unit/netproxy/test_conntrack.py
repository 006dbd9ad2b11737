from __future__ import annotations

from netproxy.conntrack import filter_args, stale_filters
from netproxy.interfaces import ConntrackFilter
from netproxy.testing.objects import endpoint_slice, service
from tests.unit.netproxy.scenario import state_of

DNS = service("dns", "10.96.0.53", [{"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053}], type="NodePort")
DNS_PORTS = [{"name": "dns", "port": 5353, "protocol": "UDP"}]


def test_removed_udp_endpoint_yields_filters_for_each_destination() -> None:
    before = state_of([DNS, endpoint_slice("dns", ["10.1.0.1", "10.1.0.2"], DNS_PORTS)])
    after = state_of([DNS, endpoint_slice("dns", ["10.1.0.1"], DNS_PORTS)])
    assert stale_filters(before, after, {"default/dns"}, "node-a") == [
        ConntrackFilter("udp", orig_dst="10.96.0.53", orig_dport=53, dst_nat="10.1.0.2"),
        ConntrackFilter("udp", orig_dport=30053, dst_nat="10.1.0.2"),
    ]


def test_tcp_endpoints_and_unchanged_services_need_no_cleanup() -> None:
    web = service("web", "10.96.0.10")
    before = state_of([web, endpoint_slice("web", ["10.1.0.1", "10.1.0.2"])])
    after = state_of([web, endpoint_slice("web", ["10.1.0.1"])])
    assert stale_filters(before, after, {"default/web"}, "node-a") == []
    dns = state_of([DNS, endpoint_slice("dns", ["10.1.0.1"], DNS_PORTS)])
    assert stale_filters(dns, dns, {"default/dns"}, "node-a") == []


def test_deleted_service_cleans_its_endpoints() -> None:
    before = state_of([DNS, endpoint_slice("dns", ["10.1.0.1"], DNS_PORTS)])
    flts = stale_filters(before, state_of([]), {"default/dns"}, "node-a")
    assert {f.dst_nat for f in flts} == {"10.1.0.1"}


def test_first_endpoint_clears_entries_made_while_there_was_none() -> None:
    before = state_of([DNS])
    after = state_of([DNS, endpoint_slice("dns", ["10.1.0.1"], DNS_PORTS)])
    assert stale_filters(before, after, {"default/dns"}, "node-a") == [
        ConntrackFilter("udp", orig_dst="10.96.0.53", orig_dport=53),
        ConntrackFilter("udp", orig_dport=30053),
    ]


def test_filter_args_match_the_conntrack_tool() -> None:
    flt = ConntrackFilter("udp", orig_dst="10.96.0.53", orig_dport=53, dst_nat="10.1.0.2")
    assert filter_args(flt) == [
        "-p",
        "udp",
        "--orig-dst",
        "10.96.0.53",
        "--orig-port-dst",
        "53",
        "--dst-nat",
        "10.1.0.2",
    ]
