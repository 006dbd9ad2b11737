"""`ipMasq` through the iptables CLI: one chain per network in the nat table, one tagged jump rule
per attachment in POSTROUTING.

    POSTROUTING -s <pod ip> -m comment --comment tinykube:<net>:<cid>:<ifname> -j TKCNI-<hash(net)>
    TKCNI-<hash>: -d <pod subnet> -j ACCEPT ; ! -d 224.0.0.0/4 (ff00::/8) -j MASQUERADE

ADD is one `iptables-restore --noflush` transaction (re-declaring the chain rewrites its two rules,
which are the same for every pod of the network); DEL deletes the one jump rule. `-w` waits for the
xtables lock so concurrent ADDs do not fail.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from collections.abc import Collection, Sequence

from cni.errors import CniError, IOFailure
from cni.interfaces import IPInterface, Masquerader

CHAIN_PREFIX = "TKCNI-"
MULTICAST = {4: "224.0.0.0/4", 6: "ff00::/8"}
FALLBACK_PATH = "/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin"
_TAG_IN_RULE = re.compile(r'--comment "?(tinykube:[^" ]+)"?')
# iptables exits 1 when asked to delete or check a rule that is not there.
RULE_ABSENT = 1


class MasqueradeCheckFailed(CniError):
    default_code = 100


def chain_name(network: str) -> str:
    """Deterministic and within iptables' 28-character chain name limit."""
    return CHAIN_PREFIX + hashlib.sha256(network.encode()).hexdigest()[:16]


def _binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=FALLBACK_PATH)
    if found is None:
        raise IOFailure(f"{name} not found", "ipMasq needs the iptables tools")
    return found


def _jump_rule(network: str, tag: str, address: IPInterface) -> list[str]:
    host = f"{address.ip}/{address.max_prefixlen}"
    return ["POSTROUTING", "-s", host, "-m", "comment", "--comment", tag, "-j", chain_name(network)]


def restore_text(network: str, tag: str, addresses: Sequence[IPInterface]) -> str:
    """The iptables-restore input that sets up masquerading for one attachment (one family)."""
    chain = chain_name(network)
    lines = ["*nat", f":{chain} - [0:0]"]
    for subnet in dict.fromkeys(a.network for a in addresses):
        lines.append(f"-A {chain} -d {subnet} -j ACCEPT")
    if addresses:
        lines.append(f"-A {chain} ! -d {MULTICAST[addresses[0].version]} -j MASQUERADE")
    for a in addresses:
        rule = _jump_rule(network, tag, a)
        rule[rule.index(tag)] = f'"{tag}"'
        lines.append("-A " + " ".join(rule))
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


class IptablesMasquerader:
    def __init__(self, host_netns: str | None = None) -> None:
        self._prefix = ["nsenter", f"--net={host_netns}"] if host_netns else []

    def _run(self, argv: list[str], *, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                [*self._prefix, *argv], input=stdin, capture_output=True, text=True, timeout=60, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise IOFailure(f"cannot run {argv[0]}", str(err)) from err

    @staticmethod
    def _tools(version: int) -> tuple[str, str]:
        return ("iptables", "iptables-restore") if version == 4 else ("ip6tables", "ip6tables-restore")

    def add(self, network: str, tag: str, addresses: Sequence[IPInterface]) -> None:
        for version in (4, 6):
            family = [a for a in addresses if a.version == version]
            if not family:
                continue
            restore = _binary(self._tools(version)[1])
            proc = self._run([restore, "-w", "--noflush"], stdin=restore_text(network, tag, family))
            if proc.returncode != 0:
                raise IOFailure("failed to install ipMasq rules", proc.stderr.strip())

    def remove(self, network: str, tag: str, addresses: Sequence[IPInterface] | None) -> None:
        if addresses is None:
            self.gc(network, keep_tags=(), only_tag=tag)
            return
        for a in addresses:
            tool = _binary(self._tools(a.version)[0])
            proc = self._run([tool, "-w", "-t", "nat", "-D", *_jump_rule(network, tag, a)])
            if proc.returncode not in (0, RULE_ABSENT):
                raise IOFailure("failed to remove ipMasq rule", proc.stderr.strip())

    def check(self, network: str, tag: str, addresses: Sequence[IPInterface]) -> None:
        for a in addresses:
            tool = _binary(self._tools(a.version)[0])
            proc = self._run([tool, "-w", "-t", "nat", "-C", *_jump_rule(network, tag, a)])
            if proc.returncode != 0:
                raise MasqueradeCheckFailed("ipMasq rule missing", f"{a.ip} ({tag})")

    def gc(self, network: str, keep_tags: Collection[str], *, only_tag: str | None = None) -> None:
        """Delete jump rules of `network` whose tag is not kept (or, with only_tag, just that tag's)."""
        prefix = f"tinykube:{network}:"
        for version in (4, 6):
            tool = shutil.which(self._tools(version)[0]) or shutil.which(self._tools(version)[0], path=FALLBACK_PATH)
            if tool is None:
                continue
            listing = self._run([tool, "-w", "-t", "nat", "-S", "POSTROUTING"])
            for line in listing.stdout.splitlines():
                match = _TAG_IN_RULE.search(line)
                if not match or not match.group(1).startswith(prefix):
                    continue
                tag = match.group(1)
                if (only_tag is not None and tag != only_tag) or tag in keep_tags:
                    continue
                argv = line.split()
                if argv[:1] != ["-A"]:
                    continue
                argv = [a.strip('"') for a in argv[1:]]
                self._run([tool, "-w", "-t", "nat", "-D", *argv])


_: Masquerader = IptablesMasquerader()
