"""Stale UDP conntrack entries: which to delete (pure) and the `conntrack` tool that deletes them.

UDP has no connection end: a client that keeps sending from the same port (a DNS resolver) keeps
hitting a conntrack entry that still DNATs to a removed endpoint, so those entries are deleted when the
endpoint goes. TCP and SCTP are left alone: their peers notice the dead endpoint themselves.
Nothing is ever flushed at start-up, so restarting the proxy leaves working connections alone.

Why the CLI and not pyroute2's Conntrack (measured here, on a loaded 2-core machine): one filtered
`conntrack -D` costs 3-30 ms and runs only when UDP endpoints go away; pyroute2 would add ~0.6 s of
import to the daemon and still make us dump the table (~20 ms when empty, more with traffic) and filter
it in Python. The `Conntrack` Protocol keeps the choice swappable.
"""

from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Collection, Sequence

from netproxy.interfaces import ConntrackFilter
from netproxy.model import DesiredState, Endpoint, ServicePort, select_endpoints


def _usable_ips(port: ServicePort, endpoints: tuple[Endpoint, ...], node_name: str) -> set[str]:
    sel = select_endpoints(port, endpoints, node_name)
    return {e.ip for e in (*sel.all_cluster, *sel.local)}


def stale_filters(
    previous: DesiredState, current: DesiredState, changed: Collection[str], node_name: str
) -> list[ConntrackFilter]:
    """Filters for UDP entries that point at endpoints no longer used by a changed Service port, and for
    entries of ports that just got their first endpoint (packets sent while they had none)."""
    out: list[ConntrackFilter] = []
    for service in sorted(changed):
        now = {p.name: (p, eps) for p, eps in current.ports(service)}
        for port, eps in previous.ports(service):
            if port.protocol != "UDP":
                continue
            was = _usable_ips(port, eps, node_name)
            cur_port, cur_eps = now.get(port.name, (port, ()))
            gone = sorted(was - _usable_ips(cur_port, cur_eps, node_name))
            dests = [ip for ip in (port.cluster_ip, *port.external_ips, *port.load_balancer_ips) if ip]
            for ip in gone:
                out += [ConntrackFilter("udp", orig_dst=d, orig_dport=port.port, dst_nat=ip) for d in dests]
                if port.node_port:
                    out.append(ConntrackFilter("udp", orig_dport=port.node_port, dst_nat=ip))
        before = {p.name: eps for p, eps in previous.ports(service)}
        for port, eps in current.ports(service):
            if port.protocol != "UDP" or port.name not in before:
                continue  # a port new to us (or a restart) has no entries made while it had no endpoints
            if not _usable_ips(port, before[port.name], node_name) and _usable_ips(port, eps, node_name):
                if port.cluster_ip:
                    out.append(ConntrackFilter("udp", orig_dst=port.cluster_ip, orig_dport=port.port))
                if port.node_port:
                    out.append(ConntrackFilter("udp", orig_dport=port.node_port))
    return out


def filter_args(flt: ConntrackFilter) -> list[str]:
    args = ["-p", flt.protocol]
    if flt.orig_dst:
        args += ["--orig-dst", flt.orig_dst]
    if flt.orig_dport is not None:
        args += ["--orig-port-dst", str(flt.orig_dport)]
    if flt.dst_nat:
        args += ["--dst-nat", flt.dst_nat]
    return args


log = logging.getLogger("netproxy.conntrack")
_DELETED = re.compile(r"(\d+) flow entries have been deleted")


class ConntrackTool:
    def __init__(self, prefix: Sequence[str] = ()) -> None:
        self._prefix = list(prefix)  # e.g. `ip netns exec NODE`

    def delete(self, flt: ConntrackFilter) -> int:
        try:
            res = subprocess.run(
                [*self._prefix, "conntrack", "-D", *filter_args(flt)],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (subprocess.TimeoutExpired, OSError) as err:
            log.warning("conntrack -D %s failed: %s", " ".join(filter_args(flt)), err)
            return 0
        found = _DELETED.search(res.stderr)
        return int(found.group(1)) if found else 0
