"""The iptables backend: render, then one `iptables-restore --noflush` per sync."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence

from netproxy.config import ProxyConfig
from netproxy.interfaces import IptablesRunner
from netproxy.iptables.render import JUMP_RULES, OWNED_PREFIXES, JumpRule, jump_args, render_chunks
from netproxy.model import DesiredState


def written_chains(text: str, known: set[str]) -> set[str]:
    """Our chains after `text` was applied: declared ones added, `-X` ones removed."""
    out = set(known)
    for line in text.splitlines():
        if line.startswith(":"):
            name = line[1:].split(" ", 1)[0]
            if name.startswith(OWNED_PREFIXES):
                out.add(name)
        elif line.startswith("-X "):
            out.discard(line[3:].strip())
    return out


def saved_chains(saved: str) -> set[str]:
    """Our chains in `iptables-save` output."""
    return {
        n
        for n in (line[1:].split(" ", 1)[0] for line in saved.splitlines() if line.startswith(":"))
        if n.startswith(OWNED_PREFIXES)
    }


def missing_jumps(saved: dict[str, str], rules: Sequence[JumpRule] = JUMP_RULES) -> list[JumpRule]:
    """Jump rules absent from `iptables-save` output per table."""
    lines = {t: set(text.splitlines()) for t, text in saved.items()}
    return [r for r in rules if f"-A {r.chain} {jump_args(r)}" not in lines.get(r.table, set())]


class IptablesBackend:
    name = "iptables"

    def __init__(self, tools: IptablesRunner, config: ProxyConfig) -> None:
        self._tools = tools
        self._config = config
        self._chains: set[str] | None = None  # our nat chains in the kernel; None until listed once

    def sync(self, state: DesiredState, *, previous: DesiredState, changed: Collection[str] | None) -> None:
        jumps: list[JumpRule] = []
        first = self._chains is None
        if self._chains is None:
            # Start-up: the only time we list the kernel (slow at scale): chains a previous run left,
            # and which of our jump rules already exist (inserting them again would duplicate them).
            saved = {t: self._tools.save(t) for t in ("nat", "filter")}
            self._chains = saved_chains(saved["nat"])
            jumps = missing_jumps(saved)
        if changed is None:
            chunks = render_chunks(state, self._config, existing=self._chains, insert_jumps=jumps)
        else:
            chunks = render_chunks(state, self._config, changed=changed, previous=previous)
        sent: list[str] = []
        self._tools.restore(_tee(chunks, sent))
        self._chains = written_chains("".join(sent), self._chains)
        if changed is None and not first:
            self._tools.ensure_jumps(JUMP_RULES)  # periodic full sync: someone may have flushed a chain


def _tee(chunks: Iterable[str], sent: list[str]) -> Iterator[str]:
    for chunk in chunks:
        sent.append(chunk)
        yield chunk
