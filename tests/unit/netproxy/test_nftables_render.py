from __future__ import annotations

from netproxy.config import ProxyConfig
from netproxy.model import DesiredState
from netproxy.naming import nft_endpoint_key, nft_service_chain
from netproxy.nftables.render import endpoint_map, port_rules, render
from netproxy.testing.objects import endpoint_slice, service
from tests.unit.netproxy.scenario import CFG, state_of

WEB = service("web", "10.96.0.10", type="NodePort", ports=[{"name": "http", "port": 80, "nodePort": 30080}])
WEB_EPS = endpoint_slice("web", ["10.1.0.1", "10.1.0.2", "10.1.0.3"])


def test_golden_rules_of_one_clusterip_port() -> None:
    state = state_of([service("one", "10.96.0.5"), endpoint_slice("one", ["10.1.0.7", "10.1.0.8"])])
    ((port, eps),) = list(state.all_ports())
    rules = port_rules(port, eps, ProxyConfig(node_name="n"))
    chain = nft_service_chain(port.name)
    hi, lo = nft_endpoint_key(chain)
    emap = endpoint_map("tcp", lo)
    assert rules.elements["service-ips"] == {"10.96.0.5 . tcp . 80": f"goto {chain}"}
    assert rules.elements[emap] == {  # each endpoint owns half of the 2^20 `numgen` values
        f"{hi} . {lo} . 0-524287": "10.1.0.7 . 8080",
        f"{hi} . {lo} . 524288-1048575": "10.1.0.8 . 8080",
    }
    assert rules.elements["hairpin"] == {"10.1.0.7 . 10.1.0.7": "", "10.1.0.8 . 10.1.0.8": ""}
    key = f"numgen random mod 1 offset {hi} . numgen random mod 1 offset {lo} . numgen random mod 1048576"
    assert rules.chains == {chain: [f"meta l4proto tcp dnat ip to {key} map @{emap}"]}


def test_full_sync_is_one_table_with_one_verdict_map_and_no_endpoint_chains() -> None:
    services = []
    for i in range(20):
        services += [service(f"s{i}", f"10.96.0.{i + 1}"), endpoint_slice(f"s{i}", [f"10.1.{i}.1", f"10.1.{i}.2"])]
    text = render(state_of(services), CFG)
    assert text.startswith("add table ip tinykube\ndelete table ip tinykube\ntable ip tinykube {")
    assert text.count("map service-ips {") == 1
    assert text.count("\tchain svc-") == 20
    assert "chain ep-" not in text
    assert "ip saddr {" not in text  # no anonymous sets or maps in rules: they make the nft tool slow
    assert "map {" not in text
    assert "type ipv4_addr . inet_proto . inet_service : verdict" in text


def test_no_endpoints_and_local_policy_verdicts() -> None:
    loc = service(
        "loc",
        "10.96.0.40",
        type="NodePort",
        ports=[{"name": "http", "port": 80, "nodePort": 30040}],
        externalTrafficPolicy="Local",
    )
    text = render(state_of([WEB, loc, endpoint_slice("loc", ["10.2.0.1"], node_name="node-b")]), CFG)
    assert "10.96.0.10 . tcp . 80 : goto reject-chain" in text
    assert "tcp . 30080 : goto reject-chain" in text
    assert "tcp . 30040 : drop" in text  # Local policy, no local endpoint


def test_affinity_uses_per_endpoint_chains_with_timeout_sets() -> None:
    svc = service(
        "sticky", "10.96.0.30", sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}}
    )
    text = render(state_of([svc, endpoint_slice("sticky", ["10.1.0.1", "10.1.0.2"])]), CFG)
    assert text.count("flags dynamic,timeout; timeout 60s;") == 2
    assert text.count("update @aff-") == 2
    assert "numgen random mod 2 0 goto ep-10-1-0-1-8080-" in text


def test_replacing_an_endpoint_edits_map_elements_only() -> None:
    other = [service("other", "10.96.0.70"), endpoint_slice("other", ["10.1.1.1"])]
    before = state_of([WEB, WEB_EPS, *other])
    after = state_of([WEB, endpoint_slice("web", ["10.1.0.1", "10.1.0.2", "10.1.0.4"]), *other])
    text = render(after, CFG, changed={"default/web"}, previous=before)
    hi, lo = nft_endpoint_key(nft_service_chain(next(p for p, _ in after.ports("default/web")).name))
    emap = endpoint_map("tcp", lo)
    assert text.splitlines() == [
        f"delete element ip tinykube {emap} {{ {hi} . {lo} . 699050-1048575 }}",
        "add element ip tinykube hairpin { 10.1.0.4 . 10.1.0.4 }",  # 10.1.0.3's pair stays: harmless
        f"add element ip tinykube {emap} {{ {hi} . {lo} . 699050-1048575 : 10.1.0.4 . 8080 }}",
    ]


def test_endpoint_count_change_edits_map_elements_only() -> None:
    other = [service("other", "10.96.0.70"), endpoint_slice("other", ["10.1.1.1"])]
    before = state_of([WEB, WEB_EPS, *other])
    after = state_of([WEB, endpoint_slice("web", ["10.1.0.1", "10.1.0.4"]), *other])
    text = render(after, CFG, changed={"default/web"}, previous=before)
    hi, lo = nft_endpoint_key(nft_service_chain(next(p for p, _ in after.ports("default/web")).name))
    emap = endpoint_map("tcp", lo)
    stale = f"{hi} . {lo} . 0-349524, {hi} . {lo} . 349525-699049, {hi} . {lo} . 699050-1048575"
    fresh = f"{hi} . {lo} . 0-524287 : 10.1.0.1 . 8080, {hi} . {lo} . 524288-1048575 : 10.1.0.4 . 8080"
    assert text.splitlines() == [
        f"delete element ip tinykube {emap} {{ {stale} }}",
        "add element ip tinykube hairpin { 10.1.0.4 . 10.1.0.4 }",
        f"add element ip tinykube {emap} {{ {fresh} }}",
    ]


def test_new_and_removed_services_change_map_elements_only_for_them() -> None:
    before = state_of([WEB, WEB_EPS])
    after = state_of([service("new", "10.96.0.80"), endpoint_slice("new", ["10.1.2.1"])])
    text = render(after, CFG, changed={"default/web", "default/new"}, previous=before)
    assert "delete element ip tinykube service-ips { 10.96.0.10 . tcp . 80 }" in text
    assert "delete element ip tinykube service-nodeports { tcp . 30080 }" in text
    assert "add element ip tinykube service-ips { 10.96.0.80 . tcp . 80 : goto svc-default-new-" in text
    lines = text.splitlines()
    first_delete_chain = next(i for i, line in enumerate(lines) if line.startswith("delete chain"))
    assert all(not line.startswith("delete element") for line in lines[first_delete_chain:])


def test_no_change_renders_nothing() -> None:
    state = state_of([WEB, WEB_EPS])
    assert render(state, CFG, changed={"default/web"}, previous=state) == ""
    assert render(DesiredState(), CFG, changed=set(), previous=DesiredState()) == ""
