"""Per-node settings every backend's renderer reads (flags of `tinykube proxy`)."""

from __future__ import annotations

from dataclasses import dataclass

MASQ_MARK = 0x4000  # kube-proxy's bit: packets carrying it are SNATed on the way out


@dataclass(frozen=True)
class ProxyConfig:
    node_name: str
    # Addresses NodePorts answer on; empty means every local address (`addrtype LOCAL` / `fib ... local`).
    node_ips: tuple[str, ...] = ()
    # Pod CIDR of the cluster: ClusterIP traffic from outside it is masqueraded. None: no such SNAT.
    cluster_cidr: str | None = None
    masquerade_all: bool = False
    # NodePorts also answer on 127.0.0.1 (needs net.ipv4.conf.all.route_localnet=1, set by the daemon).
    localhost_nodeports: bool = True
    # iptables mode: above this many endpoints, no KUBE-SEP-* chain per endpoint (netproxy.iptables.render
    # says why); 0 never makes them.
    endpoint_chains_max: int = 10_000
