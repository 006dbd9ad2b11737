"""The nftables backend: render, then one `nft -f` transaction per sync (none when nothing changed);
a partial sync that only edits endpoint-map elements goes straight to the kernel as a netlink batch
when an element writer is given (elements.py says why)."""

from __future__ import annotations

import itertools
from collections.abc import Collection

from netproxy.config import ProxyConfig
from netproxy.interfaces import NftElementWriter, NftRunner
from netproxy.model import DesiredState
from netproxy.nftables.render import element_edits, render_chunks


class NftablesBackend:
    name = "nftables"

    def __init__(self, tool: NftRunner, config: ProxyConfig, *, elements: NftElementWriter | None = None) -> None:
        self._tool = tool
        self._config = config
        self._elements = elements

    def sync(self, state: DesiredState, *, previous: DesiredState, changed: Collection[str] | None) -> None:
        if changed is not None and self._elements is not None:
            edits = element_edits(state, previous, changed, self._config)
            if edits is not None:
                self._elements.apply(edits)
                return
        chunks = render_chunks(state, self._config, changed=changed, previous=previous)
        first = next(chunks, None)
        if first is not None:  # nothing changed: no transaction at all
            self._tool.apply(itertools.chain([first], chunks))
