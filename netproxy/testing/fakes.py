"""Stateful fakes of the nft and ipset tools, conntrack, the event recorder and the informers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from netproxy.errors import ApplyError
from netproxy.interfaces import ConntrackFilter, Handler
from netproxy.nftables.elements import ElementEdit


@dataclass
class FakeNft:
    """Keeps every applied transaction; `fail_next` makes the next one fail like a kernel refusal."""

    applied: list[str] = field(default_factory=list)
    fail_next: str | None = None
    refuse: str | None = None  # every transaction whose text contains this fails

    def apply(self, chunks: str | Iterable[str]) -> None:
        text = chunks if isinstance(chunks, str) else "".join(chunks)
        if self.fail_next is not None:
            msg, self.fail_next = self.fail_next, None
            raise ApplyError("nft", 1, msg)
        if self.refuse is not None and self.refuse in text:
            raise ApplyError("nft", 1, f"Error: could not process rule with {self.refuse}")
        self.applied.append(text)


@dataclass
class FakeNftElements:
    """Keeps every batch of element edits; `fail_next` refuses the next one (the kernel keeps its elements)."""

    batches: list[list[ElementEdit]] = field(default_factory=list)
    fail_next: str | None = None

    def apply(self, edits: Sequence[ElementEdit]) -> None:
        if self.fail_next is not None:
            msg, self.fail_next = self.fail_next, None
            raise ApplyError("nftables-netlink", 22, msg)
        self.batches.append(list(edits))


@dataclass
class FakeIpset:
    """`ipset restore` over {set name: members}: like the tool, lines apply one by one and the first bad
    one stops the run (earlier lines stay applied); `fail_next` refuses the next run outright."""

    sets: dict[str, set[str]] = field(default_factory=dict)
    fail_next: str | None = None
    runs: list[str] = field(default_factory=list)

    def restore(self, text: str) -> None:
        if self.fail_next is not None:
            msg, self.fail_next = self.fail_next, None
            raise ApplyError("ipset restore", 1, msg)
        self.runs.append(text)
        for n, line in enumerate(text.splitlines(), 1):
            verb, name, *rest = line.split()
            exist = "-exist" in rest
            if verb == "create":
                if name in self.sets and not exist:
                    raise ApplyError("ipset restore", 1, f"line {n}: set {name} already exists")
                self.sets.setdefault(name, set())
            elif name not in self.sets:
                raise ApplyError("ipset restore", 1, f"line {n}: the set with the given name does not exist")
            elif verb in ("add", "del"):
                member, present = rest[0], rest[0] in self.sets[name]
                if present == (verb == "add") and not exist:
                    raise ApplyError("ipset restore", 1, f"line {n}: element {'already' if present else 'not'} added")
                (self.sets[name].add if verb == "add" else self.sets[name].discard)(member)
            elif verb == "flush":
                self.sets[name].clear()
            elif verb == "swap":
                self.sets[name], self.sets[rest[0]] = self.sets[rest[0]], self.sets[name]
            elif verb == "destroy":
                del self.sets[name]
            else:
                raise ApplyError("ipset restore", 1, f"line {n}: unknown command {verb}")


@dataclass(frozen=True)
class FakeFlow:
    protocol: str
    orig_dst: str
    orig_dport: int
    dst_nat: str


@dataclass
class FakeConntrack:
    flows: set[FakeFlow] = field(default_factory=set)
    calls: list[ConntrackFilter] = field(default_factory=list)

    def delete(self, flt: ConntrackFilter) -> int:
        self.calls.append(flt)
        gone = {
            f
            for f in self.flows
            if f.protocol == flt.protocol
            and flt.orig_dst in (None, f.orig_dst)
            and flt.orig_dport in (None, f.orig_dport)
            and flt.dst_nat in (None, f.dst_nat)
        }
        self.flows -= gone
        return len(gone)


@dataclass
class FakeEvents:
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (ns/name, reason, message)

    async def warning(self, obj: Mapping[str, Any], reason: str, message: str) -> None:
        meta = obj.get("metadata") or {}
        self.events.append((f"{meta.get('namespace')}/{meta.get('name')}", reason, message))


@dataclass
class FakeSource:
    """An informer driven by the test: `add`/`update`/`delete` call the registered handlers."""

    handlers: list[tuple[Handler, Handler, Handler]] = field(default_factory=list)
    synced: bool = False

    @property
    def has_synced(self) -> bool:
        return self.synced

    def add_handler(self, on_add: Handler, on_update: Handler, on_delete: Handler) -> None:
        self.handlers.append((on_add, on_update, on_delete))

    async def start(self) -> None:
        self.synced = True

    def add(self, obj: Mapping[str, Any]) -> None:
        for on_add, _, _ in self.handlers:
            on_add(obj)

    def update(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        for _, on_update, _ in self.handlers:
            on_update(old, new)

    def delete(self, obj: Mapping[str, Any]) -> None:
        for _, _, on_delete in self.handlers:
            on_delete(obj)
