"""iptables rendering, proven mostly by walking simulated packets through the rendered rules."""

from __future__ import annotations

import dataclasses
import random

import pytest

from netproxy.config import ProxyConfig
from netproxy.iptables.render import port_rules, render
from netproxy.model import DesiredState
from netproxy.naming import endpoint_chain, service_chain
from netproxy.testing import FakeIptables, Outcome
from netproxy.testing.objects import endpoint_slice, service
from tests.unit.netproxy.scenario import CFG, NODE_IP, backend_on, dnat_share, state_of, synced, where

WEB = service("web", "10.96.0.10", type="NodePort", ports=[{"name": "http", "port": 80, "nodePort": 30080}])
WEB_EPS = endpoint_slice("web", ["10.1.0.1", "10.1.0.2", "10.1.0.3"])


def test_golden_rules_of_one_clusterip_port() -> None:
    state = state_of([service("one", "10.96.0.5"), endpoint_slice("one", ["10.1.0.7"])])
    ((port, eps),) = list(state.all_ports())
    rules = port_rules(port, eps, ProxyConfig(node_name="n"))
    svc, sep = service_chain(port.name), endpoint_chain(port.name, eps[0])
    assert rules.nat_services == [
        f'-A KUBE-SERVICES -m comment --comment "default/one:http/TCP cluster IP" -d 10.96.0.5/32 '
        f"-p tcp -m tcp --dport 80 -j {svc}"
    ]
    assert rules.chains == {
        sep: [f"-A {sep} -p tcp -j DNAT --to-destination 10.1.0.7:8080"],
        svc: [f"-A {svc} -j {sep}"],
    }
    assert rules.filter_services == rules.filter_external == rules.nat_nodeports == []


def test_golden_rules_without_endpoint_chains_dnat_from_the_service_chain() -> None:
    svc_obj = service("one", "10.96.0.5", sessionAffinity="ClientIP")
    state = state_of([svc_obj, endpoint_slice("one", ["10.1.0.7", "10.1.0.8"])])
    ((port, eps),) = list(state.all_ports())
    rules = port_rules(port, eps, ProxyConfig(node_name="n"), endpoint_chains=False)
    svc = service_chain(port.name)
    sep7, sep8 = (endpoint_chain(port.name, e) for e in eps)
    assert rules.chains == {
        svc: [
            f"-A {svc} -p tcp -m recent --name {sep7} --update --seconds 10800 --reap -j DNAT "
            "--to-destination 10.1.0.7:8080",
            f"-A {svc} -p tcp -m recent --name {sep8} --update --seconds 10800 --reap -j DNAT "
            "--to-destination 10.1.0.8:8080",
            f"-A {svc} -m statistic --mode random --probability 0.5000000000 -p tcp -m recent --name {sep7} --set "
            "-j DNAT --to-destination 10.1.0.7:8080",
            f"-A {svc} -p tcp -m recent --name {sep8} --set -j DNAT --to-destination 10.1.0.8:8080",
        ]
    }


def test_clusterip_spreads_evenly_over_endpoints() -> None:
    fake = synced([WEB, WEB_EPS])
    shares = dnat_share(where(fake, "10.96.0.10", src="10.1.5.5"))
    assert shares == {"10.1.0.1:8080": 0.333333, "10.1.0.2:8080": 0.333333, "10.1.0.3:8080": 0.333333}
    assert all(not o.masquerade for o in where(fake, "10.96.0.10", src="10.1.5.5"))  # pod source: no SNAT
    assert all(o.masquerade for o in where(fake, "10.96.0.10", src="192.168.1.50"))  # off-cluster: SNAT


def test_statistic_probabilities_are_one_over_remaining() -> None:
    text = render(state_of([WEB, WEB_EPS]), CFG)
    probs = [line.split("--probability ")[1].split()[0] for line in text.splitlines() if "--probability" in line]
    assert probs == ["0.3333333333", "0.5000000000"]


