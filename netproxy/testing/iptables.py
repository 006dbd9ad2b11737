"""A stateful fake of the iptables tools and a packet simulator walking the rules it holds.

`FakeIptables` applies `iptables-restore --noflush` text with the kernel's rules that matter to us: a
declared chain is created or emptied, others are untouched, `-A` needs an existing chain, a jump needs
an existing target, `-X` refuses a chain still referenced, `--match-set` needs an existing set (in its
`ipsets`, a FakeIpset), and the whole text applies or nothing does.

`simulate` follows one new packet through nat, filter and nat POSTROUTING and returns every possible
outcome with its probability (`statistic` branches are followed both ways), so a test proves where a
packet goes instead of comparing rule text.
"""

from __future__ import annotations

import copy
import ipaddress
import shlex
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from netproxy.errors import ApplyError
from netproxy.iptables.render import JumpRule, jump_args
from netproxy.testing.fakes import FakeIpset

BUILTIN = {
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
}
TARGETS = {"ACCEPT", "DROP", "RETURN", "REJECT", "DNAT", "SNAT", "MASQUERADE", "MARK"}


def _target(rule: str) -> str | None:
    parts = rule.split(" -j ")
    return parts[1].split()[0] if len(parts) > 1 else None


def _match_set(rule: str) -> str | None:
    parts = rule.split(" --match-set ")
    return parts[1].split()[0] if len(parts) > 1 else None


@dataclass
class FakeIptables:
    """Tables as {table: {chain: [rule text without `-A CHAIN`]}}."""

    backend: str = "nft"
    tables: dict[str, dict[str, list[str]]] = field(
        default_factory=lambda: {t: {c: [] for c in chains} for t, chains in BUILTIN.items()}
    )
    fail_next: str | None = None  # the next restore fails with this message (a kernel refusal)
    refuse: str | None = None  # every restore whose text contains this fails (a rule the kernel rejects)
    restores: list[str] = field(default_factory=list)
    ipsets: FakeIpset = field(default_factory=FakeIpset)

    def restore(self, chunks: str | Iterable[str]) -> None:
        text = chunks if isinstance(chunks, str) else "".join(chunks)
        if self.fail_next is not None:
            msg, self.fail_next = self.fail_next, None
            raise ApplyError("iptables-restore", 2, msg)
        if self.refuse is not None and self.refuse in text:
            raise ApplyError("iptables-restore", 2, f"refused a rule with {self.refuse}")
        work = copy.deepcopy(self.tables)
        table: dict[str, list[str]] | None = None
        for n, line in enumerate(text.splitlines(), 1):
            if not line or line.startswith("#"):
                continue
            if line.startswith("*"):
                table = work[line[1:]]
            elif line == "COMMIT":
                table = None
            elif table is None:
                raise ApplyError("iptables-restore", 2, f"line {n}: outside a table")
            elif line.startswith(":"):
                name = line[1:].split()[0]
                if name not in BUILTIN["nat"] + BUILTIN["filter"]:
                    table[name] = []
            elif (ipset := _match_set(line)) is not None and ipset not in self.ipsets.sets:
                raise ApplyError("iptables-restore", 2, f"line {n}: Set {ipset} doesn't exist.")
            elif line.startswith("-A "):
                chain, rule = line[3:].split(" ", 1)
                target = _target(rule)
                if chain not in table or (target and target not in TARGETS and target not in table):
                    raise ApplyError("iptables-restore", 2, f"line {n}: no chain {chain} or target {target}")
                table[chain].append(rule)
            elif line.startswith("-I "):
                chain, pos, rule = line[3:].split(" ", 2)
                if chain not in table:
                    raise ApplyError("iptables-restore", 2, f"line {n}: no chain {chain}")
                table[chain].insert(int(pos) - 1, rule)
            elif line.startswith("-X "):
                name = line[3:].strip()
                used = any(_target(r) == name for rules in table.values() for r in rules)
                if name not in table or used:
                    raise ApplyError("iptables-restore", 2, f"line {n}: cannot delete {name}")
                del table[name]
            else:
                raise ApplyError("iptables-restore", 2, f"line {n}: unsupported {line!r}")
        self.tables = work
        self.restores.append(text)

    def ensure_jumps(self, rules: Sequence[JumpRule]) -> None:
        for rule in reversed(rules):
            chain = self.tables[rule.table][rule.chain]
            if jump_args(rule) not in chain:
                chain.insert(0, jump_args(rule))

    def save(self, table: str) -> str:
        out = [f"*{table}"]
        out += [f":{c} {'ACCEPT' if c in BUILTIN[table] else '-'} [0:0]" for c in self.tables[table]]
        out += [f"-A {c} {r}" for c, rules in self.tables[table].items() for r in rules]
        return "\n".join([*out, "COMMIT"]) + "\n"


