"""Desired state → `iptables-restore --noflush` text in kube-proxy's chain layout. Pure.

nat:    PREROUTING/OUTPUT → KUBE-SERVICES ─ ClusterIP → KUBE-SVC-* (or KUBE-SVL-* for a Local policy)
                                          ─ externalIP / LB IP → KUBE-EXT-*
                                          ─ node address (last rule) → KUBE-NODEPORTS → KUBE-EXT-*
        KUBE-EXT-* → KUBE-MARK-MASQ + KUBE-SVC-*, or (externalTrafficPolicy Local) KUBE-SVL-*
        KUBE-SVC-*/KUBE-SVL-* → `statistic --mode random` (and `recent` for ClientIP) → KUBE-SEP-* → DNAT
        POSTROUTING → KUBE-POSTROUTING: MASQUERADE what KUBE-MARK-MASQ marked, and hairpin traffic (a pod
                      reaching itself through its Service: `KUBE-LOOP-BACK` ipset, as in kube-proxy's IPVS mode)
filter: KUBE-SERVICES / KUBE-EXTERNAL-SERVICES reject traffic to services without endpoints;
        KUBE-FORWARD accepts marked and established traffic; KUBE-PROXY-LOCALNET drops martian 127/8 traffic
        that `route_localnet` would otherwise let in.

Endpoint chains: below `ProxyConfig.endpoint_chains_max` endpoints each endpoint has its KUBE-SEP-*
chain (DNAT, and the ClientIP affinity list), as in kube-proxy. Above it the same DNAT sits in the
KUBE-SVC-* rule that picks the endpoint. Why: every rule a transaction adds makes the kernel (nf_tables)
re-validate the whole nat table, walking every chain and every rule reachable from each base chain. At
10k Services x 10 endpoints that walk is most of a partial sync: one rule added costs ~156 ms with the
100k KUBE-SEP chains, ~67 ms without them (perf: nft_chain_validate, nft_table_validate). The hairpin
check lives in one ipset-matching rule instead of a rule per endpoint chain for the same reason.

With --noflush, declaring a chain (`:NAME - [0:0]`) creates or empties it and leaves every other chain
alone, so a partial sync declares only the chains it rewrites. The jump rules from the built-in chains
(`JUMP_RULES`) are inserted (`-I`) only when the caller knows they are missing: built-in chains are
never declared, so rules other programs keep there stay untouched.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from netproxy.config import MASQ_MARK, ProxyConfig
from netproxy.ipset import LOOP_BACK, loop_back_member
from netproxy.model import DesiredState, Endpoint, EndpointSelection, ServicePort, select_endpoints
from netproxy.naming import endpoint_chain, external_chain, local_chain, service_chain

OWNED_PREFIXES = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-SEP-", "KUBE-FW-")
COMMENT = "tinykube service portals"
# Only DNATed connections: a host-network endpoint's own direct connections (e.g. to the API server the
# `kubernetes` Service points at) match the set too, and must keep their source.
HAIRPIN_MASQUERADE = (
    f"-A KUBE-POSTROUTING -m conntrack --ctstate DNAT -m set --match-set {LOOP_BACK.name} dst,dst,src -j MASQUERADE"
)


@dataclass(frozen=True)
class JumpRule:
    """A rule in a built-in chain that hands packets to one of our chains (the only rules we add there)."""

    table: str
    chain: str
    args: tuple[str, ...]


JUMP_RULES = (
    JumpRule("nat", "PREROUTING", ("-m", "comment", "--comment", COMMENT, "-j", "KUBE-SERVICES")),
    JumpRule("nat", "OUTPUT", ("-m", "comment", "--comment", COMMENT, "-j", "KUBE-SERVICES")),
    JumpRule("nat", "POSTROUTING", ("-m", "comment", "--comment", COMMENT, "-j", "KUBE-POSTROUTING")),
    JumpRule("filter", "INPUT", ("-m", "conntrack", "--ctstate", "NEW", "-j", "KUBE-EXTERNAL-SERVICES")),
    JumpRule("filter", "INPUT", ("-j", "KUBE-PROXY-LOCALNET")),
    JumpRule("filter", "FORWARD", ("-m", "conntrack", "--ctstate", "NEW", "-j", "KUBE-SERVICES")),
    JumpRule("filter", "FORWARD", ("-m", "conntrack", "--ctstate", "NEW", "-j", "KUBE-EXTERNAL-SERVICES")),
    JumpRule("filter", "FORWARD", ("-j", "KUBE-FORWARD")),
    JumpRule("filter", "OUTPUT", ("-m", "conntrack", "--ctstate", "NEW", "-j", "KUBE-SERVICES")),
    JumpRule("filter", "OUTPUT", ("-j", "KUBE-PROXY-LOCALNET")),
)


def jump_args(rule: JumpRule) -> str:
    """The rule's arguments as iptables-save prints them (double quotes around words with spaces)."""
    return " ".join(f'"{a}"' if " " in a else a for a in rule.args)