def test_named_target_ports_map_each_service_port_to_its_slice_port() -> None:
    svc = service(
        "multi",
        "10.96.0.20",
        [{"name": "web", "port": 80, "targetPort": "http"}, {"name": "dns", "port": 53, "protocol": "UDP"}],
    )
    slc = endpoint_slice(
        "multi", ["10.1.0.1"], [{"name": "web", "port": 8080}, {"name": "dns", "port": 5353, "protocol": "UDP"}]
    )
    fake = synced([svc, slc])
    assert dnat_share(where(fake, "10.96.0.20", 80)) == {"10.1.0.1:8080": 1.0}
    assert dnat_share(where(fake, "10.96.0.20", 53, proto="udp")) == {"10.1.0.1:5353": 1.0}
    assert dnat_share(where(fake, "10.96.0.20", 53)) == {None: 1.0}  # TCP/53 is not a service port


def test_service_without_endpoints_is_rejected_not_blackholed() -> None:
    fake = synced([WEB])
    assert where(fake, "10.96.0.10") == {Outcome("REJECT"): 1.0}
    assert where(fake, "10.96.0.10", local=True) == {Outcome("REJECT"): 1.0}
    assert where(fake, NODE_IP, 30080) == {Outcome("REJECT"): 1.0}


def test_nodeport_answers_on_node_address_and_localhost_with_snat() -> None:
    fake = synced([WEB, WEB_EPS])
    for dst, local in ((NODE_IP, False), ("127.0.0.1", True), (NODE_IP, True)):
        outcomes = where(fake, dst, 30080, local=local)
        assert sum(outcomes.values()) == pytest.approx(1.0)
        assert {o.dnat for o in outcomes} == {"10.1.0.1:8080", "10.1.0.2:8080", "10.1.0.3:8080"}
        assert all(o.masquerade for o in outcomes)
    assert where(fake, "192.168.1.99", 30080) == {Outcome("ACCEPT"): 1.0}  # not a node address


def test_node_ip_flag_limits_nodeports_to_those_addresses() -> None:
    cfg = ProxyConfig(node_name="node-a", node_ips=("192.168.1.2",))
    fake = synced([WEB, WEB_EPS], cfg)
    assert dnat_share(where(fake, NODE_IP, 30080)) == {None: 1.0}
    assert None not in dnat_share(where(fake, "192.168.1.2", 30080))
    assert None not in dnat_share(where(fake, "127.0.0.1", 30080, local=True))


def test_client_ip_affinity_sticks_after_first_choice() -> None:
    svc = service(
        "sticky", "10.96.0.30", sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}}
    )
    fake = synced([svc, endpoint_slice("sticky", ["10.1.0.1", "10.1.0.2"])])
    first = where(fake, "10.96.0.30")
    assert len(first) == 2
    chosen = next(iter(first))
    assert len(chosen.recent) == 1  # the choice was recorded in a `recent` list
    again = where(fake, "10.96.0.30", recent=[(next(iter(chosen.recent)), "192.168.1.50")])
    assert dnat_share(again) == {chosen.dnat: 1.0}
    assert "--rcheck --seconds 60 --reap" in render(state_of([svc, endpoint_slice("sticky", ["10.1.0.1"])]), CFG)


def test_external_policy_local_keeps_source_and_uses_local_endpoints() -> None:
    svc = service(
        "loc",
        "10.96.0.40",
        type="NodePort",
        ports=[{"name": "http", "port": 80, "nodePort": 30040}],
        externalTrafficPolicy="Local",
    )
    slc = endpoint_slice("loc", ["10.1.0.1", "10.2.0.1"], nodes=["node-a", "node-b"])
    fake = synced([svc, slc])
    external = where(fake, NODE_IP, 30040)
    assert external == {Outcome("ACCEPT", "10.1.0.1:8080", masquerade=False): 1.0}
    from_pod = dnat_share(where(fake, NODE_IP, 30040, src="10.1.9.9"))
    assert set(from_pod) == {"10.1.0.1:8080", "10.2.0.1:8080"}
    from_node = where(fake, "127.0.0.1", 30040, src="127.0.0.1", local=True)
    assert all(o.masquerade for o in from_node)


