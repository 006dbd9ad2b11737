"""ipsets as both proxy modes that match on them use them: `ipset restore` text (pure), reference counts
for members several Services share, and the one tool run.

A full sync fills a temporary twin of each set and swaps it in, so a reader never sees a set half
filled; a partial sync edits members in place, so one changed endpoint costs two lines, not a rewrite.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from netproxy.errors import ApplyError

IPSET_NAME_MAX = 31  # IPSET_MAXNAMELEN - 1
TEMP_SUFFIX = "-N"  # the temporary twin a set is filled under before the swap
# The kernel's default of 65,536 members is too few for one endpoint per member at 10k Services × 10.
HASH_MAXELEM = "maxelem 1048576"


@dataclass(frozen=True)
class SetSpec:
    name: str
    kind: str  # ipset type, e.g. "hash:ip,port"
    options: str = ""

    def create(self, name: str) -> str:
        family = "" if self.kind.startswith("bitmap") else " family inet"
        opts = f" {self.options}" if self.options else ""
        return f"create {name} {self.kind}{family}{opts} -exist"


# A pod reaching itself through its Service (endpoint,proto:port,endpoint): kube-proxy's IPVS set, used by
# the iptables mode too. Matched after DNAT as `dst,dst,src`.
LOOP_BACK = SetSpec("KUBE-LOOP-BACK", "hash:ip,port,ip", HASH_MAXELEM)


def loop_back_member(ip: str, protocol: str, port: int) -> str:
    return f"{ip},{protocol.lower()}:{port},{ip}"


def render(specs: Sequence[SetSpec], members: Mapping[str, Collection[str]]) -> str:
    """`ipset restore` text: for each set, create if missing, fill a temporary twin, swap, destroy."""
    lines: list[str] = []
    for spec in specs:
        temp = spec.name + TEMP_SUFFIX
        assert len(temp) <= IPSET_NAME_MAX, temp
        lines += [spec.create(spec.name), spec.create(temp), f"flush {temp}"]
        lines.extend(f"add {temp} {member}" for member in members.get(spec.name, ()))
        lines += [f"swap {temp} {spec.name}", f"destroy {temp}"]
    return "\n".join(lines) + "\n"


def render_edits(added: Mapping[str, Collection[str]], removed: Mapping[str, Collection[str]]) -> str:
    """`ipset restore` text that edits members in place; empty when nothing changed."""
    lines: list[str] = []
    for name in sorted(added.keys() | removed.keys()):
        gone, new = set(removed.get(name, ())), set(added.get(name, ()))
        lines.extend(f"del {name} {member} -exist" for member in sorted(gone - new))
        lines.extend(f"add {name} {member} -exist" for member in sorted(new - gone))
    return "\n".join(lines) + "\n" if lines else ""


def by_set(pairs: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    """(set name, member) pairs grouped per set."""
    out: dict[str, set[str]] = {}
    for name, member in pairs:
        out.setdefault(name, set()).add(member)
    return out


T = TypeVar("T", bound=Hashable)


@dataclass(frozen=True)
class Crossings(Generic[T]):
    """What a count update made appear (0 → more) and vanish (more → 0): what the kernel must gain and lose."""

    appeared: frozenset[T]
    vanished: frozenset[T]


class RefCounts(Generic[T]):
    """How many Services want each item (an ipset member, a local address), so that an item two Services
    share stays while either still wants it and a partial sync touches only the changed Services' items."""

    def __init__(self) -> None:
        self._counts: Counter[T] = Counter()

    def items(self) -> frozenset[T]:
        return frozenset(self._counts)

    def clear(self) -> None:
        self._counts.clear()

    def reset(self, items: Iterable[T]) -> None:
        """Start over from `items` (a full sync): one C-level count, not an update per item."""
        self._counts = Counter(items)

    def update(self, *, removed: Iterable[T] = (), added: Iterable[T] = ()) -> Crossings[T]:
        before: dict[T, int] = {}
        for item, sign in [*((i, -1) for i in removed), *((i, 1) for i in added)]:
            before.setdefault(item, self._counts[item])
            self._counts[item] += sign
        appeared = frozenset(i for i, n in before.items() if n <= 0 < self._counts[i])
        vanished = frozenset(i for i, n in before.items() if n > 0 >= self._counts[i])
        for item in before:
            if self._counts[item] <= 0:
                del self._counts[item]
        return Crossings(appeared, vanished)


class IpsetTool:
    """`ipset restore` as a process; `prefix` runs it elsewhere (e.g. `ip netns exec NODE`)."""

    def __init__(self, prefix: Sequence[str] = ()) -> None:
        self._prefix = list(prefix)

    def restore(self, text: str) -> None:
        """One run; a refusal leaves the sets as they were up to the refused line (each swap is atomic)."""
        try:
            res = subprocess.run(
                [*self._prefix, "ipset", "restore"], input=text, capture_output=True, text=True, check=False
            )
        except OSError as err:
            raise ApplyError("ipset restore", -1, str(err)) from err
        if res.returncode != 0:
            raise ApplyError("ipset restore", res.returncode, res.stderr)
