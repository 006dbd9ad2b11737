"""`tinykube server`: the control plane — API server, scheduler and controllers in one process."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from controlplane.apiserver.server import ServerConfig, serve
from controlplane.controllers.config import ControllerConfig
from controlplane.storage import StorageError


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def _cidr(value: str) -> str:
    try:
        net = ipaddress.ip_network(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err
    if net.num_addresses < 8:
        raise argparse.ArgumentTypeError(f"service CIDR {value} is too small")
    return value


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected seconds, got {value!r}") from err
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {value!r}")
    return seconds


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tinykube server",
        description=__doc__,
        epilog="`tinykube server token create [--data-dir D]` prints the node join token.",
    )
    p.add_argument("--data-dir", default="/var/lib/tinykube/controlplane", help="state, certificates")
    p.add_argument("--listen", type=_listen, default=("127.0.0.1", 6443), help="HOST:PORT (default 127.0.0.1:6443)")
    p.add_argument("--advertise-address", help="address clients and the kubernetes Service use (default: listen host)")
    p.add_argument("--kubeconfig-out", default="/etc/tinykube/admin.kubeconfig", help="where the admin kubeconfig goes")
    p.add_argument("--storage", choices=("sqlite", "etcd", "memory"), default="sqlite")
    p.add_argument("--etcd-endpoints", default="", help="comma-separated etcd URLs (with --storage etcd)")
    p.add_argument("--service-cidr", type=_cidr, default="10.96.0.0/16")
    p.add_argument("--tls-san", action="append", default=[], help="extra name or IP in the serving certificate")
    p.add_argument("--event-ttl", type=float, default=3600.0, help="seconds an Event is kept (default 3600)")
    p.add_argument("--compaction-interval", type=float, default=300.0, help="seconds between store compactions")
    p.add_argument("--no-controllers", action="store_true", help="run only the API server")
    p.add_argument(
        "--node-monitor-grace",
        type=_seconds,
        default=ControllerConfig.node_monitor_grace,
        help="seconds without a heartbeat before a node is Ready=Unknown (default 40)",
    )
    p.add_argument(
        "--pod-eviction-timeout",
        type=_seconds,
        default=float(ControllerConfig.default_toleration_seconds),
        help="seconds pods stay on a not-ready/unreachable node unless they tolerate it longer (default 300)",
    )
    p.add_argument(
        "--no-leader-elect", action="store_true", help="run the controllers without the leader-election Lease"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging and an access log line per request")
    return p


def token_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinykube server token", description="the node join token")
    sub = p.add_subparsers(dest="action", required=True)
    create = sub.add_parser("create", help="print the join token (`tinykube node join --token`)")
    create.add_argument("--data-dir", default="/var/lib/tinykube/controlplane", help="the server's --data-dir")
    return p


def token_main(argv: Sequence[str]) -> int:
    """`tinykube server token create`: the token the server made at its first start (kept in
    `<data-dir>/node-token` and as a bootstrap Secret, so it is valid while that Secret exists)."""
    args = token_parser().parse_args(list(argv))
    path = Path(args.data_dir) / "node-token"
    try:
        token = path.read_text().strip()
    except OSError as err:
        print(f"tinykube server token: {path}: {err.strerror} (has the server started once?)", file=sys.stderr)
        return 1
    print(token)
    return 0


def main(argv: Sequence[str]) -> int:
    if list(argv[:1]) == ["token"]:
        return token_main(argv[1:])
    args = parser().parse_args(list(argv))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    host, port = args.listen
    cfg = ServerConfig(
        data_dir=Path(args.data_dir),
        host=host,
        port=port,
        kubeconfig_out=Path(args.kubeconfig_out),
        storage=args.storage,
        etcd_endpoints=tuple(e for e in args.etcd_endpoints.split(",") if e),
        service_cidr=args.service_cidr,
        advertise_address=args.advertise_address,
        extra_sans=tuple(args.tls_san),
        event_ttl=args.event_ttl,
        compaction_interval=args.compaction_interval,
        access_log=args.verbose,
    )
    controllers = ControllerConfig(
        node_monitor_grace=args.node_monitor_grace,
        default_toleration_seconds=int(args.pod_eviction_timeout),
    )

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(
            cfg,
            stop=stop,
            controllers=not args.no_controllers,
            controller_config=controllers,
            leader_elect=not args.no_leader_elect,
        )

    try:
        asyncio.run(run())
    except (StorageError, OSError) as err:
        print(f"tinykube server: {err}", file=sys.stderr)
        return 1
    return 0
