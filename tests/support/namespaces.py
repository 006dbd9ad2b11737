"""Per-test network namespaces and commands run inside them.

Tests never touch the namespace pytest runs in beyond creating and removing their own named netns;
everything else (links, addresses, rules) happens inside the netns, which the fixture deletes even
when the test fails. Deleting a netns destroys every link and rule in it, so cleanup cannot miss any.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from tinykube.lab.nsthread import NetnsThread

NETNS_DIR = "/run/netns"
T = TypeVar("T")


@dataclass(frozen=True)
class NetNS:
    """A named network namespace made by a test (`ip netns add`)."""

    name: str

    @property
    def path(self) -> str:
        return os.path.join(NETNS_DIR, self.name)

    def run(
        self, argv: Sequence[str], *, check: bool = True, timeout: float = 30.0, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run argv inside this namespace and return its captured output."""
        return subprocess.run(
            ["ip", "netns", "exec", self.name, *argv],
            check=check,
            text=True,
            capture_output=True,
            timeout=timeout,
            input=input,
        )

    def popen(self, argv: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
        """Start argv inside this namespace; the caller owns the process and must end it."""
        return subprocess.Popen(["ip", "netns", "exec", self.name, *argv], **kwargs)  # type: ignore[call-overload, no-any-return]


def unique_name(prefix: str = "tkt") -> str:
    """A netns/link-safe name (<= 15 chars) unique to this test run."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def add_netns(name: str) -> NetNS:
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    ns = NetNS(name)
    ns.run(["ip", "link", "set", "lo", "up"])
    return ns


def delete_netns(ns: NetNS) -> None:
    """Remove the namespace, first killing any process a test left inside it."""
    pids = subprocess.run(["ip", "netns", "pids", ns.name], capture_output=True, text=True, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), 9)
    subprocess.run(["ip", "netns", "delete", ns.name], capture_output=True, check=False)


@contextlib.contextmanager
def temporary_netns(prefix: str = "tkt") -> Iterator[NetNS]:
    """A fresh netns that is gone after the block, however the block ends."""
    ns = add_netns(unique_name(prefix))
    try:
        yield ns
    finally:
        delete_netns(ns)


def link_hosts(a: NetNS, b: NetNS, a_addr: str, b_addr: str) -> None:
    """Connect two test namespaces with a veth pair and give each end an address (CIDR notation)."""
    a_if, b_if = unique_name("va"), unique_name("vb")
    a.run(["ip", "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b.name])
    a.run(["ip", "addr", "add", a_addr, "dev", a_if])
    a.run(["ip", "link", "set", a_if, "up"])
    b.run(["ip", "addr", "add", b_addr, "dev", b_if])
    b.run(["ip", "link", "set", b_if, "up"])


def call_in_netns(ns: NetNS, fn: Callable[[], T]) -> T:
    """Runs fn once on a thread inside ns (see NetnsThread)."""
    with NetnsThread(ns.path) as thread:
        return thread.call(fn)