NAT_FIXED = ("KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ")
FILTER_FIXED = ("KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-PROXY-LOCALNET")


@dataclass
class PortRules:
    """Everything one Service port contributes: lines for the shared dispatch chains and its own chains."""

    nat_services: list[str] = field(default_factory=list)
    nat_nodeports: list[str] = field(default_factory=list)
    filter_services: list[str] = field(default_factory=list)
    filter_external: list[str] = field(default_factory=list)
    chains: dict[str, list[str]] = field(default_factory=dict)  # nat chain -> its rules

    def dispatch(self) -> tuple[tuple[str, ...], ...]:
        return (
            tuple(self.nat_services),
            tuple(self.nat_nodeports),
            tuple(self.filter_services),
            tuple(self.filter_external),
        )


def _match(proto: str, port: int) -> str:
    p = proto.lower()
    return f"-p {p} -m {p} --dport {port}"


def _served(sel: EndpointSelection) -> tuple[Endpoint, ...]:
    """Every endpoint some traffic of the port may reach (each has a KUBE-SEP-* name)."""
    return tuple(dict.fromkeys((*sel.all_cluster, *sel.local)))


def _dnat(ep: Endpoint) -> str:
    # No `-m tcp` before it as kube-proxy writes: a match without options matches every packet `-p` let
    # through, and the kernel's validation walk pays for every match of every rule (~20% at 10k Services).
    return f"-j DNAT --to-destination {ep.ip}:{ep.port}"


@dataclass(frozen=True)
class _Pick:
    """How a Service chain hands a packet to one endpoint: when the balancing rule chose it (`chosen`,
    appended to the `statistic` match), and when ClientIP affinity recalls it (`recalled`, if any)."""

    chosen: str
    recalled: str = ""


def _picks(port: ServicePort, endpoints: dict[Endpoint, str], *, endpoint_chains: bool) -> dict[Endpoint, _Pick]:
    """`endpoints`: endpoint -> its KUBE-SEP-* name (a chain's, or only the affinity list's)."""
    proto, timeout = port.protocol.lower(), port.session_affinity_timeout
    out = {}
    for ep, sep in endpoints.items():
        if endpoint_chains:
            recall = f"-m recent --name {sep} --rcheck --seconds {timeout} --reap -j {sep}"
            out[ep] = _Pick(f"-j {sep}", recall)
        elif timeout is None:
            out[ep] = _Pick(f"-p {proto} {_dnat(ep)}")
        else:  # `--update` refreshes the entry as the endpoint chain's `--set` would
            recall = f"-p {proto} -m recent --name {sep} --update --seconds {timeout} --reap {_dnat(ep)}"
            out[ep] = _Pick(f"-p {proto} -m recent --name {sep} --set {_dnat(ep)}", recall)
    return out


def _balance(chain: str, port: ServicePort, picks: list[_Pick]) -> list[str]:
    """Pick one endpoint: the first with 1/n, the next with 1/(n-1) of the rest, … the last always."""
    rules = []
    if port.session_affinity_timeout is not None:
        rules += [f"-A {chain} {pick.recalled}" for pick in picks]
    n = len(picks)
    for i, pick in enumerate(picks):
        if i < n - 1:
            rules.append(f"-A {chain} -m statistic --mode random --probability {1 / (n - i):.10f} {pick.chosen}")
        else:
            rules.append(f"-A {chain} {pick.chosen}")
    return rules