def test_external_policy_local_without_local_endpoints_drops() -> None:
    svc = service(
        "loc",
        "10.96.0.40",
        type="NodePort",
        ports=[{"name": "http", "port": 80, "nodePort": 30040}],
        externalTrafficPolicy="Local",
    )
    fake = synced([svc, endpoint_slice("loc", ["10.2.0.1"], node_name="node-b")])
    assert where(fake, NODE_IP, 30040) == {Outcome("DROP"): 1.0}
    assert dnat_share(where(fake, "10.96.0.40")) == {"10.2.0.1:8080": 1.0}  # ClusterIP still works


def test_internal_policy_local_uses_only_local_endpoints() -> None:
    svc = service("itp", "10.96.0.50", internalTrafficPolicy="Local")
    fake = synced([svc, endpoint_slice("itp", ["10.1.0.1", "10.2.0.1"], nodes=["node-a", "node-b"])])
    assert dnat_share(where(fake, "10.96.0.50")) == {"10.1.0.1:8080": 1.0}
    fake = synced([svc, endpoint_slice("itp", ["10.2.0.1"], node_name="node-b")])
    assert where(fake, "10.96.0.50") == {Outcome("REJECT"): 1.0}


def test_hairpin_connection_to_itself_is_masqueraded() -> None:
    fake = synced([WEB, endpoint_slice("web", ["10.1.0.1"])])
    assert where(fake, "10.96.0.10", src="10.1.0.1") == {Outcome("ACCEPT", "10.1.0.1:8080", masquerade=True): 1.0}


def test_external_and_load_balancer_ips_reach_endpoints() -> None:
    svc = service(
        "lb",
        "10.96.0.60",
        type="LoadBalancer",
        externalIPs=["192.0.2.10"],
        ports=[{"name": "http", "port": 80, "nodePort": 30060}],
    )
    svc["status"] = {"loadBalancer": {"ingress": [{"ip": "198.51.100.1"}]}}
    fake = synced([svc, endpoint_slice("lb", ["10.1.0.1"])])
    for dst in ("192.0.2.10", "198.51.100.1"):
        assert where(fake, dst) == {Outcome("ACCEPT", "10.1.0.1:8080", masquerade=True): 1.0}


def test_terminating_endpoints_serve_only_when_nothing_is_ready() -> None:
    draining = endpoint_slice("web", ["10.1.0.9"], ready=False, serving=True, terminating=True, name="web-old")
    fake = synced([WEB, WEB_EPS, draining])
    assert "10.1.0.9:8080" not in dnat_share(where(fake, "10.96.0.10"))
    fake = synced([WEB, draining])
    assert dnat_share(where(fake, "10.96.0.10")) == {"10.1.0.9:8080": 1.0}


def test_full_sync_deletes_stale_chains_and_leaves_foreign_rules() -> None:
    fake = FakeIptables()
    foreign = "-s 172.17.0.0/16 -j MASQUERADE"
    fake.tables["nat"]["POSTROUTING"].append(foreign)
    fake.tables["nat"]["DOCKER"] = ["-j RETURN"]
    fake.tables["nat"]["PREROUTING"] = ["-j DOCKER"]
    fake.tables["nat"]["KUBE-SVC-LEFTOVERFROMOLD"] = ["-j RETURN"]
    backend = backend_on(fake)
    backend.sync(state_of([WEB, WEB_EPS]), previous=DesiredState(), changed=None)
    assert "KUBE-SVC-LEFTOVERFROMOLD" not in fake.tables["nat"]
    assert fake.tables["nat"]["DOCKER"] == ["-j RETURN"]
    assert "-j DOCKER" in fake.tables["nat"]["PREROUTING"]
    assert foreign in fake.tables["nat"]["POSTROUTING"]
    backend.sync(state_of([WEB, WEB_EPS]), previous=DesiredState(), changed=None)
    restarted = backend_on(fake)  # reads the kernel's rules: inserts no second jump
    restarted.sync(state_of([WEB, WEB_EPS]), previous=DesiredState(), changed=None)
    assert "-I " not in fake.restores[-1]
    jump = '-m comment --comment "tinykube service portals" -j KUBE-SERVICES'
    assert fake.tables["nat"]["PREROUTING"].count(jump) == 1
    assert fake.tables["nat"]["PREROUTING"][0] == jump  # ours first, theirs after


