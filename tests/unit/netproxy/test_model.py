from __future__ import annotations

import pytest

from netproxy.errors import InvalidObject
from netproxy.model import (
    DEFAULT_AFFINITY_TIMEOUT,
    Endpoint,
    ServicePort,
    ServicePortName,
    merge_slices,
    select_endpoints,
    service_ports,
    slice_endpoints,
    slice_service,
)
from netproxy.naming import IPTABLES_MAX_CHAIN, endpoint_chain, external_chain, local_chain, service_chain
from netproxy.testing.objects import endpoint_slice, service


def test_service_port_key_reads_ns_name_port_proto() -> None:
    (port,) = service_ports(service("web", "10.96.0.10"))
    assert str(port.name) == "default/web:http/TCP"
    assert port.cluster_ip == "10.96.0.10"
    assert (port.port, port.target_port, port.node_port) == (80, 8080, 0)
    assert port.session_affinity_timeout is None


def test_every_service_field_lands_in_the_model() -> None:
    svc = service(
        "lb",
        "10.96.0.20",
        [{"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053, "targetPort": "dns"}],
        type="LoadBalancer",
        externalIPs=["192.0.2.1", "2001:db8::1"],
        sessionAffinity="ClientIP",
        externalTrafficPolicy="Local",
        internalTrafficPolicy="Local",
        healthCheckNodePort=31000,
    )
    svc["status"] = {"loadBalancer": {"ingress": [{"ip": "198.51.100.7"}, {"hostname": "lb.example"}]}}
    (port,) = service_ports(svc)
    assert port.name == ServicePortName("default", "lb", "dns", "UDP")
    assert port.target_port == "dns"
    assert port.node_port == 30053
    assert port.external_ips == ("192.0.2.1",)  # IPv6 is skipped, not an error
    assert port.load_balancer_ips == ("198.51.100.7",)
    assert port.session_affinity_timeout == DEFAULT_AFFINITY_TIMEOUT
    assert port.external_policy_local
    assert port.internal_policy_local
    assert port.health_check_node_port == 31000


def test_external_policy_local_needs_an_external_address() -> None:
    (port,) = service_ports(service("c", "10.96.0.1", externalTrafficPolicy="Local"))
    assert not port.external_policy_local


def test_nodeport_of_a_clusterip_service_is_ignored() -> None:
    (port,) = service_ports(service("c", "10.96.0.1", [{"port": 80, "nodePort": 30000}]))
    assert port.node_port == 0


def test_headless_and_external_name_services_are_not_proxied() -> None:
    assert service_ports(service("h", "None")) == ()
    assert service_ports(service("x", None, type="ExternalName")) == ()


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda s: s["spec"].update(clusterIP="10.96.0.300", clusterIPs=["10.96.0.300"]), "not an IP address"),
        (lambda s: s["spec"]["ports"][0].update(port=70000), "spec.ports[0].port"),
        (lambda s: s["spec"]["ports"][0].update(protocol="ICMP"), "unsupported protocol"),
        (lambda s: s["spec"].update(type="Weird"), "unknown type"),
        (
            lambda s: s["spec"].update(
                sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 0}}
            ),
            "timeoutSeconds",
        ),
        (lambda s: s["spec"]["ports"].append(dict(s["spec"]["ports"][0])), "duplicate port"),
        (lambda s: s["spec"].update(externalIPs="1.2.3.4"), "must be a list"),
        (lambda s: s["spec"].update(sessionAffinity="ClientIP", sessionAffinityConfig="x"), "malformed object"),
        (lambda s: s["spec"]["ports"][0].update(targetPort=None), "targetPort"),
    ],
)
def test_invalid_service_raises_an_error_naming_the_object(mutate, reason) -> None:
    svc = service("bad", "10.96.0.10", namespace="team")
    mutate(svc)
    with pytest.raises(InvalidObject) as err:
        service_ports(svc)
    assert err.value.kind == "Service"
    assert err.value.key == "team/bad"
    assert reason in str(err.value)


