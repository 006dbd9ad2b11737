"""Desired state → `nft -f` text for one table of our own, `ip tinykube`. Pure.

Packets find their service through verdict maps keyed by `ipv4_addr . inet_proto . inet_service`
(one map for every ClusterIP/externalIP/LB IP, one keyed by `inet_proto . inet_service` for NodePorts),
so the per-packet cost is one hash lookup however many services exist. Each Service port has one chain
that picks an endpoint with `numgen random` and DNATs to it: no per-endpoint chains,
because the `nft` tool's cost grows with the number of chains (ENVIRONMENT.md: 165 s vs 11.7 s at
10k services). The exception is ClientIP affinity, which needs a place to record the choice: such
ports get one small chain per endpoint that updates a timeout set of client addresses.

Rules hold no anonymous sets or maps (`{ a, b }`, `numgen … map { … }`): the `nft` tool loads every set
of the table before it adds a rule, and 20k anonymous sets at 10k services made one partial sync cost
~300 ms and the full load 5× slower (measured in bench/proxy_sync.py's netns).

Endpoint choice lives in map elements, not in rules: each Service port chain ends in one
`dnat ip to <key> . numgen random mod 2^20 map @endpoints-<proto>-<k>`, where `<key>` is a per-chain
64-bit constant (two `numgen random mod 1 offset C`: nft 1.0.6 takes no literal in a concatenation)
and the interval map gives each of the N endpoints an equal range of the 2^20 values. At 10k services
any rule change, and any verdict-map element change, makes the kernel validate the whole table at
commit (~120-130 ms here), while editing data-map or set elements costs ~25-40 ms (bench/proxy_sync.py).
So an endpoint added, removed or replaced edits elements only; only a port going from no endpoints
to some (or back) changes chains and verdict maps. The price: interval (pipapo) maps load slower, a
full sync at 10k takes ~5 s instead of ~3 s with plain `mod N` hash maps.

Hairpin traffic (an endpoint reaching itself through its Service) is masqueraded in postrouting when the
DNATed packet's source equals its destination, looked up in the `hairpin` set of `ip . ip` pairs of
every endpoint address. A stale pair is harmless (a packet sent to itself through DNAT is hairpin
whichever Service did it), so partial syncs only add pairs and a full sync drops the stale ones.

A full sync replaces the table in one transaction (`add table` + `delete table` + definition);
conntrack keeps NAT bindings, so established connections are unaffected, but ClientIP affinity
memory (the timeout sets) starts afresh. A partial sync touches only the changed Services' map
elements, chains and sets.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field

from netproxy.config import MASQ_MARK, ProxyConfig
from netproxy.model import DesiredState, Endpoint, ServicePort, select_endpoints
from netproxy.naming import nft_affinity_set, nft_endpoint_chain, nft_endpoint_key, nft_service_chain
from netproxy.nftables.elements import ElementEdit

TABLE = "tinykube"
FAMILY = "ip"
SERVICE_IPS = "service-ips"
SERVICE_NODEPORTS = "service-nodeports"
NO_ENDPOINT_IPS = "no-endpoint-services"
NO_ENDPOINT_NODEPORTS = "no-endpoint-nodeports"
HAIRPIN = "hairpin"
MAP_TYPES = {
    SERVICE_IPS: "ipv4_addr . inet_proto . inet_service : verdict",
    SERVICE_NODEPORTS: "inet_proto . inet_service : verdict",
    NO_ENDPOINT_IPS: "ipv4_addr . inet_proto . inet_service : verdict",
    NO_ENDPOINT_NODEPORTS: "inet_proto . inet_service : verdict",
}
# Endpoint maps, each shared by the chains whose key falls in it. Not one map: the kernel checks every
# element added to a map against every rule that uses the map, and every rule added against every
# element (10k rules x 100k elements: 20-60 s for a full sync at 10k services;
# 256 maps: ~1 s with hash maps, ~3 s with the interval maps used here).
# One family per protocol: `nft` ties a `typeof … tcp dport` map to TCP rules (and `th dport` to none).
ENDPOINT_MAPS = {p: tuple(f"endpoints-{p}-{i}" for i in range(256)) for p in ("tcp", "udp", "sctp")}
REJECT = "goto reject-chain"
# What `elements.py` can write over netlink: endpoint changes touch only these.
NETLINK_WRITABLE = frozenset((HAIRPIN, *(name for names in ENDPOINT_MAPS.values() for name in names)))


@dataclass
class NftPortRules:
    """One Service port's share: elements (map or set -> key -> value, "" in a set), chains, and its own
    affinity sets (name -> (kind, body))."""

    elements: dict[str, dict[str, str]] = field(default_factory=dict)
    chains: dict[str, list[str]] = field(default_factory=dict)
    sets: dict[str, tuple[str, str]] = field(default_factory=dict)

    def put(self, name: str) -> dict[str, str]:
        """The elements of map or set `name` (made on first use: most ports touch 3 of ~200)."""
        return self.elements.setdefault(name, {})


MARK_FOR_MASQUERADE = f"meta mark set meta mark | {MASQ_MARK:#x}"
ENDPOINTS_KEY = "numgen random mod 1 . numgen random mod 1 . numgen random mod 1"
SLOTS = 1 << 20  # `numgen` range split among a chain's endpoints: the rule never names their number


def endpoint_map(proto: str, key_low: int) -> str:
    """The endpoint map a chain uses, from the protocol and its key (`naming.nft_endpoint_key`)."""
    names = ENDPOINT_MAPS[proto]
    return names[key_low % len(names)]


def _pick(port: ServicePort, endpoints: tuple[Endpoint, ...], proto: str, chain: str, out: NftPortRules) -> list[str]:
    """Rules that DNAT to one of `endpoints` at random. Without affinity: one rule that never changes and
    one interval-map element per endpoint (a range of `numgen` values), so that any endpoint change edits
    map elements only. With ClientIP
    affinity, the client's previous endpoint comes first, then the iptables `statistic` scheme: rule j
    matches with probability 1/(N-j) when the ones before it did not, so each endpoint gets 1/N."""
    out.put(HAIRPIN).update((f"{ep.ip} . {ep.ip}", "") for ep in endpoints)
    if port.session_affinity_timeout is None:
        hi, lo = nft_endpoint_key(chain)
        name = endpoint_map(proto, lo)
        n, elems, prefix = len(endpoints), out.put(name), f"{hi} . {lo} . "
        for i, ep in enumerate(endpoints):  # endpoint i owns [i*SLOTS/n, (i+1)*SLOTS/n): 1/n each, ±n/SLOTS
            elems[f"{prefix}{i * SLOTS // n}-{(i + 1) * SLOTS // n - 1}"] = f"{ep.ip} . {ep.port}"
        key = f"numgen random mod 1 offset {hi} . numgen random mod 1 offset {lo} . numgen random mod {SLOTS}"
        return [f"meta l4proto {proto} dnat ip to {key} map @{name}"]
    targets, sticky = [], []
    for ep in endpoints:
        ep_chain, aff = nft_endpoint_chain(port.name, ep), nft_affinity_set(port.name, ep)
        out.sets[aff] = "set", f"type ipv4_addr; flags dynamic,timeout; timeout {port.session_affinity_timeout}s;"
        out.chains[ep_chain] = [f"update @{aff} {{ ip saddr }}", f"meta l4proto {proto} dnat ip to {ep.ip}:{ep.port}"]
        sticky.append(f"ip saddr @{aff} goto {ep_chain}")
        targets.append(f"goto {ep_chain}")
    n = len(targets)
    return sticky + [f"numgen random mod {n - j} 0 {t}" if j < n - 1 else t for j, t in enumerate(targets)]


def port_rules(port: ServicePort, endpoints: tuple[Endpoint, ...], config: ProxyConfig) -> NftPortRules:
    out = NftPortRules()
    spn = port.name
    proto = port.protocol.lower()
    sel = select_endpoints(port, endpoints, config.node_name)
    # Only the names a port uses: each is a sha256 (most ports are plain ClusterIPs and need one).
    svc = nft_service_chain(spn)
    svl = nft_service_chain(spn, "l") if port.internal_policy_local or port.external_policy_local else ""
    ext = nft_service_chain(spn, "x") if port.externally_accessible else ""
    mark = MARK_FOR_MASQUERADE
    if sel.all_cluster:
        rules = []
        if port.cluster_ip and (config.masquerade_all or config.cluster_cidr):
            src = f" ip saddr != {config.cluster_cidr}" if config.cluster_cidr and not config.masquerade_all else ""
            rules.append(f"ip daddr {port.cluster_ip} {proto} dport {port.port}{src} {mark}")
        out.chains[svc] = rules + _pick(port, sel.all_cluster, proto, svc, out)
    if (port.internal_policy_local or port.external_policy_local) and sel.local:
        out.chains[svl] = _pick(port, sel.local, proto, svl, out)
    if port.cluster_ip:
        key = f"{port.cluster_ip} . {proto} . {port.port}"
        if sel.cluster:
            out.put(SERVICE_IPS)[key] = f"goto {svl if port.internal_policy_local else svc}"
        else:
            out.put(NO_ENDPOINT_IPS)[key] = REJECT
    if not port.externally_accessible:
        return out
    if sel.all_cluster:
        if port.external_policy_local:
            rules = [f"ip saddr {config.cluster_cidr} goto {svc}"] if config.cluster_cidr else []
            rules += [f"fib saddr type local {mark}", f"fib saddr type local goto {svc}"]
            out.chains[ext] = rules + ([f"goto {svl}"] if sel.local else [])
        else:
            out.chains[ext] = [mark, f"goto {svc}"]
    verdict = "" if sel.external else (REJECT if not sel.all_cluster else "drop")
    for ip in (*port.external_ips, *port.load_balancer_ips):
        key = f"{ip} . {proto} . {port.port}"
        if ext in out.chains:
            out.put(SERVICE_IPS)[key] = f"goto {ext}"
        if verdict:
            out.put(NO_ENDPOINT_IPS)[key] = verdict
    if port.node_port:
        key = f"{proto} . {port.node_port}"
        if ext in out.chains:
            out.put(SERVICE_NODEPORTS)[key] = f"goto {ext}"
        if verdict:
            out.put(NO_ENDPOINT_NODEPORTS)[key] = verdict
    return out


def _merge(parts: Iterable[NftPortRules]) -> NftPortRules:
    total = NftPortRules()
    for p in parts:
        for m, elems in p.elements.items():
            total.elements.setdefault(m, {}).update(elems)
        total.chains.update(p.chains)
        total.sets.update(p.sets)
    return total


def _of(state: DesiredState, services: Iterable[str], config: ProxyConfig) -> NftPortRules:
    return _merge(port_rules(p, eps, config) for s in services for p, eps in state.ports(s))


def _fixed_chains(config: ProxyConfig) -> dict[str, list[str]]:
    mark = f"{MASQ_MARK:#x}"
    if config.node_ips:
        nodeport_dst = [f"ip daddr {ip} jump nodeports" for ip in config.node_ips]
        if config.localhost_nodeports:
            nodeport_dst.append("ip daddr 127.0.0.0/8 fib daddr type local jump nodeports")
    else:
        nodeport_dst = ["fib daddr type local jump nodeports"]
    no_ep = [
        f"ct state new ip daddr . meta l4proto . th dport vmap @{NO_ENDPOINT_IPS}",
        f"ct state new fib daddr type local meta l4proto . th dport vmap @{NO_ENDPOINT_NODEPORTS}",
    ]
    localnet = "ip saddr != 127.0.0.0/8 ip daddr 127.0.0.0/8 ct status & dnat == 0 ct state new drop"
    return {
        "masquerading": [
            f"meta mark & {mark} == 0 return",
            f"meta mark set meta mark ^ {mark}",
            "masquerade fully-random",
        ],
        "reject-chain": ["reject"],
        "services": [f"ip daddr . meta l4proto . th dport vmap @{SERVICE_IPS}", *nodeport_dst],
        "nodeports": [f"meta l4proto . th dport vmap @{SERVICE_NODEPORTS}"],
        "nat-prerouting": ["type nat hook prerouting priority dstnat; policy accept;", "jump services"],
        "nat-output": ["type nat hook output priority -100; policy accept;", "jump services"],
        "nat-postrouting": [
            "type nat hook postrouting priority srcnat; policy accept;",
            f"ct status & dnat == dnat ip saddr . ip daddr @{HAIRPIN} meta mark set meta mark | {mark}",
            "jump masquerading",
        ],
        "filter-input": ["type filter hook input priority filter - 5; policy accept;", *no_ep, localnet],
        "filter-forward": ["type filter hook forward priority filter - 5; policy accept;", *no_ep],
        "filter-output": ["type filter hook output priority filter - 5; policy accept;", *no_ep, localnet],
    }


BATCH = 200  # Services per chunk


def _block(sets: dict[str, tuple[str, str]], chains: Iterable[tuple[str, list[str]]]) -> str:
    out = [f"table {FAMILY} {TABLE} {{"]
    out += [f"\t{kind} {name} {{ {body} }}" for name, (kind, body) in sets.items()]
    out += [f"\tchain {name} {{\n" + "".join(f"\t\t{line}\n" for line in lines) + "\t}" for name, lines in chains]
    out.append("}")
    return "\n".join(out) + "\n"


def _full(state: DesiredState, config: ProxyConfig) -> Iterator[str]:
    """The whole table, in pieces: empty maps and the fixed chains first, then the Services' sets,
    chains and map elements a batch at a time (a chain before the chains and elements that jump to it),
    so that `nft` works on one batch while the next is rendered."""
    t = f"{FAMILY} {TABLE}"
    maps = "".join(f"\tmap {name} {{ type {typ}; }}\n" for name, typ in MAP_TYPES.items())
    maps += "".join(
        f"\tmap {name} {{ typeof {ENDPOINTS_KEY} : ip daddr . {proto} dport; flags interval; }}\n"
        for proto, names in ENDPOINT_MAPS.items()
        for name in names
    )
    maps += f"\tset {HAIRPIN} {{ type ipv4_addr . ipv4_addr; }}\n"
    # The fixed chains come first: map elements name reject-chain.
    yield f"add table {t}\ndelete table {t}\ntable {t} {{\n{maps}}}\n" + _block({}, _fixed_chains(config).items())
    # Keys already sent, per map or set two Services can share a key of: a verdict map keeps a key's first
    # value, the hairpin set one pair per address. Endpoint-map keys start with their chain's own hash.
    emitted: dict[str, set[str]] = {}
    batch: list[NftPortRules] = []
    services = sorted(state.services)
    for i, service in enumerate(services, 1):
        batch += [port_rules(port, eps, config) for port, eps in state.ports(service)]
        if batch and (i % BATCH == 0 or i == len(services)):
            part = _merge(batch)
            elements = []
            for m, elems in part.elements.items():
                fresh = elems
                if m in MAP_TYPES or m == HAIRPIN:
                    seen = emitted.setdefault(m, set())
                    fresh = {k: v for k, v in elems.items() if k not in seen}
                    seen.update(fresh)
                if fresh:
                    elements.append(f"add element {t} {m} {{ {_items(fresh)} }}\n")
            yield _block(part.sets, part.chains.items()) + "".join(elements)
            batch = []


def _items(elems: dict[str, str]) -> str:
    return ", ".join(f"{k} : {v}" if v else k for k, v in elems.items())


def _element_changes(
    before: NftPortRules, after: NftPortRules
) -> tuple[dict[str, list[str]], dict[str, dict[str, str]]]:
    """(keys to delete, elements to add) per map or set. Hairpin pairs are only added (see the top)."""
    gone_by: dict[str, list[str]] = {}
    fresh_by: dict[str, dict[str, str]] = {}
    for m in dict.fromkeys((*before.elements, *after.elements)):
        old, new = before.elements.get(m, {}), after.elements.get(m, {})
        gone = [k for k, v in old.items() if new.get(k) != v]
        if gone and m != HAIRPIN:
            gone_by[m] = gone
        fresh = {k: v for k, v in new.items() if old.get(k) != v}
        if fresh:
            fresh_by[m] = fresh
    return gone_by, fresh_by


def element_edits(
    state: DesiredState, previous: DesiredState, changed: Collection[str], config: ProxyConfig
) -> list[ElementEdit] | None:
    """The partial sync of `changed` as element edits only, deletes first, when that is all it is and
    every set involved is one `elements.py` can write (an endpoint change without affinity); else None."""
    before, after = _of(previous, changed, config), _of(state, changed, config)
    if before.chains != after.chains or before.sets != after.sets:
        return None
    gone_by, fresh_by = _element_changes(before, after)
    if not NETLINK_WRITABLE.issuperset((*gone_by, *fresh_by)):
        return None
    edits = [ElementEdit(False, m, k) for m, keys in gone_by.items() for k in keys]
    return edits + [ElementEdit(True, m, k, v) for m, elems in fresh_by.items() for k, v in elems.items()]


def _partial(before: NftPortRules, after: NftPortRules) -> str:
    """Elements first deleted (of maps that stay), then new sets/maps and chains, rewritten chains, added
    elements, and last the stale chains and sets/maps."""
    t = f"{FAMILY} {TABLE}"
    gone_by, fresh_by = _element_changes(before, after)
    out = [f"delete element {t} {m} {{ {', '.join(gone)} }}" for m, gone in gone_by.items()]
    adds = [f"add element {t} {m} {{ {_items(fresh)} }}" for m, fresh in fresh_by.items()]
    new_sets = [(name, decl) for name, decl in after.sets.items() if name not in before.sets]
    out += [f"add {kind} {t} {name} {{ {body} }}" for name, (kind, body) in new_sets]
    out += [f"add chain {t} {name}" for name in after.chains if name not in before.chains]
    for name, lines in after.chains.items():
        if before.chains.get(name) != lines:
            out += [f"flush chain {t} {name}", *(f"add rule {t} {name} {line}" for line in lines)]
    out += adds
    stale = [name for name in before.chains if name not in after.chains]
    out += [f"flush chain {t} {name}" for name in stale]
    out += [f"delete chain {t} {name}" for name in stale]
    out += [f"delete {kind} {t} {name}" for name, (kind, _) in before.sets.items() if name not in after.sets]
    return "\n".join(out) + "\n" if out else ""


def render(
    state: DesiredState,
    config: ProxyConfig,
    *,
    changed: Collection[str] | None = None,
    previous: DesiredState | None = None,
) -> str:
    """The `nft -f` text of one sync: the whole table (`changed=None`), or the difference between
    `previous` and `state` for the `changed` Services (empty text: nothing to do)."""
    return "".join(render_chunks(state, config, changed=changed, previous=previous))


def render_chunks(
    state: DesiredState,
    config: ProxyConfig,
    *,
    changed: Collection[str] | None = None,
    previous: DesiredState | None = None,
) -> Iterator[str]:
    """`render` in pieces, so that `nft` parses while the rest is rendered."""
    if changed is None:
        yield from _full(state, config)
    else:
        text = _partial(_of(previous or DesiredState(), changed, config), _of(state, changed, config))
        if text:
            yield text
