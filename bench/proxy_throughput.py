"""iptables vs IPVS vs nftables: what each proxy mode costs per new connection as services grow.

For each mode and each service count (default 1, 100, 1k, 5k, 10k; 10 endpoints each) one kernel,
one run: a node namespace holds the rules, a client namespace connects to the first and to the last
Service's ClusterIP through it, a backend namespace holds the 10 endpoint addresses. Printed and
written (CSV + PNG): full rule-sync time, one-endpoint-change sync time, new-connection rate and
latency p50/p99 to the first and the last service, and softirq CPU per connection.

How to read it: iptables walks KUBE-SERVICES rule by rule, so connections to the *last* service get
slower as services are added while connections to the first do not; IPVS and nftables look the
service up in a hash table / verdict map, so first and last stay alike at any size. The
"last/first" ratio per mode is therefore the number to look at: it is measured within one ruleset,
so the emulator's speed drift (±15–20 %, ENVIRONMENT.md) cancels out.

This machine's kernel has no ip_vs, so by default the measurement runs in the qemu kernel lab
(`tinykube lab kernel`); on a kernel with ip_vs (a Vagrant VM) it runs directly (`--direct`).
"""

from __future__ import annotations

import argparse
import csv
import functools
import ipaddress
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

MODES = ("iptables", "ipvs", "nftables")
DEFAULT_SIZES = (1, 100, 1000, 5000, 10000)
ENDPOINTS = 10
PORT, TARGET_PORT = 80, 8080
FIRST_CLUSTER_IP = ipaddress.IPv4Address("10.96.0.10")
NODE_IP, CLIENT_IP = "192.0.2.1", "192.0.2.2"
BACKEND_GW = "198.51.100.1"
BACKEND_IPS = tuple(f"198.51.100.{10 + i}" for i in range(ENDPOINTS))
ROW_MARKER = "PROXY-BENCH-ROW "


@dataclass(frozen=True)
class Row:
    mode: str
    services: int
    sync_s: float  # full sync of all services
    change_s: float  # sync after one endpoint of one service changed
    first_rate: float  # new connections/s to the first service
    last_rate: float  # ... and to the last one
    first_p50_ms: float
    last_p50_ms: float
    last_p99_ms: float
    softirq_us_per_conn: float  # softirq CPU time per connection (first and last service together)


def cluster_ip(i: int) -> str:
    return str(FIRST_CLUSTER_IP + i)


def api_objects(count: int, *, shift: int = 0) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Services svc-0… and one EndpointSlice each with the 10 backend addresses. `shift` moves the last
    service's endpoints by one address (the "one endpoint changed" case)."""
    services, slices = [], []
    for i in range(count):
        name = f"svc-{i}"
        services.append({
            "metadata": {"namespace": "bench", "name": name},
            "spec": {"type": "ClusterIP", "clusterIP": cluster_ip(i),
                     "ports": [{"name": "http", "port": PORT, "targetPort": TARGET_PORT, "protocol": "TCP"}]},
        })  # fmt: skip
        ips = BACKEND_IPS[1:] if shift and i == count - 1 else BACKEND_IPS
        slices.append({
            "metadata": {"namespace": "bench", "name": f"{name}-1", "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": TARGET_PORT, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}, "nodeName": "bench"} for ip in ips],
        })  # fmt: skip
    return services, slices


def desired_state(count: int, *, shift: int = 0) -> Any:
    from netproxy.model import DesiredState, merge_slices, service_ports, slice_endpoints

    services, slices = api_objects(count, shift=shift)
    keys = [f"bench/{s['metadata']['name']}" for s in services]
    return DesiredState(
        services={k: service_ports(s) for k, s in zip(keys, services, strict=True)},
        endpoints={k: merge_slices([slice_endpoints(e)]) for k, e in zip(keys, slices, strict=True)},
    )


def ratios(rows: Sequence[Row]) -> list[str]:
    """Human-readable ratios: per mode last/first connection rate at each size, and per size each mode's
    rate to the last service relative to iptables."""
    out = []
    by_key = {(r.mode, r.services): r for r in rows}
    for r in rows:
        rel = r.last_rate / r.first_rate if r.first_rate else 0.0
        line = f"{r.mode:>8} {r.services:>6} services: last/first rate {rel:5.2f}"
        base = by_key.get(("iptables", r.services))
        if base is not None and base.last_rate and r.mode != "iptables":
            line += f", last-service rate vs iptables {r.last_rate / base.last_rate:5.2f}x"
        out.append(line)
    return out


# --- the measuring side: runs where ip_vs exists, as root, in namespaces it makes ------------------------


def _sh(argv: Sequence[str], *, check: bool = True) -> str:
    return subprocess.run(list(argv), check=check, capture_output=True, text=True, timeout=600).stdout


def _softirq_jiffies() -> int:
    with open("/proc/stat") as f:
        return int(f.readline().split()[7])  # cpu user nice system idle iowait irq softirq