def test_slice_endpoints_apply_condition_defaults() -> None:
    slc = endpoint_slice("web", ["10.1.0.1"], ready=None)
    ((key, (ep,)),) = slice_endpoints(slc).items()
    assert key == ("http", "TCP")
    assert (ep.ip, ep.port, ep.ready, ep.serving, ep.terminating, ep.node_name) == (
        "10.1.0.1",
        8080,
        True,
        True,
        False,
        "node-a",
    )
    assert slice_service(slc) == "default/web"


def test_slice_without_service_label_belongs_to_no_service() -> None:
    slc = endpoint_slice("web", ["10.1.0.1"])
    del slc["metadata"]["labels"]
    assert slice_service(slc) is None


def test_ipv6_slice_is_skipped_and_bad_address_is_invalid() -> None:
    slc = endpoint_slice("web", ["fd00::1"])
    slc["addressType"] = "IPv6"
    assert slice_endpoints(slc) == {}
    bad = endpoint_slice("web", ["10.1.0.999"], name="web-x")
    with pytest.raises(InvalidObject, match="EndpointSlice default/web-x"):
        slice_endpoints(bad)


def test_merge_slices_dedupes_and_sorts_by_address() -> None:
    a = slice_endpoints(endpoint_slice("web", ["10.1.0.10", "10.1.0.2"]))
    b = slice_endpoints(endpoint_slice("web", ["10.1.0.2", "10.1.0.3"], name="web-2"))
    merged = merge_slices([a, b])
    assert [e.ip for e in merged[("http", "TCP")]] == ["10.1.0.2", "10.1.0.3", "10.1.0.10"]


def _port(**kw: object) -> ServicePort:
    defaults: dict[str, object] = {"name": ServicePortName("d", "s", "", "TCP"), "cluster_ip": "10.96.0.1", "port": 80}
    return ServicePort(**{**defaults, **kw}, target_port=80)  # type: ignore[arg-type]


def test_selection_uses_ready_endpoints_and_traffic_policies() -> None:
    local = Endpoint("10.1.0.1", 80, node_name="me")
    remote = Endpoint("10.1.0.2", 80, node_name="other")
    not_ready = Endpoint("10.1.0.3", 80, ready=False, serving=False, node_name="me")
    sel = select_endpoints(_port(), [local, remote, not_ready], "me")
    assert sel.cluster == sel.external == (local, remote)
    assert sel.local == (local,)
    sel = select_endpoints(
        _port(internal_policy_local=True, node_port=30000, external_policy_local=True), [local, remote], "me"
    )
    assert sel.cluster == sel.external == (local,)
    assert sel.all_cluster == (local, remote)


def test_terminating_serving_endpoints_are_a_fallback_only() -> None:
    ready = Endpoint("10.1.0.1", 80)
    draining = Endpoint("10.1.0.2", 80, ready=False, serving=True, terminating=True)
    assert select_endpoints(_port(), [ready, draining], "n").cluster == (ready,)
    assert select_endpoints(_port(), [draining], "n").cluster == (draining,)


def test_chain_names_fit_iptables_limit_and_are_stable() -> None:
    spn = ServicePortName("a-very-long-namespace-name" * 3, "and-a-long-service-name" * 3, "port-name", "TCP")
    ep = Endpoint("10.1.0.1", 8080)
    names = [service_chain(spn), local_chain(spn), external_chain(spn), endpoint_chain(spn, ep)]
    assert all(len(n) <= IPTABLES_MAX_CHAIN for n in names)
    assert len(set(names)) == 4
    assert service_chain(spn) == service_chain(ServicePortName(spn.namespace, spn.name, spn.port, "TCP"))
    assert service_chain(spn) != service_chain(ServicePortName(spn.namespace, spn.name, spn.port, "UDP"))
    assert endpoint_chain(spn, ep) != endpoint_chain(spn, Endpoint("10.1.0.1", 8081))
