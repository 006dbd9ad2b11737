"""The narrow doors to the kernel and the API server; each has a real implementation and a stateful
fake in `netproxy.testing`."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from netproxy.iptables.render import JumpRule
from netproxy.model import DesiredState
from netproxy.nftables.elements import ElementEdit


class IptablesRunner(Protocol):
    backend: str  # "legacy" or "nft"

    def restore(self, chunks: str | Iterable[str]) -> None: ...
    def ensure_jumps(self, rules: Sequence[JumpRule]) -> None: ...
    def save(self, table: str) -> str: ...


class NftRunner(Protocol):
    def apply(self, chunks: str | Iterable[str]) -> None: ...


class NftElementWriter(Protocol):
    """Set/map element edits as one atomic kernel transaction (netproxy.nftables.elements)."""

    def apply(self, edits: Sequence[ElementEdit]) -> None: ...


class Backend(Protocol):
    """Programs the kernel from a DesiredState; raises ApplyError and then leaves the kernel as it was."""

    name: str

    def sync(self, state: DesiredState, *, previous: DesiredState, changed: Collection[str] | None) -> None: ...


@dataclass(frozen=True)
class ConntrackFilter:
    """Which conntrack entries to delete: all fields given must match (None = any)."""

    protocol: str  # "udp" (TCP/SCTP endpoints end their own connections)
    orig_dst: str | None = None
    orig_dport: int | None = None
    dst_nat: str | None = None  # the endpoint the entry was DNATed to


class Conntrack(Protocol):
    def delete(self, flt: ConntrackFilter) -> int:
        """Delete matching entries; returns how many were deleted."""
        ...


Handler = Callable[..., Any]


class ObjectSource(Protocol):
    """What the proxy needs of contract 3's Informer (controlplane.client)."""

    @property
    def has_synced(self) -> bool: ...
    def add_handler(self, on_add: Handler, on_update: Handler, on_delete: Handler) -> None: ...
    async def start(self) -> None: ...


class EventRecorder(Protocol):
    async def warning(self, obj: Mapping[str, Any], reason: str, message: str) -> None: ...
