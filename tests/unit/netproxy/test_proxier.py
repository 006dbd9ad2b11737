from __future__ import annotations

import asyncio
from collections.abc import Iterable

from netproxy.errors import ApplyError
from netproxy.healthcheck import HealthServer, HealthStatus
from netproxy.proxier import Proxier
from netproxy.testing import FakeConntrack, FakeEvents, FakeFlow, FakeIptables, FakeSource, Outcome
from netproxy.testing.objects import endpoint_slice, service
from tests.unit.netproxy.scenario import CFG, backend_on, dnat_share, where

WEB = service("web", "10.96.0.10")
WEB_EPS = endpoint_slice("web", ["10.1.0.1", "10.1.0.2"])


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(fake: FakeIptables | None = None, **kw: object) -> tuple[Proxier, FakeIptables, FakeEvents, FakeConntrack]:
    fake = fake or FakeIptables()
    events, ct = FakeEvents(), FakeConntrack()
    p = Proxier(backend_on(fake), CFG, conntrack=ct, events=events, **kw)  # type: ignore[arg-type]
    return p, fake, events, ct


async def test_first_sync_is_full_and_later_ones_partial() -> None:
    clock = Clock()
    p, fake, _, _ = make(clock=clock, full_sync_period=60)
    p.on_service(WEB)
    p.on_slice(WEB_EPS)
    assert p.sync_once().full
    assert not p.need_full_sync
    p.on_slice(WEB_EPS, endpoint_slice("web", ["10.1.0.3"]))
    result = p.sync_once()
    assert not result.full
    assert result.changed == {"default/web"}
    assert dnat_share(where(fake, "10.96.0.10")) == {"10.1.0.3:8080": 1.0}
    clock.now += 61
    assert p.sync_once().full  # periodic full sync


async def test_invalid_service_is_reported_and_does_not_stop_others() -> None:
    p, fake, events, _ = make()
    p.on_service(WEB)
    p.on_slice(WEB_EPS)
    p.sync_once()
    bad = service("web", "10.96.0.10")
    bad["spec"]["ports"][0]["protocol"] = "ICMP"
    p.on_service(WEB, bad)
    p.on_service(service("db", "10.96.0.20"))
    p.on_slice(endpoint_slice("db", ["10.1.0.9"]))
    p.sync_once()
    await p.flush_events()
    assert events.events == [
        ("default/web", "InvalidObject", "Service default/web: spec.ports[0].protocol: unsupported protocol 'ICMP'")
    ]
    assert dnat_share(where(fake, "10.96.0.20")) == {"10.1.0.9:8080": 1.0}
    assert len(dnat_share(where(fake, "10.96.0.10"))) == 2  # previous rules stay


async def test_service_the_kernel_refuses_keeps_old_rules_and_others_are_programmed() -> None:
    p, fake, events, _ = make()
    p.on_service(WEB)
    p.on_slice(WEB_EPS)
    p.sync_once()
    fake.refuse = "10.96.0.63"
    for i in range(6):
        p.on_service(service(f"s{i}", f"10.96.0.{60 + i}"))
        p.on_slice(endpoint_slice(f"s{i}", [f"10.1.6.{i}"]))
    result = p.sync_once()
    assert result.recovered
    assert result.rejected == {"default/s3"}
    assert p.rejected == {"default/s3"}
    for i in (0, 1, 2, 4, 5):
        assert dnat_share(where(fake, f"10.96.0.{60 + i}")) == {f"10.1.6.{i}:8080": 1.0}
    assert dnat_share(where(fake, "10.96.0.63")) == {None: 1.0}
    assert len(dnat_share(where(fake, "10.96.0.10"))) == 2
    await p.flush_events()
    assert events.events[-1][:2] == ("default/s3", "FailedToProgram")
    fake.refuse = None
    p.on_service(
        service("s3", "10.96.0.63"), service("s3", "10.96.0.63", [{"name": "http", "port": 80, "targetPort": 81}])
    )
    p.sync_once()  # it changed again: another chance, now accepted
    assert p.rejected == set()
    assert dnat_share(where(fake, "10.96.0.63")) == {"10.1.6.3:8080": 1.0}