# --- packet simulator ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Packet:
    src: str
    dst: str
    proto: str = "tcp"
    dport: int = 80


@dataclass(frozen=True)
class Outcome:
    verdict: str  # ACCEPT, DROP or REJECT
    dnat: str | None = None  # "ip:port" the packet was DNATed to
    masquerade: bool = False
    recent: frozenset[str] = frozenset()  # `recent` lists the packet's source was added to


@dataclass(frozen=True)
class _Ctx:
    pkt: Packet
    mark: int = 0
    dnat: str | None = None
    masq: bool = False
    recent: frozenset[str] = frozenset()


def _in(addr: str, net: str) -> bool:
    return ipaddress.ip_address(addr) in ipaddress.ip_network(net, strict=False)


class _Sim:
    def __init__(
        self,
        tables: dict[str, dict[str, list[str]]],
        local: set[str],
        recent: set[tuple[str, str]],
        sets: Mapping[str, Collection[str]],
    ):
        self.tables = tables
        self.local = local
        self.known_recent = recent
        self.sets = sets

    def is_local(self, addr: str) -> bool:
        return addr in self.local or _in(addr, "127.0.0.0/8")

    def _matches(self, tokens: list[str], ctx: _Ctx) -> tuple[float, list[str]]:
        """(probability the match part holds, remaining target tokens)."""
        p, pkt, i, neg = 1.0, ctx.pkt, 0, False
        dst = ctx.dnat.split(":")[0] if ctx.dnat else pkt.dst
        dport = int(ctx.dnat.split(":")[1]) if ctx.dnat else pkt.dport
        while i < len(tokens):
            tok = tokens[i]
            if tok == "!":
                neg, i = True, i + 1
                continue
            if tok == "-j":
                return p, tokens[i + 1 :]
            arg = tokens[i + 1] if i + 1 < len(tokens) else ""
            step, ok = 2, True
            if tok == "-s":
                ok = _in(pkt.src, arg)
            elif tok == "-d":
                ok = _in(dst, arg)
            elif tok == "-p":
                ok = pkt.proto == arg
            elif tok == "--dport":
                ok = dport == int(arg)
            elif tok == "--dst-type":
                ok = self.is_local(dst)
            elif tok == "--src-type":
                ok = self.is_local(pkt.src)
            elif tok == "--mark":
                value, mask = (int(x, 16) for x in arg.split("/"))
                ok = ctx.mark & mask == value
            elif tok == "--ctstate":
                states = {"NEW"} | ({"DNAT"} if ctx.dnat else set())
                ok = bool(states & set(arg.split(",")))
            elif tok == "--probability":
                if neg:
                    raise ValueError("negated statistic")
                p *= float(arg)
            elif tok in ("--rcheck", "--update"):
                ok, step = self._recent_has(tokens, pkt.src, ctx), 1
            elif tok == "--match-set":
                ok, step = self._set_key(tokens[i + 2], ctx.pkt, dst, dport) in self.sets.get(arg, ()), 3
            elif tok in ("--set", "--reap"):
                step = 1
            elif tok not in ("-m", "--comment", "--mode", "--name", "--seconds"):
                raise ValueError(f"simulator does not know {tok}")
            if ok == neg:
                return 0.0, []
            neg = False
            i += step
        return p, []

    @staticmethod
    def _set_key(flags: str, pkt: Packet, dst: str, dport: int) -> str:
        """The member a packet looks up, for ip/port dimensions (`dst,dst,src` on hash:ip,port,ip)."""
        parts = []
        for n, flag in enumerate(flags.split(",")):
            if n == 1:
                if flag != "dst":
                    raise ValueError("simulator knows destination ports only")
                parts.append(f"{pkt.proto}:{dport}")
            else:
                parts.append(dst if flag == "dst" else pkt.src)
        return ",".join(parts)

    def _recent_has(self, tokens: list[str], src: str, ctx: _Ctx) -> bool:
        name = tokens[tokens.index("--name") + 1]
        return (name, src) in self.known_recent or name in ctx.recent

    def walk(self, table: str, chain: str, ctx: _Ctx, depth: int = 0) -> list[tuple[float, _Ctx, str | None]]:
        """Outcomes of traversing `chain`: (probability, context, terminal verdict or None = fell through)."""
        if depth > 20:
            raise ValueError("jump loop")
        results: list[tuple[float, _Ctx, str | None]] = []
        pending = [(1.0, ctx)]
        for rule in self.tables[table][chain]:
            nxt: list[tuple[float, _Ctx]] = []
            for prob, c in pending:
                tokens = shlex.split(rule)
                p, target = self._matches(tokens, c)
                if p < 1.0:
                    nxt.append((prob * (1 - p), c))
                if p == 0.0:
                    continue
                if "--set" in tokens:
                    c = replace(c, recent=c.recent | {tokens[tokens.index("--name") + 1]})  # noqa: PLW2901
                for sub_p, sub_c, verdict in self._target(table, target, c, depth):
                    if verdict is None:
                        nxt.append((prob * p * sub_p, sub_c))
                    else:
                        results.append((prob * p * sub_p, sub_c, verdict))
            pending = nxt
        results += [(p, c, None) for p, c in pending]
        return results

    def _target(self, table: str, target: list[str], ctx: _Ctx, depth: int) -> list[tuple[float, _Ctx, str | None]]:
        if not target:
            return [(1.0, ctx, None)]
        name, opts = target[0], target[1:]
        if name == "MARK":
            value = int(opts[1], 16)
            mark = ctx.mark | value if opts[0] == "--or-mark" else ctx.mark ^ value
            return [(1.0, replace(ctx, mark=mark), None)]
        if name == "DNAT":
            return [(1.0, replace(ctx, dnat=opts[1]), "ACCEPT")]
        if name == "MASQUERADE":
            return [(1.0, replace(ctx, masq=True), "ACCEPT")]
        if name in ("ACCEPT", "DROP", "REJECT", "RETURN"):
            return [(1.0, ctx, name)]
        return [(p, c, v if v != "RETURN" else None) for p, c, v in self.walk(table, name, ctx, depth + 1)]

    def hook(self, table: str, chain: str, ctxs: list[tuple[float, _Ctx]]) -> list[tuple[float, _Ctx, str]]:
        out: list[tuple[float, _Ctx, str]] = []
        for prob, ctx in ctxs:
            for p, c, verdict in self.walk(table, chain, ctx):
                out.append((prob * p, c, "ACCEPT" if verdict in (None, "RETURN") else verdict))
        return out


