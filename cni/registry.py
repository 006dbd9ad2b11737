"""The one place that picks implementations: plugin type -> handler, with the real kernel backends.

Used by the agent and the executable's no-agent fallback, and by a runtime that wants the in-process
fast path: `cni.invoke.add(..., handlers=cni.registry.handlers())`. Imports happen inside the
functions so that a host-local call without an agent never loads pyroute2.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cni.invoke import Handler

BRIDGE = "tinykube-bridge"
HOST_LOCAL = "tinykube-host-local"
PLUGIN_TYPES = (BRIDGE, HOST_LOCAL)


class HandlerSet(dict[str, "Handler"]):
    """Handlers by plugin type, plus `close()` for what long-lived ones hold (a background thread,
    the calling thread's cached netlink handle). Call close() from the thread that used them."""

    def __init__(self, items: dict[str, Handler], closers: Iterable[Callable[[], None]] = ()) -> None:
        super().__init__(items)
        self._closers = list(closers)

    def close(self) -> None:
        for close in self._closers:
            close()


def ipam_handlers() -> dict[str, Handler]:
    from cni import hostlocal

    return {HOST_LOCAL: hostlocal.handle}


def handlers(*, host_netns: str | None = None, long_lived: bool = True) -> HandlerSet:
    """Handlers for all our plugin types. `host_netns` puts the "host" side (bridge, host veths,
    iptables) in that namespace instead of the caller's: tests and benchmarks use it. A long-lived
    caller (agent, runtime) gets veth deletion on a background thread; a one-shot process does not."""
    from concurrent.futures import ThreadPoolExecutor

    from cni.bridge import BridgePlugin
    from cni.masq import IptablesMasquerader
    from cni.netlink import PyRoute2Opener

    ipam = ipam_handlers()
    reaper = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cni-reaper") if long_lived else None
    bridge = BridgePlugin(PyRoute2Opener(host_netns), IptablesMasquerader(host_netns), ipam, reaper=reaper)
    return HandlerSet({**ipam, BRIDGE: bridge.handle}, [bridge.close])


def handler_for(plugin_type: str) -> Handler | None:
    """Just what one plugin type needs for a one-shot process (host-local alone stays stdlib-only)."""
    if plugin_type == HOST_LOCAL:
        return ipam_handlers()[HOST_LOCAL]
    return handlers(long_lived=False).get(plugin_type)
