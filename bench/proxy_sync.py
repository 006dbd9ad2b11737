"""Rule-sync speed of netproxy (issue 9, point 6), as ratios against the kernel tools themselves.

For each backend and size (services × 10 endpoints) it measures, in one run and one network namespace:
  full   - the proxy's first sync (`Proxier.sync_once`: trackers, render, start-up listing, apply)
  floor  - a bare `iptables-restore --noflush` / `nft -f` of exactly the text that sync applied (and,
           for iptables, the `ipset restore` of its hairpin set), from the same (empty) kernel state:
           what any proxy must pay the kernel tools
  change - one endpoint of one Service replaced, at that size (a partial sync)
  1-rule - iptables only: a bare restore adding one rule to a new chain at that size, the least any
           change costs (the nft backend re-validates the table, the legacy one rewrites it)
Each is the best of --repeat runs (full and floor alternate, so both see the same machine).
Goals: full ≤ 1.1 × floor; change ≤ 100 ms (iptables), ≤ 50 ms (nftables) at 10k services.

It runs only inside its own network and mount namespaces: started outside them it re-executes itself
under `unshare --net --mount`, so no rule ever reaches the host.

    python -m bench.proxy_sync [--sizes 1000,10000] [--modes iptables-nft,iptables-legacy,nftables]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from netproxy.config import ProxyConfig
from netproxy.ipset import IpsetTool
from netproxy.iptables.backend import IptablesBackend
from netproxy.iptables.kernel import IptablesTools, detect_backend
from netproxy.nftables.backend import NftablesBackend
from netproxy.nftables.elements import NetlinkElements
from netproxy.nftables.kernel import NftTool
from netproxy.nftables.render import TABLE
from netproxy.proxier import Proxier
from netproxy.testing import FakeConntrack, FakeEvents
from netproxy.testing.objects import endpoint_slice, service

MARK = "TINYKUBE_BENCH_ISOLATED"
CONFIG = ProxyConfig(node_name="bench-node", cluster_cidr="10.128.0.0/9")
ENDPOINTS = 10
GOAL_CHANGE_MS = {"iptables": 100.0, "nftables": 50.0}
ONE_RULE = "*nat\n:TK-BENCH-ONE - [0:0]\n-A TK-BENCH-ONE -j RETURN\nCOMMIT\n"


def isolate(argv: Sequence[str]) -> None:
    """Re-run this program in fresh network + mount namespaces unless already there."""
    if os.environ.get(MARK) == "1":
        subprocess.run(["mount", "--make-rprivate", "/"], check=True)
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        return
    if os.geteuid() != 0:
        sys.exit("bench/proxy_sync.py needs root (it programs iptables/nftables in its own netns)")
    env = {**os.environ, MARK: "1"}
    cmd = ["unshare", "--net", "--mount", "--fork", sys.executable, "-m", "bench.proxy_sync", *argv]
    sys.exit(subprocess.run(cmd, env=env, check=False).returncode)


def _ip(n: int, base: int) -> str:
    return f"10.{base + (n >> 16)}.{(n >> 8) & 255}.{n & 255}"


def world(n_services: int) -> list[dict[str, Any]]:
    objs = []
    for i in range(n_services):
        objs.append(service(f"s{i}", _ip(i + 1, 96)))
        eps = [_ip(i * ENDPOINTS + j + 1, 128) for j in range(ENDPOINTS)]
        objs.append(endpoint_slice(f"s{i}", eps, node_name="bench-node"))
    return objs


class Recording:
    """Wraps a kernel runner and keeps the last text it applied (to replay it as the floor)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.backend = getattr(inner, "backend", "")
        self.texts: list[str] = []
        self.ipset_texts: list[str] = []

    def restore(self, chunks: str | Iterable[str]) -> None:
        parts: list[str] = []

        def tee() -> Iterator[str]:  # keeps the proxy's streaming (render while the tool parses)
            for chunk in [chunks] if isinstance(chunks, str) else chunks:
                parts.append(chunk)
                yield chunk

        self.inner.restore(tee())
        self.texts.append("".join(parts))

    def apply(self, chunks: str | Iterable[str]) -> None:
        parts: list[str] = []

        def tee() -> Iterator[str]:
            for chunk in [chunks] if isinstance(chunks, str) else chunks:
                parts.append(chunk)
                yield chunk

        self.inner.apply(tee())
        self.texts.append("".join(parts))

    def apply_ipsets(self, text: str) -> None:
        IpsetTool().restore(text)
        self.ipset_texts.append(text)

    def ensure_jumps(self, rules: Any) -> None:
        self.inner.ensure_jumps(rules)

    def save(self, table: str) -> str:
        return str(self.inner.save(table))


