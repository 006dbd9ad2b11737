"""The IPVS backend: one sync turns the shared desired state into virtual/real servers, holder
addresses, ipset members and (on full syncs) the constant iptables part.

Every sync is incremental at the kernel: `plan()` compares the wanted servers with a snapshot of
the kernel's, so only what differs is sent over netlink, and the cost of one endpoint change does not
grow with the number of services the way an iptables ruleset's does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from netproxy.config import ProxyConfig
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


class IPVSBackend:
    """The `ipvs` proxy mode (netproxy.interfaces.Backend). Its netlink socket acts in the network
    namespace it was created in: the proxy runs inside the node's namespace."""

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
        self._last_sets: dict[str, frozenset[str]] | None = None
        self._last = plan.Desired(services={}, bound_addresses=frozenset(), owners={})  # as last programmed
        self._draining: set[plan.VirtualKey] = set()  # services with reals at weight 0 still holding connections

    def close(self) -> None:
        self._tables.close()
        self._holder.close()

    def sync(self, state: DesiredState, *, previous: DesiredState, changed: Collection[str] | None) -> None:
        """The Backend entry point: `changed=None` is a full sync."""
        del previous  # the kernel snapshot, not the previous model, is what the plan is computed against
        self.reconcile(state, changed=changed)

    def reconcile(self, state: DesiredState, *, changed: Collection[str] | None = None) -> SyncResult:
        """Brings the kernel to `state`. A full sync (`changed=None`) reads every virtual server back
        from the kernel and also rewrites the constant iptables part and every ipset. A partial sync
        reads and plans only the virtual servers of the `changed` Services (plus those still draining),
        so one endpoint change costs the same at 10 services or 10,000."""
        full = changed is None
        want = plan.desired(
            state, node_name=self.config.node_name, node_ips=self.config.node_ips, scheduler=self.scheduler
        )
        members = dict(ipsets.entries(state, node_name=self.config.node_name))
        if full or self._last_sets is None:
            self._apply_ipsets(ipsets.render(members))  # before the rules that match on the sets
        elif edits := ipsets.render_changes(self._last_sets, members):
            self._apply_ipsets(edits)
        self._last_sets = members
        if full and self._iptables is not None:
            self._iptables.restore(rules.render(self.config))
            self._iptables.ensure_jumps(rules.JUMP_RULES)
        self._holder.sync(want.bound_addresses)
        if changed is None:
            have = self._tables.snapshot()
        else:
            keys = want.keys_of(changed) | self._last.keys_of(changed) | self._draining
            have = self._tables.snapshot(keys)
            want = want.only(keys)
        ops = plan.plan(want, have)
        self._tables.apply(ops)
        self._draining = plan.draining_keys(have, want)
        self._last = want if full else _merge(self._last, want, changed or ())
        log.debug("ipvs sync: %d operations, %d services draining", len(ops), len(self._draining))
        return SyncResult(operations=len(ops), draining=len(self._draining))


def _merge(last: plan.Desired, part: plan.Desired, changed: Collection[str]) -> plan.Desired:
    """What the kernel holds after a partial sync: `last` with the changed Services replaced by `part`."""
    kept = {k for k, owner in last.owners.items() if owner not in changed}
    return plan.Desired(
        services={**{k: last.services[k] for k in kept}, **part.services},
        bound_addresses=part.bound_addresses,
        owners={**{k: last.owners[k] for k in kept}, **part.owners},
    )


def create(config: ProxyConfig, *, scheduler: str = "rr") -> IPVSBackend:
    """The real backend for the network namespace of the calling thread (sysctls set, holder made)."""
    from netproxy.iptables.kernel import detect_backend
    from netproxy.ipvs.kernel import HolderInterface, NetlinkIPVS, ipset_restore

    set_sysctls()
    return IPVSBackend(config, tables=NetlinkIPVS(), holder=HolderInterface(), apply_ipsets=ipset_restore,
                       iptables=IptablesTools(detect_backend()), scheduler=scheduler)  # fmt: skip
