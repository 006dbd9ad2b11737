"""`tinykube up --data-dir D`: a whole single-node cluster on this machine. Installs the CNI plugins and
network config, starts the control plane, the CRI runtime, the node agent and the Service proxy as
child processes (each is also runnable alone), waits until the node is Ready, prints how to use it,
and stays in the foreground until SIGINT/SIGTERM, then stops the children in reverse order.

A component whose package has not landed yet is reported and skipped; the rest still runs."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from controlplane.resources import NODES

STOP_TIMEOUT = 15.0
MAX_RESTARTS = 5


@dataclass(frozen=True)
class Layout:
    """Where everything of one cluster lives, all below the data dir unless overridden."""

    data_dir: Path
    kubeconfig: Path
    cri_socket: Path
    cni_socket: Path
    cni_bin_dir: Path
    cni_conf_dir: Path
    log_dir: Path
    pod_log_root: Path

    @classmethod
    def under(cls, data_dir: str, kubeconfig: str = "") -> Layout:
        d = Path(data_dir).resolve()
        return cls(
            data_dir=d,
            kubeconfig=Path(kubeconfig) if kubeconfig else d / "admin.kubeconfig",
            cri_socket=d / "run" / "cri.sock",
            cni_socket=d / "run" / "cni.sock",
            cni_bin_dir=d / "cni" / "bin",
            cni_conf_dir=d / "cni" / "net.d",
            log_dir=d / "logs",
            pod_log_root=d / "pods-logs",
        )


@dataclass
class Component:
    name: str
    module: str  # the package entry point; missing → the component is skipped
    argv: list[str]
    process: asyncio.subprocess.Process | None = None
    log_path: Path | None = None
    exited: bool = False
    restarts: int = 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinykube up", description=__doc__)
    p.add_argument("--data-dir", default="/var/lib/tinykube")
    p.add_argument("--kubeconfig-out", default="", help="default: DATA_DIR/admin.kubeconfig")
    p.add_argument("--listen", default="127.0.0.1:6443", help="API server HOST:PORT")
    p.add_argument("--node-name", default=socket.gethostname())
    p.add_argument("--node-ip", default="", help="the node's InternalIP (default: first non-loopback IPv4)")
    p.add_argument("--node-port", type=int, default=10250, help="node agent HTTPS port")
    p.add_argument("--pod-cidr", default="10.244.0.0/24")
    p.add_argument("--service-cidr", default="10.96.0.0/16")
    p.add_argument("--proxy-mode", default="iptables", choices=("iptables", "nftables", "ipvs"))
    p.add_argument("--ready-timeout", type=float, default=120.0)
    p.add_argument("--no-proxy", action="store_true", help="do not start the Service proxy")
    p.add_argument("--cgroup-root", default="tinykube", help="parent cgroup of the pods (cri --cgroup-root)")
    p.add_argument("--node-arg", action="append", default=[], help="extra argument for `tinykube node`")
    return p


def components(args: argparse.Namespace, layout: Layout) -> list[Component]:
    py = [sys.executable, "-m", "tinykube"]
    d = layout.data_dir
    node_ip = ["--node-ip", args.node_ip] if args.node_ip else []
    out = [
        # The resident CNI agent keeps pyroute2's ~0.25 s import off every pod's network set-up: the
        # plugin executables hand their request to it (cni/README.md), so it starts before cri.
        Component("cni-agent", "cni.agent", [sys.executable, "-m", "cni.agent", "--socket", str(layout.cni_socket)]),
        Component(
            "server",
            "controlplane.cli",
            [*py, "server", "--data-dir", str(d / "controlplane"), "--listen", args.listen,
             "--kubeconfig-out", str(layout.kubeconfig), "--service-cidr", args.service_cidr],
        ),
        Component(
            "cri",
            "cri.cli",
            [*py, "cri", "--socket", str(layout.cri_socket), "--root", str(d / "cri"),
             "--cni-conf-dir", str(layout.cni_conf_dir), "--cni-bin-dir", str(layout.cni_bin_dir),
             "--cni-bin-dir", "/usr/lib/cni", "--log-root", str(layout.pod_log_root),
             "--cgroup-root", args.cgroup_root],
        ),
        Component(
            "node",
            "noded.cli",
            [*py, "node", "--kubeconfig", str(layout.kubeconfig), "--cri-endpoint", f"unix://{layout.cri_socket}",
             "--node-name", args.node_name, "--pod-cidr", args.pod_cidr, "--root", str(d / "node"),
             "--log-root", str(layout.pod_log_root), "--port", str(args.node_port),
             "--manifests", str(d / "manifests"), *node_ip, *args.node_arg],
        ),
    ]  # fmt: skip
    if not args.no_proxy:
        out.append(
            Component(
                "proxy",
                "netproxy.cli",
                [*py, "proxy", "--kubeconfig", str(layout.kubeconfig), "--mode", args.proxy_mode,
                 "--node-name", args.node_name, "--cluster-cidr", args.pod_cidr,
                 *(["--node-ip", args.node_ip] if args.node_ip else [])],
            )
        )  # fmt: skip
    return out


def available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def install_cni(layout: Layout, pod_cidr: str) -> str:
    """The CNI plugins and conflist (idempotent); returns what happened, for the banner."""
    if not available("cni.install"):
        return "cni: not built yet (cni.install missing): pods will get no network"
    from cni.install import install

    conflist = install(
        layout.cni_bin_dir,
        layout.cni_conf_dir,
        pod_cidr=pod_cidr,
        agent_socket=str(layout.cni_socket),
        data_dir=str(layout.data_dir / "cni" / "networks"),
    )
    return f"cni: {conflist}"


async def _wait_file(path: Path, proc: asyncio.subprocess.Process, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return True
        if proc.returncode is not None:
            return False
        await asyncio.sleep(0.1)
    return False


async def wait_node_ready(kubeconfig: Path, node_name: str, timeout: float) -> bool:
    from controlplane.client import ApiError, KubeClient

    deadline = time.monotonic() + timeout
    async with KubeClient.from_kubeconfig(str(kubeconfig)) as api:
        while time.monotonic() < deadline:
            with contextlib.suppress(ApiError):
                node = await api.get(NODES, node_name)
                for cond in (node.get("status") or {}).get("conditions") or []:
                    if cond.get("type") == "Ready" and cond.get("status") == "True":
                        return True
            await asyncio.sleep(0.25)
    return False


def say(message: str) -> None:
    print(f"tinykube up: {message}", flush=True)


class Cluster:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.layout = Layout.under(args.data_dir, args.kubeconfig_out)
        self.components = components(args, self.layout)
        self.running: list[Component] = []

    async def start(self, comp: Component) -> bool:
        if not available(comp.module):
            say(f"{comp.name}: not built yet ({comp.module} is missing); running the rest without it")
            return False
        comp.log_path = self.layout.log_dir / f"{comp.name}.log"
        log = open(comp.log_path, "ab")  # noqa: SIM115 - handed to the child, closed right after
        try:
            comp.process = await asyncio.create_subprocess_exec(
                *comp.argv,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,  # our SIGINT (Ctrl-C) reaches them only through stop()
            )
        finally:
            log.close()
        self.running.append(comp)
        say(f"{comp.name}: started (pid {comp.process.pid}, log {comp.log_path})")
        return True

    async def up(self) -> int:
        layout = self.layout
        for d in (layout.data_dir, layout.log_dir, layout.cri_socket.parent, layout.pod_log_root):
            d.mkdir(parents=True, exist_ok=True)
        (layout.data_dir / "manifests").mkdir(exist_ok=True)
        say(install_cni(layout, self.args.pod_cidr))
        by_name = {c.name: c for c in self.components}
        server_up = await self.start(by_name["server"])
        if server_up:
            proc = by_name["server"].process
            assert proc is not None
            if not await _wait_file(layout.kubeconfig, proc, 60):
                say(f"server did not come up; see {by_name['server'].log_path}")
                return 1
        cri_up = await self.start(by_name["cri"])
        if cri_up:
            proc = by_name["cri"].process
            assert proc is not None
            if not await _wait_file(layout.cri_socket, proc, 120):
                say(f"cri did not come up; see {by_name['cri'].log_path}")
                return 1
        node_up = server_up and cri_up and await self.start(by_name["node"])
        if "proxy" in by_name and server_up:
            await self.start(by_name["proxy"])
        if node_up:
            if await wait_node_ready(layout.kubeconfig, self.args.node_name, self.args.ready_timeout):
                say(f"node {self.args.node_name} is Ready")
            else:
                say(f"node {self.args.node_name} did not become Ready; see {by_name['node'].log_path}")
        if server_up:
            say(f"kubeconfig: {layout.kubeconfig}")
            print(f"\n    export KUBECONFIG={layout.kubeconfig}; kubectl get nodes\n", flush=True)
        return 0

    async def watch(self, stop: asyncio.Event) -> None:
        """Restart a child that dies (like a service manager would), at most MAX_RESTARTS times each;
        a restarted noded or cri adopts the pods that kept running meanwhile."""
        while not stop.is_set():
            for comp in list(self.running):
                proc = comp.process
                if proc is None or proc.returncode is None or comp.exited:
                    continue
                if comp.restarts >= MAX_RESTARTS:
                    comp.exited = True
                    say(f"{comp.name} keeps exiting ({proc.returncode}); giving up, see {comp.log_path}")
                    continue
                comp.restarts += 1
                say(f"{comp.name} exited with {proc.returncode}; restarting (see {comp.log_path})")
                self.running.remove(comp)
                await self.start(comp)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    await stop.wait()

    async def stop(self) -> None:
        """SIGTERM in reverse start order, SIGKILL after STOP_TIMEOUT."""
        for comp in reversed(self.running):
            proc = comp.process
            if proc is None or proc.returncode is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(STOP_TIMEOUT):
                    await proc.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            say(f"{comp.name} stopped")


async def _main(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    cluster = Cluster(args)
    try:
        rc = await cluster.up()
        if rc == 0:
            say("running; Ctrl-C stops the cluster (pods stay on disk and are adopted at the next `up`)")
            await cluster.watch(stop)
        return rc
    finally:
        await cluster.stop()


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(list(argv))
    return asyncio.run(_main(args))
