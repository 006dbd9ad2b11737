"""Shared helpers: desired state from API objects, and an iptables fake synced to it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from netproxy.config import ProxyConfig
from netproxy.iptables.backend import IptablesBackend
from netproxy.model import DesiredState
from netproxy.testing import FakeIptables, Outcome, Packet, simulate
from netproxy.tracker import EndpointsChangeTracker, ServiceChangeTracker, take_changes

NODE_IP = "192.168.1.1"
CFG = ProxyConfig(node_name="node-a", cluster_cidr="10.1.0.0/16")


def state_of(objs: Iterable[dict[str, Any]]) -> DesiredState:
    st, et = ServiceChangeTracker(), EndpointsChangeTracker()
    for obj in objs:
        (st if obj["kind"] == "Service" else et).update(obj)
    return take_changes(st, et).state


def backend_on(fake: FakeIptables, config: ProxyConfig = CFG) -> IptablesBackend:
    """The iptables backend driving a fake (and the fake's ipsets)."""
    return IptablesBackend(fake, config, apply_ipsets=fake.ipsets.restore)


def synced(objs: Iterable[dict[str, Any]], config: ProxyConfig = CFG) -> FakeIptables:
    fake = FakeIptables()
    backend_on(fake, config).sync(state_of(objs), previous=DesiredState(), changed=None)
    return fake


def where(
    fake: FakeIptables,
    dst: str,
    dport: int = 80,
    *,
    src: str = "192.168.1.50",
    proto: str = "tcp",
    local: bool = False,
    recent: Iterable[tuple[str, str]] = (),
) -> dict[Outcome, float]:
    """Outcomes of a new connection; `local` = sent by a process on the node."""
    return simulate(
        fake.tables,
        Packet(src, dst, proto, dport),
        local_addrs=[NODE_IP],
        from_local_process=local,
        recent=recent,
        sets=fake.ipsets.sets,
    )


def dnat_share(outcomes: dict[Outcome, float]) -> dict[str | None, float]:
    out: dict[str | None, float] = {}
    for o, p in outcomes.items():
        out[o.dnat] = round(out.get(o.dnat, 0.0) + p, 6)
    return out