def clear() -> None:
    """Empty every table and drop every ipset (we are alone in this netns)."""
    subprocess.run(["nft", "flush", "ruleset"], check=True)
    for table in ("nat", "filter"):
        subprocess.run(["iptables-legacy", "-t", table, "-F"], check=False, capture_output=True)
        subprocess.run(["iptables-legacy", "-t", table, "-X"], check=False, capture_output=True)
    subprocess.run(["ipset", "destroy"], check=True)


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float  # user + system of this process and of the tools it ran: robust on a loaded machine


class Stopwatch:
    """Wall time, and CPU time of this process plus its (waited-for) children."""

    def __enter__(self) -> Stopwatch:
        self._start = (time.perf_counter(), _cpu())
        return self

    def __exit__(self, *exc: object) -> None:
        self.timing = Timing(time.perf_counter() - self._start[0], _cpu() - self._start[1])


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass
class Row:
    mode: str
    services: int
    full: Timing
    floor: Timing
    change: Timing
    one_rule: Timing | None  # iptables modes: a bare one-rule restore at this size

    def ratio(self, what: str) -> float:
        return float(getattr(self.full, what) / getattr(self.floor, what))


def _fresh(mode: str, n: int) -> tuple[Proxier, Recording, list[str], NetlinkElements | None]:
    """A proxy that has seen the world of `n` Services but synced nothing, its recording tool, the bare
    tool's command line, and the element writer to close (nftables)."""
    writer = None
    if mode.startswith("iptables-"):
        tool = Recording(IptablesTools(mode.split("-", 1)[1]))
        backend: Any = IptablesBackend(tool, CONFIG, apply_ipsets=tool.apply_ipsets)
        replay = [f"{mode}-restore", "--noflush", "-w", "5"]
    else:
        tool, writer = Recording(NftTool()), NetlinkElements(TABLE)
        backend = NftablesBackend(tool, CONFIG, elements=writer)
        replay = ["nft", "-f", "-"]
    proxier = Proxier(backend, CONFIG, conntrack=FakeConntrack(), events=FakeEvents())
    for obj in world(n):
        (proxier.on_service if obj["kind"] == "Service" else proxier.on_slice)(obj)
    return proxier, tool, replay, writer


def _best(timings: Sequence[Timing]) -> Timing:
    return min(timings, key=lambda t: t.wall)


