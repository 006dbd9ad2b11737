"""IPVS planning, ipsets and rules, against stateful fakes (no root, no ip_vs needed)."""

from __future__ import annotations

import pytest

from netproxy.config import ProxyConfig
from netproxy.ipset import IPSET_NAME_MAX, LOOP_BACK, TEMP_SUFFIX, render
from netproxy.ipvs import ipsets, plan, rules
from netproxy.ipvs.backend import IPVSBackend
from netproxy.ipvs.testing import FakeHolder, FakeIPVSTables
from netproxy.model import DesiredState, merge_slices, service_ports, slice_endpoints


def svc(
    name: str,
    ip: str,
    *,
    port: int = 80,
    node_port: int = 0,
    affinity: bool = False,
    local: bool = False,
    proto: str = "TCP",
) -> dict:
    spec: dict = {
        "type": "NodePort" if node_port else "ClusterIP",
        "clusterIP": ip,
        "ports": [
            {
                "name": "http",
                "port": port,
                "targetPort": 8080,
                "protocol": proto,
                **({"nodePort": node_port} if node_port else {}),
            }
        ],
    }
    if affinity:
        spec["sessionAffinity"] = "ClientIP"
        spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 300}}
    if local:
        spec["externalTrafficPolicy"] = "Local"
    return {"metadata": {"namespace": "default", "name": name}, "spec": spec}


def eps(name: str, ips: list[str], *, node: str = "n1", proto: str = "TCP") -> dict:
    return {
        "metadata": {"namespace": "default", "name": f"{name}-abc", "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": proto}],
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True}, "nodeName": node} for ip in ips],
    }


def state(*pairs: tuple[dict, dict | None]) -> DesiredState:
    services = {f"default/{s['metadata']['name']}": service_ports(s) for s, _ in pairs}
    endpoints = {f"default/{s['metadata']['name']}": merge_slices([slice_endpoints(e)]) for s, e in pairs if e}
    return DesiredState(services=services, endpoints=endpoints)


CONFIG = ProxyConfig(node_name="n1", node_ips=("192.0.2.10",), cluster_cidr="10.244.0.0/16")


def test_cluster_ip_node_port_and_affinity_become_virtual_servers() -> None:
    s = state((svc("web", "10.96.0.10", node_port=30080, affinity=True), eps("web", ["10.244.1.2", "10.244.1.3"])))
    want = plan.desired(s, node_name="n1", node_ips=["192.0.2.10"])
    cluster = plan.VirtualKey("10.96.0.10", "TCP", 80)
    node = plan.VirtualKey("192.0.2.10", "TCP", 30080)
    assert set(want.services) == {cluster, node}
    assert want.services[cluster].server.persistence == 300
    assert want.services[cluster].reals == {plan.RealKey("10.244.1.2", 8080), plan.RealKey("10.244.1.3", 8080)}
    assert want.bound_addresses == {"10.96.0.10"}  # node addresses are already local


def test_external_policy_local_keeps_only_this_nodes_endpoints_for_node_ports() -> None:
    slice_ = eps("web", ["10.244.1.2"], node="n1")
    slice_["endpoints"].append({"addresses": ["10.244.2.2"], "conditions": {"ready": True}, "nodeName": "n2"})
    s = state((svc("web", "10.96.0.10", node_port=30080, local=True), slice_))
    want = plan.desired(s, node_name="n1", node_ips=["192.0.2.10"])
    assert want.services[plan.VirtualKey("192.0.2.10", "TCP", 30080)].reals == {plan.RealKey("10.244.1.2", 8080)}
    assert len(want.services[plan.VirtualKey("10.96.0.10", "TCP", 80)].reals) == 2


def test_unknown_scheduler_is_refused() -> None:
    with pytest.raises(ValueError, match="scheduler"):
        plan.desired(DesiredState(), node_name="n1", node_ips=[], scheduler="fastest")


def test_applying_the_plan_converges_and_a_second_plan_is_empty() -> None:
    tables = FakeIPVSTables()
    s = state((svc("a", "10.96.0.1"), eps("a", ["10.244.1.2"])), (svc("b", "10.96.0.2"), eps("b", ["10.244.1.3"])))
    want = plan.desired(s, node_name="n1", node_ips=[])
    tables.apply(plan.plan(want, tables.snapshot()))
    assert plan.plan(want, tables.snapshot()) == []
    # Removing service b deletes only b's virtual server.
    s2 = state((svc("a", "10.96.0.1"), eps("a", ["10.244.1.2"])))
    ops = plan.plan(plan.desired(s2, node_name="n1", node_ips=[]), tables.snapshot())
    assert ops == [plan.DeleteService(plan.VirtualKey("10.96.0.2", "TCP", 80))]


