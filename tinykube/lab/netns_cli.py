"""`tinykube lab up|down|status`: the netns lab's subcommands, for `tinykube.lab.main` to mount.

Run it only where changing the network is fine: inside your own `unshare --net --mount --pid --fork
--mount-proc` (see the README), where the whole lab dies with the shell. The lab itself only adds
namespaces, cgroups under its caller's, and one listening socket on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from tinykube.lab import netns
from tinykube.lab.netns_errors import NetLabError
from tinykube.lab.netns_interfaces import Daemons
from tinykube.lab.netns_plan import (
    API_PORT,
    DEFAULT_NAME,
    DEFAULT_POD_CIDR,
    DEFAULT_SERVICE_CIDR,
    DEFAULT_UNDERLAY,
    MODES,
    plan,
)

COMMANDS = ("up", "down", "status")
PROXY_MODES = ("iptables", "nftables", "ipvs")


def add_subcommands(subparsers: Any) -> None:
    """Add up/down/status to the `tinykube lab` subparsers (an argparse `_SubParsersAction`)."""
    up = subparsers.add_parser("up", help="start a control plane and N nodes, each node a network namespace")
    up.add_argument("--nodes", type=int, default=3, help="how many nodes (default 3)")
    up.add_argument("--mode", choices=MODES, default="static", help="pod routing between nodes (default static)")
    up.add_argument(
        "--proxy-mode",
        choices=PROXY_MODES,
        default="iptables",
        help="Service proxy backend (ipvs needs the ip_vs kernel module)",
    )
    up.add_argument("--name", default=DEFAULT_NAME, help="prefix of namespace and node names")
    up.add_argument("--underlay", default=DEFAULT_UNDERLAY, help="node network (the first address is the API server)")
    up.add_argument("--pod-cidr", default=DEFAULT_POD_CIDR, help="split into one /24 per node")
    up.add_argument("--service-cidr", default=DEFAULT_SERVICE_CIDR)
    up.add_argument("--api-port", type=int, default=API_PORT, help="127.0.0.1 port relayed to the API server (0: any)")
    up.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for every node to be Ready")
    up.add_argument(
        "--stand-ins",
        action="store_true",
        help="run stand-in processes instead of tinykube's daemons (tries the lab's network and supervision alone)",
    )
    down = subparsers.add_parser("down", help="stop the lab and remove everything it made")
    status = subparsers.add_parser("status", help="show the lab's nodes and processes (exit 1 if one has exited)")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    for p in (up, down, status):
        p.add_argument("--state-dir", default=netns.DEFAULT_STATE_DIR, help=f"default {netns.DEFAULT_STATE_DIR}")


def _daemons(args: argparse.Namespace) -> Daemons:
    if args.stand_ins:
        from tinykube.lab.netns_standin import StandinDaemons

        return StandinDaemons()
    from tinykube.lab.netns_daemons import TinykubeDaemons

    return TinykubeDaemons(proxy_mode=args.proxy_mode)


def _up(args: argparse.Namespace) -> int:
    lab = plan(
        args.nodes,
        name=args.name,
        mode=args.mode,
        underlay=args.underlay,
        pod_cidr=args.pod_cidr,
        service_cidr=args.service_cidr,
    )
    started = time.monotonic()
    state = netns.up(
        lab, state_dir=args.state_dir, daemons=_daemons(args), api_port=args.api_port, timeout=args.timeout
    )
    print(f"lab {lab.name}: {len(lab.nodes)} nodes up ({lab.mode} routing) in {time.monotonic() - started:.1f} s")
    print("  " + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in state.timings.items()))
    for node in lab.nodes:
        print(f"  {node.name:<16} {node.ip:<15} pods {node.pod_cidr}")
    if state.kubeconfig:
        print(f"  export KUBECONFIG={state.kubeconfig}   # API relayed from 127.0.0.1:{state.api_port}")
    print(f"  ip netns exec {lab.nodes[0].name} bash   # a shell on a node")
    print(f"  tinykube lab down --state-dir {args.state_dir}")
    return 0


def _status(args: argparse.Namespace) -> int:
    st = netns.status(args.state_dir)
    ready: dict[str, bool] = {}
    if st.kubeconfig:
        from tinykube.lab.netns_daemons import node_readiness

        ready = node_readiness(st.kubeconfig)
    if args.json:
        out = {
            "name": st.plan.name,
            "mode": st.plan.mode,
            "api": st.api,
            "kubeconfig": st.kubeconfig,
            "healthy": st.healthy,
            "readySeconds": st.ready_seconds,
            "timings": st.timings,
            "nodes": [
                {"name": n.name, "ip": n.ip, "podCIDR": n.pod_cidr, "ready": ready.get(n.name)} for n in st.plan.nodes
            ],
            "processes": [
                {"owner": r.owner, "role": r.role, "pid": r.pid, "running": alive, "log": r.log}
                for r, alive in st.processes
            ],
            "missingNetns": st.missing_netns,
        }
        print(json.dumps(out, indent=1))
        return 0 if st.healthy else 1
    print(f"lab {st.plan.name}: {st.plan.mode} routing, underlay {st.plan.underlay}, API {st.api}")
    if st.kubeconfig:
        print(f"kubeconfig {st.kubeconfig}")
    print(f"{'NODE':<16} {'IP':<15} {'POD CIDR':<18} READY")
    for node in st.plan.nodes:
        is_ready = ready.get(node.name)
        print(f"{node.name:<16} {node.ip:<15} {node.pod_cidr:<18} {'unknown' if is_ready is None else is_ready}")
    print(f"{'OWNER':<16} {'ROLE':<8} {'PID':>7}  STATE")
    for rec, alive in sorted(st.processes, key=lambda p: (p[0].owner, p[0].pid)):
        print(f"{rec.owner:<16} {rec.role:<8} {rec.pid:>7}  {'running' if alive else 'EXITED (see ' + rec.log + ')'}")
    for name in st.missing_netns:
        print(f"network namespace {name} is missing")
    return 0 if st.healthy else 1


def run(args: argparse.Namespace) -> int:
    """Run the subcommand in `args.lab` (one of COMMANDS)."""
    try:
        if args.lab == "up":
            return _up(args)
        if args.lab == "down":
            netns.down(args.state_dir)
            print(f"lab in {args.state_dir} removed")
            return 0
        return _status(args)
    except NetLabError as err:
        print(f"tinykube lab {args.lab}: {err}", file=sys.stderr)
        return 2


def main(argv: Sequence[str]) -> int:
    """`python -m tinykube.lab.netns_cli up|down|status …`, the same as `tinykube lab up|down|status`."""
    parser = argparse.ArgumentParser(prog="tinykube lab", description=__doc__)
    add_subcommands(parser.add_subparsers(dest="lab", required=True))
    return run(parser.parse_args(list(argv)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
