"""`tinykube proxy`: the Service proxy daemon of one node (the kube-proxy of tinykube).

It waits until the Service and EndpointSlice informers have listed everything before its first sync:
syncing a half-known world would drop the rules of Services not yet seen, and a restart would then cut
working connections. Rules are left in place on exit for the same reason.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from controlplane.client import Informer, KubeClient
from controlplane.client.errors import ConfigError
from controlplane.resources import ENDPOINTSLICES, SERVICES
from netproxy.backends import BACKENDS, make_backend
from netproxy.config import ProxyConfig
from netproxy.conntrack import ConntrackTool
from netproxy.errors import NetproxyError
from netproxy.events import ApiEvents
from netproxy.healthcheck import HealthServer
from netproxy.proxier import Proxier

log = logging.getLogger("netproxy")
ROUTE_LOCALNET = "/proc/sys/net/ipv4/conf/all/route_localnet"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="tinykube proxy", description="Program Services into the kernel.")
    p.add_argument("--kubeconfig", default="/etc/tinykube/admin.kubeconfig")
    p.add_argument("--mode", choices=sorted(BACKENDS), default="iptables")
    p.add_argument("--node-name", default=socket.gethostname())
    p.add_argument("--node-ip", action="append", default=[], help="NodePort address (repeatable); default: all local")
    p.add_argument("--cluster-cidr", default=None, help="pod CIDR; ClusterIP traffic from outside it is SNATed")
    p.add_argument("--masquerade-all", action="store_true")
    p.add_argument("--no-localhost-nodeports", action="store_true", help="do not answer NodePorts on 127.0.0.1")
    p.add_argument(
        "--endpoint-chains-max",
        type=int,
        default=ProxyConfig.endpoint_chains_max,
        help="iptables mode: above this many endpoints, DNAT from KUBE-SVC-* chains instead of one KUBE-SEP-* "
        "chain per endpoint (each change then costs the kernel less; 0: never)",
    )
    p.add_argument("--min-sync-period", type=float, default=1.0, help="seconds between two syncs at most")
    p.add_argument("--full-sync-period", type=float, default=300.0, help="seconds between full syncs")
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(list(argv))


def config_from(args: argparse.Namespace) -> ProxyConfig:
    return ProxyConfig(
        node_name=args.node_name,
        node_ips=tuple(args.node_ip),
        cluster_cidr=args.cluster_cidr,
        masquerade_all=args.masquerade_all,
        localhost_nodeports=not args.no_localhost_nodeports,
        endpoint_chains_max=args.endpoint_chains_max,
    )


async def _run(args: argparse.Namespace) -> int:
    config = config_from(args)
    if config.localhost_nodeports:
        Path(ROUTE_LOCALNET).write_text("1\n")
    health = HealthServer()
    client = KubeClient.from_kubeconfig(args.kubeconfig, user_agent="tinykube-proxy")
    proxier = Proxier(
        make_backend(args.mode, config),
        config,
        conntrack=ConntrackTool(),
        events=ApiEvents(client, args.node_name),
        health=health,
        full_sync_period=args.full_sync_period,
    )
    services, slices = Informer(client, SERVICES), Informer(client, ENDPOINTSLICES)
    proxier.watch(services, slices)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await services.start()
        await slices.start()
        synced: asyncio.Future[Any] = asyncio.ensure_future(
            asyncio.gather(services.wait_for_sync(), slices.wait_for_sync())
        )
        stopped: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        await asyncio.wait([synced, stopped], return_when=asyncio.FIRST_COMPLETED)
        for fut in (synced, stopped):
            fut.cancel()
        await asyncio.gather(synced, stopped, return_exceptions=True)
        if stop.is_set():
            return 0  # stopped before the API server answered: the kernel keeps whatever it had
        log.info("informers synced; programming %s rules for node %s", args.mode, args.node_name)
        await proxier.run(stop, min_interval=args.min_sync_period)
    finally:
        await services.stop()
        await slices.stop()
        await health.close()
        await client.close()
    return 0


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        try:
            return asyncio.run(_run(args))
        except (NetproxyError, ConfigError) as err:  # an unusable kubeconfig or mode: say so, no traceback
            print(f"tinykube proxy: {err}", file=sys.stderr)
            return 2
    return 0