def test_removed_tcp_real_with_connections_is_drained_then_deleted() -> None:
    tables = FakeIPVSTables()
    key = plan.VirtualKey("10.96.0.1", "TCP", 80)
    before = plan.desired(
        state((svc("a", "10.96.0.1"), eps("a", ["10.244.1.2", "10.244.1.3"]))), node_name="n1", node_ips=[]
    )
    tables.apply(plan.plan(before, tables.snapshot()))
    tables.set_connections(key, "10.244.1.3", 8080, active=2)
    after = plan.desired(state((svc("a", "10.96.0.1"), eps("a", ["10.244.1.2"]))), node_name="n1", node_ips=[])
    ops = plan.plan(after, tables.snapshot())
    assert ops == [plan.EditReal(key, plan.RealKey("10.244.1.3", 8080), 0)]
    tables.apply(ops)
    assert plan.draining_keys(tables.snapshot(), after) == {key}
    assert plan.plan(after, tables.snapshot()) == []  # still busy: nothing to do yet
    tables.set_connections(key, "10.244.1.3", 8080, active=0)
    assert plan.plan(after, tables.snapshot()) == [plan.DeleteReal(key, plan.RealKey("10.244.1.3", 8080))]


def test_udp_reals_are_removed_at_once() -> None:
    tables = FakeIPVSTables()
    key = plan.VirtualKey("10.96.0.53", "UDP", 53)
    s1 = state((svc("dns", "10.96.0.53", port=53, proto="UDP"), eps("dns", ["10.244.1.2", "10.244.1.3"], proto="UDP")))
    tables.apply(plan.plan(plan.desired(s1, node_name="n1", node_ips=[]), tables.snapshot()))
    tables.set_connections(key, "10.244.1.3", 8080, active=1)
    s2 = state((svc("dns", "10.96.0.53", port=53, proto="UDP"), eps("dns", ["10.244.1.2"], proto="UDP")))
    ops = plan.plan(plan.desired(s2, node_name="n1", node_ips=[]), tables.snapshot())
    assert ops == [plan.DeleteReal(key, plan.RealKey("10.244.1.3", 8080))]


def test_ipsets_hold_cluster_ips_node_ports_and_hairpin_entries() -> None:
    s = state((svc("web", "10.96.0.10", node_port=30080, local=True), eps("web", ["10.244.1.2"])))
    members = ipsets.entries(s, node_name="n1")
    assert members[ipsets.CLUSTER_IP] == {"10.96.0.10,tcp:80"}
    assert members[ipsets.NODE_PORT["TCP"]] == {"30080"}
    assert members[ipsets.NODE_PORT_LOCAL["TCP"]] == {"30080"}
    assert members[LOOP_BACK.name] == {"10.244.1.2,tcp:8080,10.244.1.2"}
    text = render(ipsets.SPECS, members)
    # Filled under a temporary name and swapped in, so the live set is never half-filled.
    assert text.index("add KUBE-CLUSTER-IP-N 10.96.0.10,tcp:80") < text.index("swap KUBE-CLUSTER-IP-N KUBE-CLUSTER-IP")
    assert all(len(spec.name + TEMP_SUFFIX) <= IPSET_NAME_MAX for spec in ipsets.SPECS)


def test_iptables_part_is_constant_in_the_number_of_services() -> None:
    text = rules.render(CONFIG)
    assert "! -s 10.244.0.0/16 -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ" in text
    assert "-A KUBE-POSTROUTING -m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE" in text
    assert text.count("COMMIT") == 2


def test_backend_sync_programs_fakes_and_skips_unchanged_ipsets() -> None:
    tables, holder = FakeIPVSTables(), FakeHolder()
    restored: list[str] = []
    backend = IPVSBackend(CONFIG, tables=tables, holder=holder, apply_ipsets=restored.append, iptables=None)
    s = state((svc("web", "10.96.0.10"), eps("web", ["10.244.1.2"])))
    first = backend.reconcile(s)
    assert first.operations == 2
    assert holder.addresses() == {"10.96.0.10"}
    assert len(restored) == 1
    again = backend.reconcile(s, changed=set())
    assert again.operations == 0
    assert len(restored) == 1  # members unchanged: no ipset restore


def test_backend_speaks_the_proxy_backend_protocol() -> None:
    from netproxy.interfaces import Backend

    tables = FakeIPVSTables()
    backend: Backend = IPVSBackend(
        CONFIG, tables=tables, holder=FakeHolder(), apply_ipsets=lambda _: None, iptables=None
    )
    s = state((svc("web", "10.96.0.10"), eps("web", ["10.244.1.2"])))
    backend.sync(s, previous=DesiredState(), changed=None)
    backend.sync(s, previous=s, changed={"default/web"})
    assert set(tables.services) == {plan.VirtualKey("10.96.0.10", "TCP", 80)}
    assert backend.name == "ipvs"


