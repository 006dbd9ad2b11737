"""A snapshot of what tests must never leave behind: netns, veth and bridge links, tinykube/test
mounts, iptables and nftables rules. Compared before and after to prove fixtures clean up."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass


def _lines(argv: list[str]) -> frozenset[str]:
    if shutil.which(argv[0]) is None:
        return frozenset()
    out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
    return frozenset(line.strip() for line in out.splitlines() if line.strip())


def _links(kind: str) -> frozenset[str]:
    return frozenset(
        line.split(":")[1].strip().split("@")[0] for line in _lines(["ip", "-o", "link", "show", "type", kind])
    )


def _mounts() -> frozenset[str]:
    with open("/proc/self/mounts") as f:
        return frozenset(line for line in f if "tinykube" in line or "pytest" in line or " overlay " in line)


@dataclass(frozen=True)
class HostState:
    netns: frozenset[str]
    veths: frozenset[str]
    bridges: frozenset[str]
    mounts: frozenset[str]
    iptables: frozenset[str]
    nftables: frozenset[str]

    def leaks_since(self, before: HostState) -> dict[str, frozenset[str]]:
        """What exists now that did not before, per kind; empty when nothing leaked."""
        leaks = {}
        for kind in ("netns", "veths", "bridges", "mounts", "iptables", "nftables"):
            extra = getattr(self, kind) - getattr(before, kind)
            if extra:
                leaks[kind] = extra
        return leaks


def snapshot() -> HostState:
    return HostState(
        netns=frozenset(n.split()[0] for n in _lines(["ip", "netns", "list"])),
        veths=_links("veth"),
        bridges=_links("bridge"),
        mounts=_mounts(),
        iptables=frozenset(r for r in _lines(["iptables-save"]) if r.startswith("-A")),
        nftables=frozenset(r for r in _lines(["nft", "list", "ruleset"]) if not r.startswith("#")),
    )
