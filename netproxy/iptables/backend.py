"""The iptables backend: render, then one `iptables-restore --noflush` per sync, with the hairpin
ipset edited around it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from netproxy.config import ProxyConfig
from netproxy.errors import ApplyError
from netproxy.interfaces import IptablesRunner
from netproxy.ipset import LOOP_BACK, RefCounts, render, render_edits
from netproxy.iptables.render import (
    JUMP_RULES,
    OWNED_PREFIXES,
    JumpRule,
    hairpin_members,
    jump_args,
    render_chunks,
)
from netproxy.model import DesiredState

log = logging.getLogger(__name__)


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


def endpoint_count(state: DesiredState, services: Iterable[str] | None = None) -> int:
    """Endpoints of the listed Services (all by default), counted per Service port."""
    by_service = state.endpoints if services is None else {s: state.endpoints.get(s, {}) for s in services}
    return sum(len(eps) for by_port in by_service.values() for eps in by_port.values())


def wants_endpoint_chains(endpoints: int, limit: int, *, current: bool | None) -> bool:
    """The layout for `endpoints` endpoints. Leaving the per-endpoint chains takes more than `limit`
    endpoints, coming back fewer than 3/4 of it, so a cluster hovering at the limit does not rewrite
    every chain (a full sync) on every change."""
    if limit <= 0:
        return False
    if current is False:
        return endpoints < limit * 3 // 4
    return endpoints <= limit


class IptablesBackend:
    name = "iptables"

    def __init__(self, tools: IptablesRunner, config: ProxyConfig, *, apply_ipsets: Callable[[str], None]) -> None:
        self._tools = tools
        self._config = config
        self._apply_ipsets = apply_ipsets
        self._chains: set[str] | None = None  # our nat chains in the kernel; None until listed once
        self._endpoint_chains: bool | None = None  # the layout the kernel holds; None before the first sync
        self._hairpin: RefCounts[str] = RefCounts()
        self._endpoints = 0  # in the kernel's rules: counted in full on a full sync, by difference otherwise

    def sync(self, state: DesiredState, *, previous: DesiredState, changed: Collection[str] | None) -> None:
        if changed is None:
            endpoints = endpoint_count(state)
        else:  # O(changed), not O(Services): a partial sync at 10k Services stays cheap
            endpoints = self._endpoints + endpoint_count(state, changed) - endpoint_count(previous, changed)
        layout = wants_endpoint_chains(endpoints, self._config.endpoint_chains_max, current=self._endpoint_chains)
        if changed is not None and layout != self._endpoint_chains:
            log.info("%s endpoint chains: a full sync rewrites every chain", "using" if layout else "dropping")
            changed = None
        if changed is None:
            self._full_sync(state, layout)
        else:
            self._partial_sync(state, previous, changed, layout)
        self._endpoint_chains = layout
        self._endpoints = endpoints

    def _full_sync(self, state: DesiredState, layout: bool) -> None:
        jumps: list[JumpRule] = []
        first = self._chains is None
        if self._chains is None:
            # Start-up: the only time we list the kernel (slow at scale): chains a previous run left,
            # and which of our jump rules already exist (inserting them again would duplicate them).
            saved = {t: self._tools.save(t) for t in ("nat", "filter")}
            self._chains = saved_chains(saved["nat"])
            jumps = missing_jumps(saved)
        hairpin: RefCounts[str] = RefCounts()
        hairpin.reset(hairpin_members(state, state.services, self._config))
        # The ipset tool fills the set (~0.6 s at 100k members) on the other core while the rules render and
        # parse; the rule matching the set is in the last chunk, which waits for it.
        with ThreadPoolExecutor(1, thread_name_prefix="ipset") as pool:
            filled = pool.submit(self._apply_ipsets, render([LOOP_BACK], {LOOP_BACK.name: hairpin.items()}))
            chunks = render_chunks(
                state, self._config, existing=self._chains, insert_jumps=jumps, endpoint_chains=layout
            )
            self._restore(_last_after(chunks, filled.result))
        self._hairpin = hairpin
        if not first:
            self._tools.ensure_jumps(JUMP_RULES)  # periodic full sync: someone may have flushed a chain

    def _partial_sync(
        self, state: DesiredState, previous: DesiredState, changed: Collection[str], layout: bool
    ) -> None:
        """Members a changed endpoint needs go into the hairpin set before its DNAT rule exists; members no
        longer needed leave after theirs is gone. A refusal takes the counts and the added members back."""
        before = hairpin_members(previous, changed, self._config)
        after = hairpin_members(state, changed, self._config)
        crossed = self._hairpin.update(removed=before, added=after)
        added = False
        try:
            if crossed.appeared:
                self._apply_ipsets(render_edits({LOOP_BACK.name: crossed.appeared}, {}))
                added = True
            self._restore(
                render_chunks(state, self._config, changed=changed, previous=previous, endpoint_chains=layout)
            )
        except ApplyError:
            self._hairpin.update(removed=after, added=before)
            if added:
                with contextlib.suppress(ApplyError):  # the refusal above is the error to report
                    self._apply_ipsets(render_edits({}, {LOOP_BACK.name: crossed.appeared}))
            raise
        if crossed.vanished:
            try:
                self._apply_ipsets(render_edits({}, {LOOP_BACK.name: crossed.vanished}))
            except ApplyError as err:  # harmless: they only match connections to addresses no rule DNATs to
                log.warning("stale hairpin members stay until the next full sync: %s", err)

    def _restore(self, chunks: Iterable[str]) -> None:
        sent: list[str] = []
        self._tools.restore(_tee(chunks, sent))
        self._chains = written_chains("".join(sent), self._chains or set())


def _last_after(chunks: Iterable[str], wait: Callable[[], object]) -> Iterator[str]:
    """`chunks`, with `wait()` called (and its exception raised) before the last one is handed on."""
    held: str | None = None
    for chunk in chunks:
        if held is not None:
            yield held
        held = chunk
    wait()
    if held is not None:
        yield held


def _tee(chunks: Iterable[str], sent: list[str]) -> Iterator[str]:
    for chunk in chunks:
        sent.append(chunk)
        yield chunk
