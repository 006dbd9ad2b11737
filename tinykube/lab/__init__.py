"""`tinykube lab`: the qemu kernel lab (`kernel`), and multi-node labs (`up`, `down`, `status`)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence


def _kernel(args: argparse.Namespace) -> int:
    from tinykube.lab import kernel

    try:
        config = dataclasses.replace(kernel.find_kernel(), timeout=args.timeout, memory_mb=args.memory)
        result = kernel.run(args.command, modules=tuple(args.module), config=config)
    except kernel.LabError as err:
        print(f"tinykube lab kernel: {err}", file=sys.stderr)
        if err.console:
            print("--- guest console ---", file=sys.stderr)
            print(err.console, file=sys.stderr)
        return 2
    sys.stdout.write(result.output)
    print(f"[guest exit {result.exit_code} after {result.seconds:.1f} s]", file=sys.stderr)
    return result.exit_code


def main(argv: Sequence[str]) -> int:
    from tinykube.lab import netns_cli

    parser = argparse.ArgumentParser(prog="tinykube lab", description=__doc__)
    sub = parser.add_subparsers(dest="lab", required=True)
    netns_cli.add_subcommands(sub)
    k = sub.add_parser("kernel", help="run a command in a qemu guest with a stock Debian kernel (e.g. for IPVS)")
    k.add_argument("--module", "-m", action="append", default=[], help="kernel module to load first (repeatable)")
    k.add_argument("--timeout", type=float, default=300.0, help="seconds before the guest is killed")
    k.add_argument("--memory", type=int, default=2048, help="guest memory in MiB")
    k.add_argument("command", nargs=argparse.REMAINDER, help="command and arguments, run in the current directory")
    args = parser.parse_args(list(argv))
    if args.lab in netns_cli.COMMANDS:
        return netns_cli.run(args)
    if args.lab == "kernel":
        if args.command and args.command[0] == "--":
            args.command = args.command[1:]
        if not args.command:
            parser.error("kernel: a command is required")
        return _kernel(args)
    return 2