@contextmanager
def topology() -> Iterator[tuple[str, str]]:
    """(node, client) namespaces plus a backend host serving on its 10 addresses; removed afterwards."""
    tag = uuid.uuid4().hex[:6]
    node, client, backend = f"tkb-n-{tag}", f"tkb-c-{tag}", f"tkb-b-{tag}"
    made: list[str] = []
    server: subprocess.Popen[bytes] | None = None
    try:
        for ns in (node, client, backend):
            _sh(["ip", "netns", "add", ns])
            made.append(ns)
            _sh(["ip", "-n", ns, "link", "set", "lo", "up"])
        _sh(["ip", "-n", node, "link", "add", "to-client", "type", "veth", "peer", "name", "eth0", "netns", client])
        _sh(["ip", "-n", node, "link", "add", "to-backend", "type", "veth", "peer", "name", "eth0", "netns", backend])
        _sh(["ip", "-n", node, "addr", "add", f"{NODE_IP}/24", "dev", "to-client"])
        _sh(["ip", "-n", node, "addr", "add", f"{BACKEND_GW}/24", "dev", "to-backend"])
        _sh(["ip", "-n", client, "addr", "add", f"{CLIENT_IP}/24", "dev", "eth0"])
        for ip in BACKEND_IPS:
            _sh(["ip", "-n", backend, "addr", "add", f"{ip}/24", "dev", "eth0"])
        for ns, dev in ((node, "to-client"), (node, "to-backend"), (client, "eth0"), (backend, "eth0")):
            _sh(["ip", "-n", ns, "link", "set", dev, "up"])
        _sh(["ip", "-n", client, "route", "add", "default", "via", NODE_IP])
        _sh(["ip", "-n", backend, "route", "add", "default", "via", BACKEND_GW])
        _sh(["ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
        server = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                backend,
                sys.executable,
                "-m",
                "tinykube.lab.traffic",
                "serve",
                "backend",
                str(TARGET_PORT),
                "--lifetime",
                "7200",
            ]
        )
        time.sleep(1.0)
        yield node, client
    finally:
        if server is not None:
            server.kill()
            server.wait()
        for ns in made:
            _sh(["ip", "netns", "delete", ns], check=False)


def _make_backend(mode: str, iptables_backend: str) -> Any:
    from netproxy.config import ProxyConfig

    config = ProxyConfig(node_name="bench", node_ips=(NODE_IP,), localhost_nodeports=False)
    if mode == "iptables":
        # The iptables tool's nf_tables backend restores a kube-proxy-sized ruleset in time superlinear
        # in the chain count (>120 s at 2k services here, see bench/proxy_sync.py), which would keep the
        # large sizes out of reach; the per-packet cost measured here, a walk down KUBE-SERVICES, is the
        # same kind on both backends. `--iptables-backend nft` measures the other one.
        from netproxy.ipset import IpsetTool
        from netproxy.iptables.backend import IptablesBackend
        from netproxy.iptables.kernel import IptablesTools

        return IptablesBackend(IptablesTools(iptables_backend), config, apply_ipsets=IpsetTool().restore)
    from netproxy.backends import make_backend

    return make_backend(mode, config)


def _connect_pair(client: str, first: str, last: str, *, count: int, seconds: float) -> dict[str, Any]:
    """Connections to the first and the last Service, alternating in batches within one client run."""
    out = _sh(["ip", "netns", "exec", client, sys.executable, "-m", "tinykube.lab.traffic", "tcp", first, str(PORT),
               "--versus", last, "--count", str(2 * count), "--seconds", str(2 * seconds), "--stats"])  # fmt: skip
    stats: dict[str, Any] = json.loads(out)
    return stats


def measure_mode(
    mode: str, sizes: Sequence[int], *, count: int, seconds: float, iptables_backend: str = "legacy"
) -> Iterator[Row]:
    from tinykube.lab.nsthread import NetnsThread

    with topology() as (node, client), NetnsThread(f"/run/netns/{node}") as thread:
        backend = thread.call(lambda: _make_backend(mode, iptables_backend))
        previous = desired_state(0)
        for size in sizes:
            state = desired_state(size)
            t0 = time.perf_counter()
            thread.call(functools.partial(backend.sync, state, previous=previous, changed=None))
            sync_s = time.perf_counter() - t0
            changed = desired_state(size, shift=1)
            t0 = time.perf_counter()
            one = {f"bench/svc-{size - 1}"}
            thread.call(functools.partial(backend.sync, changed, previous=state, changed=one))
            change_s = time.perf_counter() - t0
            previous = changed
            soft0 = _softirq_jiffies()
            pair = _connect_pair(client, cluster_ip(0), cluster_ip(size - 1), count=count, seconds=seconds)
            soft_s = (_softirq_jiffies() - soft0) / os.sysconf("SC_CLK_TCK")
            first, last = pair["first"], pair["second"]
            yield Row(mode, size, round(sync_s, 4), round(change_s, 4), round(first["rate"], 1), round(last["rate"], 1),
                      round(first["p50_ms"], 3), round(last["p50_ms"], 3), round(last["p99_ms"], 3),
                      round(soft_s * 1e6 / max(1, first["ok"] + last["ok"]), 1))  # fmt: skip
        if hasattr(backend, "close"):
            thread.call(backend.close)