def test_partial_sync_reads_and_plans_only_the_changed_services() -> None:
    tables = FakeIPVSTables()
    backend = IPVSBackend(CONFIG, tables=tables, holder=FakeHolder(), apply_ipsets=lambda _: None, iptables=None)
    s1 = state((svc("a", "10.96.0.1"), eps("a", ["10.244.1.2"])), (svc("b", "10.96.0.2"), eps("b", ["10.244.1.3"])))
    backend.reconcile(s1)
    # Something outside the proxy touches b's virtual server: a partial sync of a does not notice,
    # which proves it did not plan over b; the next full sync repairs it.
    b_key = plan.VirtualKey("10.96.0.2", "TCP", 80)
    tables.apply([plan.DeleteReal(b_key, plan.RealKey("10.244.1.3", 8080))])
    s2 = state((svc("a", "10.96.0.1"), eps("a", ["10.244.1.4"])), (svc("b", "10.96.0.2"), eps("b", ["10.244.1.3"])))
    result = backend.reconcile(s2, changed={"default/a"})
    a_key = plan.VirtualKey("10.96.0.1", "TCP", 80)
    assert set(tables.services[a_key].reals) == {plan.RealKey("10.244.1.4", 8080)}
    assert result.operations == 2  # add the new real, delete the old (idle) one
    assert not tables.services[b_key].reals
    backend.reconcile(s2)
    assert set(tables.services[b_key].reals) == {plan.RealKey("10.244.1.3", 8080)}


def test_partial_sync_deletes_the_virtual_servers_of_a_removed_service() -> None:
    tables = FakeIPVSTables()
    backend = IPVSBackend(CONFIG, tables=tables, holder=FakeHolder(), apply_ipsets=lambda _: None, iptables=None)
    backend.reconcile(state((svc("a", "10.96.0.1"), eps("a", ["10.244.1.2"])), (svc("b", "10.96.0.2"), None)))
    backend.reconcile(state((svc("a", "10.96.0.1"), eps("a", ["10.244.1.2"]))), changed={"default/b"})
    assert set(tables.services) == {plan.VirtualKey("10.96.0.1", "TCP", 80)}


def test_partial_sync_edits_only_changed_ipset_members() -> None:
    restored: list[str] = []
    backend = IPVSBackend(
        CONFIG, tables=FakeIPVSTables(), holder=FakeHolder(), apply_ipsets=restored.append, iptables=None
    )
    backend.reconcile(state((svc("a", "10.96.0.1"), eps("a", ["10.244.1.2"]))))
    backend.reconcile(state((svc("a", "10.96.0.1"), eps("a", ["10.244.1.3"]))), changed={"default/a"})
    assert restored[-1] == (
        "del KUBE-LOOP-BACK 10.244.1.2,tcp:8080,10.244.1.2 -exist\n"
        "add KUBE-LOOP-BACK 10.244.1.3,tcp:8080,10.244.1.3 -exist\n"
    )
    backend.reconcile(state((svc("a", "10.96.0.1"), eps("a", ["10.244.1.3"]))), changed={"default/a"})
    assert len(restored) == 2  # nothing changed: no ipset call at all


def test_members_and_addresses_shared_by_two_services_stay_until_both_are_gone() -> None:
    restored: list[str] = []
    holder = FakeHolder()
    backend = IPVSBackend(CONFIG, tables=FakeIPVSTables(), holder=holder, apply_ipsets=restored.append, iptables=None)
    # Two Services on one ClusterIP (different ports) with the same endpoint: shared holder address
    # and shared hairpin member.
    a = svc("a", "10.96.0.1", port=80)
    b = svc("b", "10.96.0.1", port=81)
    backend.reconcile(state((a, eps("a", ["10.244.1.2"])), (b, eps("b", ["10.244.1.2"]))))
    backend.reconcile(state((b, eps("b", ["10.244.1.2"]))), changed={"default/a"})
    assert holder.addresses() == {"10.96.0.1"}
    assert "del KUBE-LOOP-BACK" not in restored[-1]
    assert restored[-1] == "del KUBE-CLUSTER-IP 10.96.0.1,tcp:80 -exist\n"
    backend.reconcile(state(), changed={"default/b"})
    assert holder.addresses() == frozenset()
    assert "del KUBE-LOOP-BACK 10.244.1.2,tcp:8080,10.244.1.2 -exist" in restored[-1]
    assert holder.reads == 1  # only the first, full sync read the holder link


def test_ipvs_mode_on_a_kernel_without_ip_vs_is_a_clear_error(tmp_path) -> None:
    from netproxy.errors import NetproxyError
    from netproxy.ipvs.backend import create

    (tmp_path / "net/ipv4").mkdir(parents=True)
    with pytest.raises(NetproxyError, match="needs the kernel's ip_vs module"):
        create(CONFIG, proc_sys=tmp_path)