def port_rules(
    port: ServicePort, endpoints: tuple[Endpoint, ...], config: ProxyConfig, *, endpoint_chains: bool = True
) -> PortRules:
    """The rules of one Service port (pure; `render` assembles many of these)."""
    out = PortRules()
    spn = port.name
    sel = select_endpoints(port, endpoints, config.node_name)
    svc, svl, ext = service_chain(spn), local_chain(spn), external_chain(spn)
    proto = port.protocol.lower()
    comment = f'-m comment --comment "{spn}'
    # Without a chain or an affinity list an endpoint needs no name (a sha256: ~0.1 s of a 10k full sync).
    named = endpoint_chains or port.session_affinity_timeout is not None
    sep_of = {ep: endpoint_chain(spn, ep) if named else "" for ep in _served(sel)}
    picks = _picks(port, sep_of, endpoint_chains=endpoint_chains)
    if endpoint_chains:
        for ep, sep in sep_of.items():
            recent = f"-m recent --name {sep} --set " if port.session_affinity_timeout is not None else ""
            out.chains[sep] = [f"-A {sep} -p {proto} {recent}{_dnat(ep)}"]
    if sel.all_cluster:
        rules = []
        if port.cluster_ip and (config.masquerade_all or config.cluster_cidr):
            src = f"! -s {config.cluster_cidr} " if config.cluster_cidr and not config.masquerade_all else ""
            rules.append(f"-A {svc} {src}-d {port.cluster_ip}/32 {_match(proto, port.port)} -j KUBE-MARK-MASQ")
        out.chains[svc] = rules + _balance(svc, port, [picks[e] for e in sel.all_cluster])
    if (port.internal_policy_local or port.external_policy_local) and sel.local:
        out.chains[svl] = _balance(svl, port, [picks[e] for e in sel.local])

    if port.cluster_ip:
        dst = f"-d {port.cluster_ip}/32 {_match(proto, port.port)}"
        if sel.cluster:
            target = svl if port.internal_policy_local else svc
            out.nat_services.append(f'-A KUBE-SERVICES {comment} cluster IP" {dst} -j {target}')
        else:
            out.filter_services.append(f'-A KUBE-SERVICES {comment} has no endpoints" {dst} -j REJECT')

    if not port.externally_accessible:
        return out
    if sel.all_cluster:
        ext_rules = []
        if port.external_policy_local:
            if config.cluster_cidr:
                ext_rules.append(f"-A {ext} -s {config.cluster_cidr} -j {svc}")
            ext_rules += [
                f"-A {ext} -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ",
                f"-A {ext} -m addrtype --src-type LOCAL -j {svc}",
            ]
            if sel.local:
                ext_rules.append(f"-A {ext} -j {svl}")
        else:
            ext_rules += [f"-A {ext} -j KUBE-MARK-MASQ", f"-A {ext} -j {svc}"]
        out.chains[ext] = ext_rules
    # No endpoints at all: reject. Local policy without local endpoints: drop, as kube-proxy does, so
    # that a load balancer's health check (not a client) is what moves traffic to another node.
    verdict = "" if sel.external else ("REJECT" if not sel.all_cluster else "DROP")
    for ip in (*port.external_ips, *port.load_balancer_ips):
        dst = f"-d {ip}/32 {_match(proto, port.port)}"
        if ext in out.chains:
            out.nat_services.append(f'-A KUBE-SERVICES {comment} external IP" {dst} -j {ext}')
        if verdict:
            out.filter_external.append(f'-A KUBE-EXTERNAL-SERVICES {comment} has no endpoints" {dst} -j {verdict}')
    if port.node_port:
        if ext in out.chains:
            out.nat_nodeports.append(f'-A KUBE-NODEPORTS {comment} node port" {_match(proto, port.node_port)} -j {ext}')
        if verdict:
            out.filter_external.append(
                f'-A KUBE-EXTERNAL-SERVICES {comment} has no endpoints" -m addrtype --dst-type LOCAL '
                f"{_match(proto, port.node_port)} -j {verdict}"
            )
    return out


