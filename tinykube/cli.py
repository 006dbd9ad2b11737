"""`tinykube` console script: one subcommand per component, each also runnable on its own the way
containerd, kubelet and kube-proxy are. Subcommand modules are imported only when chosen, so
`tinykube --help` stays fast and a component that has not landed yet is reported, not crashed on."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tinykube import __version__


@dataclass(frozen=True)
class Subcommand:
    module: str
    help: str
    issue: int


SUBCOMMANDS: dict[str, Subcommand] = {
    "up": Subcommand(
        "tinykube.up", "run a whole single-node cluster on this machine (control plane, cri, node, proxy)", 8
    ),
    "server": Subcommand("controlplane.cli", "run the control plane: API server, scheduler and controllers", 6),
    "node": Subcommand("noded.cli", "run the node agent (the kubelet of tinykube); `node join` joins a cluster", 8),
    "cri": Subcommand("cri.cli", "run the CRI runtime daemon (gRPC runtime.v1 on a unix socket)", 4),
    "proxy": Subcommand("netproxy.cli", "run the Service proxy (iptables, nftables or ipvs)", 9),
    "image": Subcommand("cri.image_cli", "import, pull, list and remove images in the local content store", 4),
    "lab": Subcommand("tinykube.lab", "multi-node labs in network namespaces, and the qemu kernel lab", 11),
    "bench": Subcommand("bench.cli", "run a benchmark (proxy, sync, cni, pods, api, scheduler)", 10),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinykube",
        description="A Linux-native Kubernetes node runtime and small control plane.",
    )
    parser.add_argument("--version", action="version", version=f"tinykube {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, cmd in SUBCOMMANDS.items():
        sub.add_parser(name, help=cmd.help, add_help=False)
    return parser


def _load(name: str) -> Callable[[Sequence[str]], int] | None:
    cmd = SUBCOMMANDS[name]
    try:
        module = importlib.import_module(cmd.module)
    except ModuleNotFoundError as err:
        if err.name is not None and cmd.module.startswith(err.name):
            return None
        raise
    entry: Callable[[Sequence[str]], int] = module.main
    return entry


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    if not args or args[0] not in SUBCOMMANDS:
        parser.parse_args(args or ["--help"])
        return 2
    name, rest = args[0], args[1:]
    entry = _load(name)
    if entry is None:
        print(f"tinykube {name}: not built yet (see issue {SUBCOMMANDS[name].issue})", file=sys.stderr)
        return 3
    return entry(rest)