def measure(mode: str, n: int, repeat: int) -> Row:
    """Best of `repeat` for each of full, floor (alternating, so both see the same machine) and change."""
    fulls, floors, changes = [], [], []
    writer: NetlinkElements | None = None
    for _ in range(repeat):
        if writer is not None:
            writer.close()
        clear()
        proxier, tool, replay, writer = _fresh(mode, n)
        with Stopwatch() as full:
            result = proxier.sync_once()
        if not result.full or result.rejected or result.recovered or proxier.need_full_sync:
            raise RuntimeError(f"{mode}: the full sync failed: {result}")
        (text,) = tool.texts
        clear()
        if mode.startswith("iptables-"):
            # The proxy's restore ran after its start-up listing (which makes the empty tables exist);
            # the floor starts from that same kernel state, and times only the restore.
            for table in ("nat", "filter"):
                subprocess.run([f"{mode}-save", "-t", table], capture_output=True, check=True)
        with Stopwatch() as floor:
            for ipset_text in tool.ipset_texts:
                subprocess.run(["ipset", "restore"], input=ipset_text, text=True, check=True)
            subprocess.run(replay, input=text, text=True, check=True)
        fulls.append(full.timing)
        floors.append(floor.timing)
    # The kernel now holds exactly what the last proxy wrote; replace one endpoint of a middle Service.
    for k in range(repeat):
        mid = n // 2 + k
        eps = [_ip(mid * ENDPOINTS + j + 1, 128) for j in range(ENDPOINTS - 1)] + [_ip(n * ENDPOINTS + 1 + k, 128)]
        proxier.on_slice(endpoint_slice(f"s{mid}", eps, node_name="bench-node"))
        with Stopwatch() as change:
            result = proxier.sync_once()
        if result.full or result.changed != {f"default/s{mid}"} or result.recovered or proxier.need_full_sync:
            raise RuntimeError(f"{mode}: the partial sync failed: {result}")
        changes.append(change.timing)
    if writer is not None:
        writer.close()
    one_rule = None
    if mode.startswith("iptables-"):
        with Stopwatch() as bare:
            subprocess.run(replay, input=ONE_RULE, text=True, check=True)
        one_rule = bare.timing
        subprocess.run(replay, input="*nat\n-F TK-BENCH-ONE\n-X TK-BENCH-ONE\nCOMMIT\n", text=True, check=True)
    return Row(mode, n, _best(fulls), _best(floors), _best(changes), one_rule)


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="bench/proxy_sync.py", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--modes", default="iptables-nft,iptables-legacy,nftables")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs of each measurement")
    args = parser.parse_args(args_list)
    isolate(args_list)
    modes = args.modes.split(",")
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"host iptables backend: {detect_backend()}; {ENDPOINTS} endpoints per service; load {os.getloadavg()[0]:.1f}"
    )
    print("wall = elapsed; cpu = user+sys of the proxy and the tools it ran (steadier when the machine is busy)")
    head = f"{'mode':<16} {'services':>8} {'full s':>8} {'floor s':>8} {'wall ratio':>10} {'cpu ratio':>9}"
    print(f"{head} {'change ms':>10} {'change cpu ms':>13} {'1-rule ms':>9}  goals")
    ok = True
    out_of_reach: list[str] = []
    for mode in modes:
        for n in sizes:
            row = measure(mode, n, args.repeat)
            goal_ms = GOAL_CHANGE_MS["nftables" if mode == "nftables" else "iptables"]
            wall_ratio, cpu_ratio = row.ratio("wall"), row.ratio("cpu")
            met = wall_ratio <= 1.1 and (n < 10000 or row.change.wall * 1000 <= goal_ms)
            ok &= met
            sync = f"{row.full.wall:>8.2f} {row.floor.wall:>8.2f} {wall_ratio:>9.2f}x {cpu_ratio:>8.2f}x"
            print(
                f"{mode:<16} {n:>8} {sync} {row.change.wall * 1000:>10.1f} {row.change.cpu * 1000:>13.1f}"
                f" {'-' if row.one_rule is None else f'{row.one_rule.wall * 1000:.1f}':>9}"
                f"  <=1.1x, <={goal_ms:.0f} ms at 10k: {'met' if met else 'MISSED'}",
                flush=True,
            )
            if n >= 10000 and row.one_rule is not None and row.one_rule.wall * 1000 > goal_ms:
                out_of_reach.append(f"{mode} ({row.one_rule.wall * 1000:.0f} ms at {n})")
    if out_of_reach:
        print(
            f"out of reach: {', '.join(out_of_reach)}: a bare restore of one rule already costs more than the"
            " change goal (iptables-legacy-restore rewrites the whole table on any change); use the nft backend."
        )
    clear()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