def _fixed_rules(config: ProxyConfig) -> tuple[list[str], list[str], list[str]]:
    """Rules of the chains that do not depend on services: (nat, nat KUBE-SERVICES tail, filter)."""
    mark = f"{MASQ_MARK:#x}/{MASQ_MARK:#x}"
    nat = [
        HAIRPIN_MASQUERADE,
        f"-A KUBE-POSTROUTING -m mark ! --mark {mark} -j RETURN",
        f"-A KUBE-POSTROUTING -j MARK --xor-mark {MASQ_MARK:#x}",
        f'-A KUBE-POSTROUTING -m comment --comment "{COMMENT}" -j MASQUERADE --random-fully',
        f"-A KUBE-MARK-MASQ -j MARK --or-mark {MASQ_MARK:#x}",
    ]
    if config.node_ips:
        tail = [f"-A KUBE-SERVICES -d {ip}/32 -j KUBE-NODEPORTS" for ip in config.node_ips]
        if config.localhost_nodeports:
            tail.append("-A KUBE-SERVICES -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS")
    else:
        tail = ["-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS"]
    filt = [
        f"-A KUBE-FORWARD -m mark --mark {mark} -j ACCEPT",
        "-A KUBE-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        '-A KUBE-PROXY-LOCALNET ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet '
        'connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP',
    ]
    return nat, tail, filt


def _rules_of(
    state: DesiredState, services: Iterable[str], config: ProxyConfig, endpoint_chains: bool
) -> dict[str, list[PortRules]]:
    return {
        s: [port_rules(p, eps, config, endpoint_chains=endpoint_chains) for p, eps in state.ports(s)] for s in services
    }


def hairpin_members(state: DesiredState, services: Iterable[str], config: ProxyConfig) -> list[str]:
    """KUBE-LOOP-BACK members of the listed Services, once per Service port that wants them (the caller
    counts references: two Services may share an endpoint)."""
    return [
        loop_back_member(ep.ip, port.protocol, ep.port)
        for service in services
        for port, eps in state.ports(service)
        for ep in _served(select_endpoints(port, eps, config.node_name))
    ]


def _chains(rules: Iterable[list[PortRules]]) -> dict[str, list[str]]:
    return {name: lines for port_list in rules for pr in port_list for name, lines in pr.chains.items()}


def render(
    state: DesiredState,
    config: ProxyConfig,
    *,
    changed: Collection[str] | None = None,
    previous: DesiredState | None = None,
    existing: Collection[str] = (),
    insert_jumps: Sequence[JumpRule] = (),
    endpoint_chains: bool = True,
) -> str:
    """The `iptables-restore --noflush` text of one sync (`render_chunks`, joined)."""
    return "".join(
        render_chunks(
            state,
            config,
            changed=changed,
            previous=previous,
            existing=existing,
            insert_jumps=insert_jumps,
            endpoint_chains=endpoint_chains,
        )
    )


def render_chunks(
    state: DesiredState,
    config: ProxyConfig,
    *,
    changed: Collection[str] | None = None,
    previous: DesiredState | None = None,
    existing: Collection[str] = (),
    insert_jumps: Sequence[JumpRule] = (),
    endpoint_chains: bool = True,
) -> Iterator[str]:
    """The text of one sync in pieces, so that the kernel tool parses while the rest is rendered. Only the
    last piece refers to the hairpin ipset (the caller may still be filling it while the others go out).

    `changed=None` is a full sync: every chain is declared (emptied) and rewritten, any chain of ours in
    `existing` (read from the kernel at start-up) that is no longer wanted is deleted, and the jump
    rules in `insert_jumps` (known to be missing) are inserted at the top of their built-in chains.
    Otherwise only the chains of the `changed` Services are rewritten, stale ones (present in
    `previous`) deleted, and the shared dispatch chains rewritten only when a changed Service's
    dispatch rules differ. `endpoint_chains` picks the layout (module docstring); a partial sync must use
    the layout the kernel holds.
    """
    if changed is None:
        yield from _full(state, config, existing, insert_jumps, endpoint_chains)
        return
    before = _rules_of(previous or DesiredState(), changed, config, endpoint_chains)
    current = _rules_of(state, changed, config, endpoint_chains)
    chains = _chains(current.values())
    stale = sorted(_chains(before.values()).keys() - chains.keys())
    differs = any([p.dispatch() for p in before[s]] != [p.dispatch() for p in current[s]] for s in changed)
    dispatch = _rules_of(state, sorted(state.services), config, endpoint_chains) if differs else None
    yield _assemble(config, chains, stale, dispatch)


