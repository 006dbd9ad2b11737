"""The IPVS backend: one sync turns the shared desired state into virtual/real servers, holder
addresses, ipset members and (on full syncs) the constant iptables part.

Every sync is incremental at the kernel: `plan()` compares the wanted servers with a snapshot of
the kernel's, so only what differs is sent over netlink, and the cost of one endpoint change does not
grow with the number of services the way an iptables ruleset's does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from netproxy.config import ProxyConfig
from netproxy.errors import NetproxyError
from netproxy.ipset import IpsetTool, RefCounts, by_set, render, render_edits
from netproxy.iptables.kernel import IptablesTools
from netproxy.ipvs import ipsets, plan, rules
from netproxy.ipvs.kernel import AddressHolder, IPVSTables
from netproxy.model import DesiredState

log = logging.getLogger(__name__)

# kube-proxy's IPVS sysctls: conntrack entries for IPVS connections (so iptables can masquerade them),
# drop connections to removed real servers at once, forwarding on.
SYSCTLS = {
    "net/ipv4/vs/conntrack": "1",
    "net/ipv4/vs/expire_nodest_conn": "1",
    "net/ipv4/vs/expire_quiescent_template": "1",
    "net/ipv4/ip_forward": "1",
}


@dataclass(frozen=True)
class SyncResult:
    operations: int
    draining: int  # virtual servers with reals kept at weight 0 until their connections end


def set_sysctls(proc_sys: Path = Path("/proc/sys")) -> None:
    for key, value in SYSCTLS.items():
        (proc_sys / key).write_text(value)


@dataclass(frozen=True)
class _Programmed:
    """What one Service contributes to the kernel, as last programmed."""

    desired: plan.Desired
    members: frozenset[tuple[str, str]]  # (ipset name, member)


class IPVSBackend:
    """The `ipvs` proxy mode (netproxy.interfaces.Backend). Its netlink socket acts in the network
    namespace it was created in: the proxy runs inside the node's namespace.

    Bookkeeping is per Service, with reference counts for what Services can share (an ipset member, a
    holder address), so a partial sync touches only the changed Services' share of the kernel."""

    name = "ipvs"

    def __init__(
        self,
        config: ProxyConfig,
        *,
        tables: IPVSTables,
        holder: AddressHolder,
        apply_ipsets: Callable[[str], None],
        iptables: IptablesTools | None,
        scheduler: str = "rr",
    ) -> None:
        self.config = config
        self.scheduler = scheduler
        self._tables = tables
        self._holder = holder
        self._apply_ipsets = apply_ipsets
        self._iptables = iptables
        self._programmed: dict[str, _Programmed] = {}
        self._members: RefCounts[tuple[str, str]] = RefCounts()
        self._addresses: RefCounts[str] = RefCounts()
        self._draining: set[plan.VirtualKey] = set()  # services with reals at weight 0 still holding connections

    def close(self) -> None:
        self._tables.close()
        self._holder.close()

    def sync(self, state: DesiredState, *, previous: DesiredState, changed: Collection[str] | None) -> None:
        """The Backend entry point: `changed=None` is a full sync."""
        del previous  # the kernel snapshot, not the previous model, is what the plan is computed against
        self.reconcile(state, changed=changed)

    def _program(self, state: DesiredState, service: str) -> _Programmed | None:
        if service not in state.services:
            return None
        one = DesiredState(services={service: state.services[service]},
                           endpoints={service: state.endpoints.get(service, {})})  # fmt: skip
        node = self.config.node_name
        return _Programmed(
            plan.desired(one, node_name=node, node_ips=self.config.node_ips, scheduler=self.scheduler),
            frozenset((name, m) for name, members in ipsets.entries(one, node_name=node).items() for m in members),
        )

    def reconcile(self, state: DesiredState, *, changed: Collection[str] | None = None) -> SyncResult:
        """Brings the kernel to `state`. A full sync (`changed=None`) reads every virtual server back
        from the kernel and rewrites the constant iptables part, every ipset and the holder's addresses.
        A partial sync computes, reads and writes only the `changed` Services' share (plus virtual
        servers still draining), so one endpoint change costs the same at 10 Services or 10,000."""
        full = changed is None
        services = sorted(state.services) if changed is None else sorted(changed)
        if full:
            self._programmed.clear()
            self._members.clear()
            self._addresses.clear()
        before = {s: p for s in services if (p := self._programmed.pop(s, None)) is not None}
        after = {s: p for s in services if (p := self._program(state, s)) is not None}
        members = self._members.update(
            removed=[m for p in before.values() for m in p.members],
            added=[m for p in after.values() for m in p.members],
        )
        addresses = self._addresses.update(
            removed=[a for p in before.values() for a in p.desired.bound_addresses],
            added=[a for p in after.values() for a in p.desired.bound_addresses],
        )
        self._programmed.update(after)
        if full:
            self._apply_ipsets(render(ipsets.SPECS, by_set(self._members.items())))  # before the rules matching them
            if self._iptables is not None:
                self._iptables.restore(rules.render(self.config))
                self._iptables.ensure_jumps(rules.JUMP_RULES)
            self._holder.sync(self._addresses.items())
        else:
            if edits := render_edits(by_set(members.appeared), by_set(members.vanished)):
                self._apply_ipsets(edits)
            self._holder.update(addresses.appeared, addresses.vanished)
        old_keys = {k for p in before.values() for k in p.desired.services}
        new_keys = {k for p in after.values() for k in p.desired.services}
        keys = None if full else old_keys | new_keys | self._draining
        have = self._tables.snapshot(keys)
        want = _union(p.desired for p in self._programmed.values() if full or _touches(p, keys))
        if keys is not None:
            want = want.only(keys)
        ops = plan.plan(want, have)
        self._tables.apply(ops)
        self._draining = plan.draining_keys(have, want)  # a partial sync read every draining key back too
        log.debug("ipvs sync: %d operations, %d services draining", len(ops), len(self._draining))
        return SyncResult(operations=len(ops), draining=len(self._draining))


def _touches(prog: _Programmed, keys: Collection[plan.VirtualKey] | None) -> bool:
    return keys is None or any(k in keys for k in prog.desired.services)


def _union(parts: Iterable[plan.Desired]) -> plan.Desired:
    services: dict[plan.VirtualKey, plan.Service] = {}
    owners: dict[plan.VirtualKey, str] = {}
    bound: set[str] = set()
    for part in parts:
        services.update(part.services)
        owners.update(part.owners)
        bound |= part.bound_addresses
    return plan.Desired(services=services, bound_addresses=frozenset(bound), owners=owners)


def create(config: ProxyConfig, *, scheduler: str = "rr", proc_sys: Path = Path("/proc/sys")) -> IPVSBackend:
    """The real backend for the network namespace of the calling thread (sysctls set, holder made)."""
    from netproxy.iptables.kernel import detect_backend
    from netproxy.ipvs.kernel import HolderInterface, NetlinkIPVS

    if not (proc_sys / "net/ipv4/vs").is_dir():
        raise NetproxyError(
            "the ipvs mode needs the kernel's ip_vs module (modprobe ip_vs) and this kernel has none: "
            "use --mode iptables or nftables here, or try IPVS in `tinykube lab kernel`"
        )
    set_sysctls(proc_sys)
    return IPVSBackend(config, tables=NetlinkIPVS(), holder=HolderInterface(), apply_ipsets=IpsetTool().restore,
                       iptables=IptablesTools(detect_backend()), scheduler=scheduler)  # fmt: skip