def run_inner(modes: Sequence[str], sizes: Sequence[int], *, count: int, seconds: float, iptables_backend: str) -> None:
    for mode in modes:
        for row in measure_mode(mode, sizes, count=count, seconds=seconds, iptables_backend=iptables_backend):
            print(ROW_MARKER + json.dumps(asdict(row)), flush=True)


# --- the reporting side ------------------------------------------------------------------------------


def parse_rows(output: str) -> list[Row]:
    return [Row(**json.loads(line[len(ROW_MARKER) :])) for line in output.splitlines() if line.startswith(ROW_MARKER)]


def read_csv(path: Path) -> list[Row]:
    with path.open(newline="") as f:
        return [Row(r["mode"], int(r["services"]), *(float(r[fl.name]) for fl in fields(Row)[2:]))
                for r in csv.DictReader(f)]  # fmt: skip


def write_csv(rows: Sequence[Row], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([fl.name for fl in fields(Row)])
        writer.writerows([list(asdict(r).values()) for r in rows])


def plot(rows: Sequence[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    panels = (
        (lambda r: r.last_rate / r.first_rate if r.first_rate else 0.0,
         "new-connection rate, last ÷ first Service\n(one ruleset, measured interleaved; 1.0 = no cost of position)"),
        (lambda r: r.softirq_us_per_conn, "softirq CPU per connection (µs)"),
        (lambda r: r.sync_s, "full rule sync (s)"),
    )  # fmt: skip
    for ax, (value, title) in zip(axes, panels, strict=True):
        for mode in MODES:
            pts = sorted((r.services, value(r)) for r in rows if r.mode == mode)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=mode)
        ax.set_xscale("log")
        ax.set_xlabel("services (10 endpoints each)")
        ax.set_title(title, fontsize=9)
        ax.grid(True, alpha=0.3)
    axes[0].legend()
    fig.suptitle("tinykube proxy modes, one kernel, one run")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tinykube bench proxy", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)))
    parser.add_argument("--count", type=int, default=1500, help="connections per measurement at most")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per measurement at most")
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    parser.add_argument("--iptables-backend", choices=("legacy", "nft"), default="legacy")
    parser.add_argument("--direct", action="store_true", help="measure on this kernel (it must have ip_vs)")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--from-csv", type=Path, help="only redraw the plot and ratios from an earlier CSV")
    parser.add_argument("--timeout", type=float, default=5400.0, help="seconds the kernel lab may take")
    args = parser.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    sizes = sorted(int(s) for s in args.sizes.split(",") if s)
    if unknown := set(modes) - set(MODES):
        parser.error(f"unknown modes: {', '.join(sorted(unknown))}")
    if args.from_csv:
        rows = read_csv(args.from_csv)
        plot(rows, args.from_csv.with_suffix(".png"))
        print("\n".join(ratios(rows)))
        return 0
    if args.inner or args.direct:
        if args.inner:
            run_inner(modes, sizes, count=args.count, seconds=args.seconds, iptables_backend=args.iptables_backend)
            return 0
        output_rows = [
            r
            for m in modes
            for r in measure_mode(
                m, sizes, count=args.count, seconds=args.seconds, iptables_backend=args.iptables_backend
            )
        ]
    else:
        from_guest = _run_in_kernel_lab(modes, sizes, args)
        if from_guest is None:
            return 2
        output_rows = from_guest
    args.out.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = args.out / "proxy_throughput.csv", args.out / "proxy_throughput.png"
    write_csv(output_rows, csv_path)
    plot(output_rows, png_path)
    for line in ratios(output_rows):
        print(line)
    print(f"wrote {csv_path} and {png_path}")
    return 0


def _run_in_kernel_lab(modes: Sequence[str], sizes: Sequence[int], args: argparse.Namespace) -> list[Row] | None:
    import dataclasses

    from tinykube.lab import kernel

    inner = [sys.executable, "-m", "bench.proxy_throughput", "--inner", "--modes", ",".join(modes),
             "--sizes", ",".join(map(str, sizes)), "--count", str(args.count),
             "--seconds", str(args.seconds), "--iptables-backend", args.iptables_backend]  # fmt: skip
    try:
        config = dataclasses.replace(kernel.find_kernel(), timeout=args.timeout, memory_mb=3072)
        result = kernel.run(
            inner, cwd=os.getcwd(), modules=kernel.NETWORK_MODULES, config=config, follow=sys.stderr.buffer
        )
    except kernel.LabError as err:
        print(f"kernel lab: {err}\n{err.console[-4000:]}", file=sys.stderr)
        return None
    rows = parse_rows(result.output)
    if result.exit_code != 0 or not rows:
        print(f"benchmark failed in the guest (exit {result.exit_code}):\n{result.output[-4000:]}", file=sys.stderr)
        return None
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
