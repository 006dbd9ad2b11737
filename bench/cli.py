"""`tinykube bench NAME [ARGS…]`: runs one benchmark module's `main(argv)`. Every benchmark prints its
figures as ratios against a reference measured in the same run (see each module's docstring)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

BENCHMARKS: dict[str, tuple[str, str]] = {
    "proxy": ("bench.proxy_throughput", "iptables vs IPVS vs nftables: connection rate, latency, sync time (plot)"),
    "sync": ("bench.proxy_sync", "proxy rule-sync time vs a bare iptables-restore / nft -f of the same rules"),
    "cni": ("bench.cni_add", "CNI ADD+DEL latency vs the reference bridge + host-local plugins"),
    "container": ("bench.container_start", "container create+start+stop+remove vs crun/runc"),
    "pods": ("bench.pod_startup", "kubectl apply to Running+Ready latency, p50/p99"),
    "api": ("bench.apiserver", "API server creates/s, watch latency, large lists"),
    "scheduler": ("bench.scheduler", "pods/s scheduling 5,000 pods on 1,000 hollow nodes"),
}


def usage() -> str:
    lines = ["usage: tinykube bench NAME [ARGS…]", "", "benchmarks:"]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in BENCHMARKS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    if not args or args[0] in ("-h", "--help") or args[0] not in BENCHMARKS:
        print(usage(), file=sys.stderr if args and args[0] not in ("-h", "--help") else sys.stdout)
        return 0 if args and args[0] in ("-h", "--help") else 2
    module_name = BENCHMARKS[args[0]][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name == module_name:
            print(f"tinykube bench {args[0]}: not built yet", file=sys.stderr)
            return 3
        raise
    result: int = module.main(args[1:])
    return result
