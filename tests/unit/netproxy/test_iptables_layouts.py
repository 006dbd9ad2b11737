"""The two iptables layouts (per-endpoint KUBE-SEP-* chains, or DNAT from the KUBE-SVC-* chain) send every
packet to the same place; the backend switches between them with hysteresis and keeps the hairpin ipset
reference-counted."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import pytest

from netproxy.errors import ApplyError
from netproxy.ipset import LOOP_BACK
from netproxy.iptables.backend import wants_endpoint_chains
from netproxy.model import DesiredState
from netproxy.testing import FakeIptables, Outcome
from netproxy.testing.objects import endpoint_slice, service
from tests.unit.netproxy.scenario import CFG, NODE_IP, backend_on, state_of, synced, where

NO_ENDPOINT_CHAINS = dataclasses.replace(CFG, endpoint_chains_max=0)

WORLD: list[dict[str, Any]] = [
    service("web", "10.96.0.10", type="NodePort", ports=[{"name": "http", "port": 80, "nodePort": 30080}]),
    endpoint_slice("web", ["10.1.0.1", "10.1.0.2", "10.1.0.3"]),
    service("sticky", "10.96.0.20", sessionAffinity="ClientIP"),
    endpoint_slice("sticky", ["10.1.0.4", "10.1.0.5"]),
    service(
        "loc",
        "10.96.0.30",
        type="NodePort",
        ports=[{"name": "http", "port": 80, "nodePort": 30030}],
        externalTrafficPolicy="Local",
        externalIPs=["192.0.2.30"],
    ),
    endpoint_slice("loc", ["10.1.0.6", "10.2.0.6"], nodes=["node-a", "node-b"]),
    service("itp", "10.96.0.40", internalTrafficPolicy="Local"),
    endpoint_slice("itp", ["10.1.0.7", "10.2.0.7"], nodes=["node-a", "node-b"]),
    service("dns", "10.96.0.53", [{"name": "dns", "port": 53, "protocol": "UDP"}]),
    endpoint_slice("dns", ["10.1.0.8"], [{"name": "dns", "port": 5353, "protocol": "UDP"}]),
    service("empty", "10.96.0.60"),
]
PROBES = [
    # (destination, port, source, protocol, sent by a local process)
    *itertools.product(
        ["10.96.0.10", "10.96.0.20", "10.96.0.30", "10.96.0.40", "10.96.0.60"],
        [80],
        ["192.168.1.50", "10.1.9.9", "10.1.0.1", "10.1.0.4", "10.1.0.6", "10.1.0.7"],
        ["tcp"],
        [False],
    ),
    ("10.96.0.53", 53, "10.1.0.8", "udp", False),
    ("10.96.0.53", 53, "10.1.9.9", "udp", False),
    (NODE_IP, 30080, "192.168.1.50", "tcp", False),
    (NODE_IP, 30080, "10.1.0.2", "tcp", False),
    ("127.0.0.1", 30080, "127.0.0.1", "tcp", True),
    (NODE_IP, 30030, "192.168.1.50", "tcp", False),
    ("192.0.2.30", 80, "192.168.1.50", "tcp", False),
    ("10.96.0.10", 80, NODE_IP, "tcp", True),
]


def test_both_layouts_send_every_packet_to_the_same_place() -> None:
    with_chains, without = synced(WORLD), synced(WORLD, NO_ENDPOINT_CHAINS)
    assert any(c.startswith("KUBE-SEP-") for c in with_chains.tables["nat"])
    assert not any(c.startswith("KUBE-SEP-") for c in without.tables["nat"])
    for dst, port, src, proto, local in PROBES:
        expected = where(with_chains, dst, port, src=src, proto=proto, local=local)
        assert where(without, dst, port, src=src, proto=proto, local=local) == expected, (dst, port, src)
    hairpin = where(without, "10.96.0.10", src="10.1.0.1")
    assert {o.masquerade for o in hairpin if o.dnat == "10.1.0.1:8080"} == {True}
    assert {o.masquerade for o in hairpin if o.dnat != "10.1.0.1:8080"} == {False}


def test_affinity_without_endpoint_chains_recalls_the_first_choice() -> None:
    fake = synced(WORLD, NO_ENDPOINT_CHAINS)
    first = where(fake, "10.96.0.20")
    assert len(first) == 2
    for chosen in first:
        (name,) = chosen.recent
        again = where(fake, "10.96.0.20", recent=[(name, "192.168.1.50")])
        assert {o.dnat for o in again} == {chosen.dnat}


def test_hysteresis_keeps_a_cluster_at_the_limit_in_one_layout() -> None:
    assert wants_endpoint_chains(100, 100, current=None)
    assert not wants_endpoint_chains(101, 100, current=True)
    assert not wants_endpoint_chains(80, 100, current=False)  # not back until below 3/4 of the limit
    assert wants_endpoint_chains(74, 100, current=False)
    assert not wants_endpoint_chains(0, 0, current=None)  # 0: never


def _eps(n: int) -> dict[str, Any]:
    return endpoint_slice("web", [f"10.1.0.{i}" for i in range(1, n + 1)])


def _sep_chains(fake: FakeIptables) -> set[str]:
    return {c for c in fake.tables["nat"] if c.startswith("KUBE-SEP-")}


def test_crossing_the_limit_rewrites_every_chain_in_the_other_layout() -> None:
    fake = FakeIptables()
    backend = backend_on(fake, dataclasses.replace(CFG, endpoint_chains_max=4))
    svc = service("web", "10.96.0.10")
    previous = DesiredState()
    for n, chains in ((3, 3), (6, 0), (4, 0), (2, 2)):  # 4 >= 3/4 of the limit: stays without chains
        state = state_of([svc, _eps(n)])
        backend.sync(state, previous=previous, changed=None if n == 3 else {"default/web"})
        previous = state
        assert len(_sep_chains(fake)) == chains, n
        assert {o.dnat for o in where(fake, "10.96.0.10")} == {f"10.1.0.{i}:8080" for i in range(1, n + 1)}
        assert fake.ipsets.sets[LOOP_BACK.name] == {f"10.1.0.{i},tcp:8080,10.1.0.{i}" for i in range(1, n + 1)}
    assert sum(1 for text in fake.restores if "*filter" in text) == 3  # the first sync and both crossings


def test_a_hairpin_member_two_services_share_stays_until_both_are_gone() -> None:
    fake = FakeIptables()
    backend = backend_on(fake)
    shared = endpoint_slice("a", ["10.1.0.1"]), endpoint_slice("b", ["10.1.0.1"])
    both = state_of([service("a", "10.96.0.1"), service("b", "10.96.0.2"), *shared])
    backend.sync(both, previous=DesiredState(), changed=None)
    member = "10.1.0.1,tcp:8080,10.1.0.1"
    only_b = state_of([service("b", "10.96.0.2"), shared[1]])
    backend.sync(only_b, previous=both, changed={"default/a"})
    assert fake.ipsets.sets[LOOP_BACK.name] == {member}
    backend.sync(DesiredState(), previous=only_b, changed={"default/b"})
    assert fake.ipsets.sets[LOOP_BACK.name] == set()


def test_a_refused_restore_takes_back_the_hairpin_members_it_added() -> None:
    fake = FakeIptables()
    backend = backend_on(fake)
    before = state_of([service("web", "10.96.0.10"), _eps(1)])
    backend.sync(before, previous=DesiredState(), changed=None)
    fake.fail_next = "iptables-restore: line 3 failed"
    with pytest.raises(ApplyError):
        backend.sync(state_of([service("web", "10.96.0.10"), _eps(2)]), previous=before, changed={"default/web"})
    assert fake.ipsets.sets[LOOP_BACK.name] == {"10.1.0.1,tcp:8080,10.1.0.1"}
    after = state_of([service("web", "10.96.0.10"), _eps(2)])
    backend.sync(after, previous=before, changed={"default/web"})  # the counts were taken back too
    assert fake.ipsets.sets[LOOP_BACK.name] == {f"10.1.0.{i},tcp:8080,10.1.0.{i}" for i in (1, 2)}


def test_only_service_traffic_is_masqueraded_as_hairpin() -> None:
    """A host-network endpoint (the API server behind `kubernetes`) is in the hairpin set; its own direct
    connections must keep their source, through the Service they are masqueraded as before."""
    api = service("kubernetes", "10.96.0.1", [{"name": "https", "port": 443, "targetPort": 6443}])
    fake = synced([api, endpoint_slice("kubernetes", [NODE_IP], [{"name": "https", "port": 6443}])])
    assert where(fake, NODE_IP, 6443, src=NODE_IP, local=True) == {Outcome("ACCEPT"): 1.0}
    through = where(fake, "10.96.0.1", 443, src=NODE_IP, local=True)
    assert through == {Outcome("ACCEPT", f"{NODE_IP}:6443", masquerade=True): 1.0}


def test_a_refused_ipset_fill_stops_a_full_sync_before_any_rule_changes() -> None:
    fake = FakeIptables()
    backend = backend_on(fake)
    backend.sync(state_of(WORLD), previous=DesiredState(), changed=None)
    rules = {t: dict(chains) for t, chains in fake.tables.items()}
    fake.ipsets.fail_next = "ipset v7.17: Hash is full, cannot add more elements"
    with pytest.raises(ApplyError, match="Hash is full"):
        backend.sync(state_of(WORLD[:2]), previous=DesiredState(), changed=None)
    assert fake.tables == rules


def test_a_refused_hairpin_add_leaves_rules_and_counts_as_they_were() -> None:
    fake = FakeIptables()
    backend = backend_on(fake)
    before = state_of([service("web", "10.96.0.10"), _eps(1)])
    backend.sync(before, previous=DesiredState(), changed=None)
    rules = {t: dict(chains) for t, chains in fake.tables.items()}
    fake.ipsets.fail_next = "ipset v7.17: Kernel error received: Cannot allocate memory"
    after = state_of([service("web", "10.96.0.10"), _eps(2)])
    with pytest.raises(ApplyError, match="allocate"):
        backend.sync(after, previous=before, changed={"default/web"})
    assert fake.tables == rules
    backend.sync(after, previous=before, changed={"default/web"})  # counts intact: the member is added now
    assert fake.ipsets.sets[LOOP_BACK.name] == {f"10.1.0.{i},tcp:8080,10.1.0.{i}" for i in (1, 2)}
    backend.sync(before, previous=after, changed={"default/web"})
    assert fake.ipsets.sets[LOOP_BACK.name] == {"10.1.0.1,tcp:8080,10.1.0.1"}