BATCH = 200  # Services per chunk


def _full(
    state: DesiredState,
    config: ProxyConfig,
    existing: Collection[str],
    jumps: Sequence[JumpRule],
    endpoint_chains: bool,
) -> Iterator[str]:
    """nat first, one Service at a time (a chain is declared just before its rules, after the chains it
    jumps to), its dispatch rules last; then filter, whose rules were collected on the way."""
    nat_fixed, tail, filter_fixed = _fixed_rules(config)
    yield "*nat\n" + "".join(f":{c} - [0:0]\n" for c in NAT_FIXED)
    written: set[str] = set()
    ports: list[PortRules] = []
    buf: list[str] = []
    for i, service in enumerate(sorted(state.services), 1):
        for port, eps in state.ports(service):
            pr = port_rules(port, eps, config, endpoint_chains=endpoint_chains)
            for name, lines in pr.chains.items():
                buf.append(f":{name} - [0:0]")
                buf += lines
                written.add(name)
            pr.chains = {}  # keep only the dispatch lines for the end
            ports.append(pr)
        if i % BATCH == 0:
            yield "\n".join(buf) + "\n"
            buf = []
    stale = sorted({c for c in existing if c.startswith(OWNED_PREFIXES)} - written)
    buf += [line for pr in ports for line in pr.nat_services]
    buf += tail
    buf += [line for pr in ports for line in pr.nat_nodeports]
    buf += nat_fixed
    buf += [f":{c} - [0:0]" for c in stale]
    buf += [f"-X {c}" for c in stale]
    buf += _inserts(jumps, "nat")
    buf += ["COMMIT", "*filter"]
    buf += [f":{c} - [0:0]" for c in FILTER_FIXED]
    buf += [line for pr in ports for line in pr.filter_services]
    buf += [line for pr in ports for line in pr.filter_external]
    buf += filter_fixed
    buf += _inserts(jumps, "filter")
    buf.append("COMMIT")
    yield "\n".join(buf) + "\n"


def _assemble(
    config: ProxyConfig,
    chains: dict[str, list[str]],
    stale: list[str],
    dispatch: dict[str, list[PortRules]] | None,
) -> str:
    """A partial sync's text: the changed chains, and the dispatch chains when they changed."""
    _, tail, filter_fixed = _fixed_rules(config)
    out: list[str] = []
    ports = [pr for prs in (dispatch or {}).values() for pr in prs]
    if dispatch is not None:
        out.append("*filter")
        out += [f":{c} - [0:0]" for c in FILTER_FIXED]
        out += [line for pr in ports for line in pr.filter_services]
        out += [line for pr in ports for line in pr.filter_external]
        out += filter_fixed
        out.append("COMMIT")
    out.append("*nat")
    if dispatch is not None:
        out += [f":{c} - [0:0]" for c in NAT_FIXED[:2]]
    out += [f":{c} - [0:0]" for c in (*chains, *stale)]
    if dispatch is not None:
        out += [line for pr in ports for line in pr.nat_services]
        out += tail
        out += [line for pr in ports for line in pr.nat_nodeports]
    for lines in chains.values():
        out += lines
    out += [f"-X {c}" for c in stale]
    out.append("COMMIT")
    return "\n".join(out) + "\n"


def _inserts(jumps: Sequence[JumpRule], table: str) -> list[str]:
    # Inserting at position 1 in reverse order leaves them at the top in the listed order.
    return [f"-I {r.chain} 1 {jump_args(r)}" for r in reversed(jumps) if r.table == table]