def test_endpoint_change_rewrites_only_that_services_chains() -> None:
    other = service("other", "10.96.0.70")
    before = state_of([WEB, WEB_EPS, other, endpoint_slice("other", ["10.1.1.1"])])
    after = state_of(
        [WEB, endpoint_slice("web", ["10.1.0.1", "10.1.0.4"]), other, endpoint_slice("other", ["10.1.1.1"])]
    )
    text = render(after, CFG, changed={"default/web"}, previous=before)
    assert "KUBE-SERVICES" not in text  # dispatch unchanged: not rewritten
    assert "*filter" not in text
    assert service_chain(next(p for p, _ in after.ports("default/other")).name) not in text
    web = next(p for p, _ in after.ports("default/web")).name
    stale = {
        endpoint_chain(web, e)
        for _, eps in before.ports("default/web")
        for e in eps
        if e.ip in ("10.1.0.2", "10.1.0.3")
    }
    assert {line[3:] for line in text.splitlines() if line.startswith("-X ")} == stale


def test_losing_all_endpoints_rewrites_dispatch_to_reject() -> None:
    before, after = state_of([WEB, WEB_EPS]), state_of([WEB])
    text = render(after, CFG, changed={"default/web"}, previous=before)
    assert "*filter" in text
    assert "has no endpoints" in text


def _random_world(rng: random.Random, n: int) -> list[dict]:
    objs: list[dict] = []
    for i in range(n):
        if rng.random() < 0.2:
            continue
        kind = rng.choice(["ClusterIP", "NodePort"])
        extra = {"sessionAffinity": "ClientIP"} if rng.random() < 0.2 else {}
        ports = [{"name": "p", "port": 80 + i % 3, **({"nodePort": 30000 + i} if kind == "NodePort" else {})}]
        objs.append(service(f"s{i}", f"10.96.1.{i}", ports, type=kind, **extra))
        ips = [f"10.1.{i}.{j}" for j in range(rng.randint(0, 4))]
        objs.append(
            endpoint_slice(
                f"s{i}", ips, [{"name": "p", "port": 8080}], nodes=[rng.choice(["node-a", "node-b"]) for _ in ips]
            )
        )
    return objs


@pytest.mark.parametrize("endpoint_chains_max", [20_000, 0])
@pytest.mark.parametrize("seed", range(5))
def test_partial_syncs_end_where_a_full_sync_would(seed: int, endpoint_chains_max: int) -> None:
    rng = random.Random(seed)
    config = dataclasses.replace(CFG, endpoint_chains_max=endpoint_chains_max)
    fake = FakeIptables()
    backend = backend_on(fake, config)
    previous = DesiredState()
    for _ in range(6):
        state = state_of(_random_world(rng, 12))
        names = set(previous.services) | set(state.services) | set(previous.endpoints) | set(state.endpoints)
        changed = {n for n in names if list(previous.ports(n)) != list(state.ports(n))}
        backend.sync(state, previous=previous, changed=None if previous == DesiredState() else changed)
        previous = state
    reference = FakeIptables()
    backend_on(reference, config).sync(previous, previous=DesiredState(), changed=None)
    assert fake.tables == reference.tables
    assert fake.ipsets.sets == reference.ipsets.sets
