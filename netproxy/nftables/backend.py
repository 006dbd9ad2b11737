"""The nftables backend: render, then one `nft -f` transaction per sync (none when nothing changed)."""

from __future__ import annotations

import itertools
from collections.abc import Collection

from netproxy.config import ProxyConfig
from netproxy.interfaces import NftRunner
from netproxy.model import DesiredState
from netproxy.nftables.render import render_chunks


class NftablesBackend:
    name = "nftables"

    def __init__(self, tool: NftRunner, config: ProxyConfig) -> None:
        self._tool = tool
        self._config = config

    def sync(self, state: DesiredState, *, previous: DesiredState, changed: Collection[str] | None) -> None:
        chunks = render_chunks(state, self._config, changed=changed, previous=previous)
        first = next(chunks, None)
        if first is not None:  # nothing changed: no transaction at all
            self._tool.apply(itertools.chain([first], chunks))