async def test_failed_apply_sets_need_full_sync_and_keeps_kernel_rules() -> None:
    p, fake, _, _ = make()
    p.on_service(WEB)
    p.on_slice(WEB_EPS)
    p.sync_once()
    before = fake.tables
    fake.fail_next = "transient"
    p.on_slice(WEB_EPS, endpoint_slice("web", ["10.1.0.5"]))
    # The partial sync and its first retry both fail: the bisection's single-Service attempt fails too.
    fake.refuse = "10.1.0.5"
    p.sync_once()
    assert fake.tables == before
    assert p.rejected == {"default/web"}
    fake.refuse = None
    fake.fail_next = "down"
    p.on_service(service("x", "10.96.0.99"))
    fake_restore = fake.restore

    def always_fail(chunks: str | Iterable[str]) -> None:
        raise ApplyError("iptables-restore", 4, "resource problem")

    fake.restore = always_fail  # type: ignore[method-assign]
    p.sync_once()
    assert p.need_full_sync
    fake.restore = fake_restore  # type: ignore[method-assign]
    assert p.sync_once().full
    assert not p.need_full_sync
    assert where(fake, "10.96.0.99") == {Outcome("REJECT"): 1.0}


async def test_removed_udp_endpoint_deletes_its_conntrack_entries() -> None:
    dns = service("dns", "10.96.0.53", [{"name": "dns", "port": 53, "protocol": "UDP"}])
    ports = [{"name": "dns", "port": 53, "protocol": "UDP"}]
    p, _, _, ct = make()
    ct.flows = {FakeFlow("udp", "10.96.0.53", 53, "10.1.0.1"), FakeFlow("udp", "10.96.0.53", 53, "10.1.0.2")}
    p.on_service(dns)
    p.on_slice(endpoint_slice("dns", ["10.1.0.1", "10.1.0.2"], ports))
    p.sync_once()
    assert len(ct.flows) == 2  # a (re)start flushes nothing
    p.on_slice(endpoint_slice("dns", ["10.1.0.1"], ports))
    p.sync_once()
    assert ct.flows == {FakeFlow("udp", "10.96.0.53", 53, "10.1.0.1")}


async def test_health_ports_follow_local_endpoints() -> None:
    health = HealthServer()
    p, _, _, _ = make(health=health)
    svc = service(
        "loc",
        "10.96.0.40",
        type="NodePort",
        ports=[{"name": "h", "port": 80, "nodePort": 30040}],
        externalTrafficPolicy="Local",
        healthCheckNodePort=31040,
    )
    p.on_service(svc)
    p.on_slice(endpoint_slice("loc", ["10.1.0.1", "10.2.0.1"], [{"name": "h", "port": 80}], nodes=["node-a", "node-b"]))
    p.sync_once()
    assert health.desired == {31040: HealthStatus("default/loc", 1)}


async def test_run_loop_syncs_what_informers_report_until_stopped() -> None:
    p, fake, _, _ = make()
    src, slices = FakeSource(), FakeSource()
    p.watch(src, slices)
    stop = asyncio.Event()
    task = asyncio.create_task(p.run(stop, min_interval=0.01))
    src.add(WEB)
    slices.add(WEB_EPS)
    slices.delete(WEB_EPS)
    for _ in range(200):
        await asyncio.sleep(0.01)
        if where(fake, "10.96.0.10") == {Outcome("REJECT"): 1.0}:
            break
    assert where(fake, "10.96.0.10") == {Outcome("REJECT"): 1.0}
    stop.set()  # wakes the loop at once (no dirty event needed)
    await asyncio.wait_for(task, 5)