def simulate(
    tables: dict[str, dict[str, list[str]]],
    packet: Packet,
    *,
    local_addrs: Iterable[str] = (),
    from_local_process: bool = False,
    recent: Iterable[tuple[str, str]] = (),
    sets: Mapping[str, Collection[str]] | None = None,
) -> dict[Outcome, float]:
    """Every outcome of the first packet of a new connection, with its probability (they sum to 1).
    `recent` holds (list name, source) pairs already recorded by earlier packets (ClientIP affinity);
    `sets` the ipsets' members."""
    sim = _Sim(tables, set(local_addrs), set(recent), sets or {})
    start = [(1.0, _Ctx(packet))]
    nat = sim.hook("nat", "OUTPUT" if from_local_process else "PREROUTING", start)
    done: dict[Outcome, float] = {}
    for p, ctx, verdict in nat:
        if verdict != "ACCEPT":
            _add(done, Outcome(verdict), p)
            continue
        dst = ctx.dnat.split(":")[0] if ctx.dnat else packet.dst
        chain = "OUTPUT" if from_local_process else "INPUT" if sim.is_local(dst) else "FORWARD"
        for fp, fctx, fverdict in sim.hook("filter", chain, [(1.0, ctx)]):
            if fverdict != "ACCEPT":
                _add(done, Outcome(fverdict), p * fp)
                continue
            final = [(1.0, fctx)]
            if chain != "INPUT":
                final = [(pp, c) for pp, c, _ in sim.hook("nat", "POSTROUTING", final)]
            for pp, c in final:
                _add(done, Outcome("ACCEPT", c.dnat, c.masq, c.recent), p * fp * pp)
    return done


def _add(done: dict[Outcome, float], outcome: Outcome, p: float) -> None:
    if p > 0:
        done[outcome] = done.get(outcome, 0.0) + p
