"""`tinykube node`: the node agent. Registers the Node, keeps its Lease, runs the pods bound to it
through the CRI runtime at `--cri-endpoint`, runs static pods from `--manifests`, and serves the kubelet
paths (logs, exec, stats) on `--port`. SIGTERM/SIGINT stop noded and leave the pods running."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Sequence

from aiohttp import web

from controlplane.client import ApiError, Informer, KubeClient, load_kubeconfig, wait_ready
from controlplane.resources import PODS, SERVICES
from noded.backoff import Backoff
from noded.cri_client import GrpcRuntime
from noded.errors import NodedError, RuntimeUnavailable
from noded.events import EventRecorder
from noded.manager import PodManager
from noded.node import NodeAgent, NodeConfig, machine_facts
from noded.server import NodeServer, serving_context
from noded.static import StaticPods, is_mirror
from noded.types import RuntimeVersion
from noded.volumes import PodVolumes, SystemMounter
from noded.worker import NodeContext

log = logging.getLogger("noded")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tinykube node", description=__doc__)
    p.add_argument("--kubeconfig", default="/etc/tinykube/admin.kubeconfig")
    p.add_argument("--cri-endpoint", default="unix:///run/tinykube/cri.sock")
    p.add_argument("--node-name", default=socket.gethostname())
    p.add_argument("--node-ip", default="", help="InternalIP to publish (default: the first non-loopback IPv4)")
    p.add_argument("--pod-cidr", default="10.244.0.0/24")
    p.add_argument("--root", default="/var/lib/tinykube/node", help="pod volumes, serving certificate")
    p.add_argument("--log-root", default="/var/log/pods")
    p.add_argument("--port", type=int, default=10250)
    p.add_argument("--address", default="0.0.0.0", help="address the kubelet endpoint listens on")
    p.add_argument("--manifests", default="/etc/tinykube/manifests", help="static pod manifest directory")
    p.add_argument("--lease-period", type=float, default=10.0)
    p.add_argument("--status-period", type=float, default=30.0)
    p.add_argument("--relist-period", type=float, default=1.0, help="how often the runtime is relisted (PLEG)")
    p.add_argument("--backoff-initial", type=float, default=10.0)
    p.add_argument("--backoff-max", type=float, default=300.0)
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def default_node_ip() -> str:
    """The first global IPv4 address of this host, else loopback (a one-machine cluster)."""
    import psutil

    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                return str(a.address)
    return "127.0.0.1"


async def _kubernetes_env(api: KubeClient) -> dict[str, str]:
    """KUBERNETES_SERVICE_HOST/PORT, so in-cluster clients find the API server."""
    try:
        svc = await api.get(SERVICES, "kubernetes", "default")
    except ApiError:
        return {}
    ip = (svc.get("spec") or {}).get("clusterIP")
    ports = (svc.get("spec") or {}).get("ports") or []
    if not ip or not ports:
        return {}
    port = str(ports[0].get("port", 443))
    return {"KUBERNETES_SERVICE_HOST": ip, "KUBERNETES_SERVICE_PORT": port, "KUBERNETES_SERVICE_PORT_HTTPS": port}


async def _wait_runtime(runtime: GrpcRuntime, *, timeout: float) -> RuntimeVersion:
    """The runtime may still be starting (e.g. building its builtin images): retry until it answers."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await runtime.version()
        except RuntimeUnavailable:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)


async def run(args: argparse.Namespace, stop: asyncio.Event) -> int:
    api = KubeClient.from_kubeconfig(args.kubeconfig, user_agent=f"noded/{args.node_name}")
    runtime = GrpcRuntime(args.cri_endpoint)
    node_ip = args.node_ip or default_node_ip()
    # The cluster CA verifies the API server's client certificate when it proxies logs/exec to us.
    ca = load_kubeconfig(args.kubeconfig).ca_pem or b""
    try:
        await wait_ready(api, timeout=60)
        version = await _wait_runtime(runtime, timeout=60)
        log.info("runtime %s %s (CRI %s)", version.runtime_name, version.runtime_version, version.runtime_api_version)
        config = NodeConfig(
            name=args.node_name,
            pod_cidr=args.pod_cidr,
            node_ip=node_ip,
            port=args.port,
            lease_period=args.lease_period,
            status_period=args.status_period,
        )
        facts = machine_facts(args.root)
        agent = NodeAgent(api, runtime, config, facts)
        await agent.register()
        log.info("registered node %s (%s)", args.node_name, node_ip)
        ctx = NodeContext(
            api=api,
            runtime=runtime,
            node_name=args.node_name,
            volumes=PodVolumes(
                api, args.root, SystemMounter(), cluster_ca=ca, node_allocatable=agent.status["allocatable"]
            ),
            events=EventRecorder(api, args.node_name),
            log_root=args.log_root,
            host_ip=node_ip,
            backoff=Backoff(initial=args.backoff_initial, cap=args.backoff_max),
            base_env=await _kubernetes_env(api),
            node_allocatable=agent.status["allocatable"],
        )
        manager = PodManager(ctx)
        informer = Informer(api, PODS, field_selector=f"spec.nodeName={args.node_name}")
        informer.add_handler(
            on_add=lambda pod: None if is_mirror(pod) else manager.pod_changed(pod),
            on_update=lambda _old, pod: None if is_mirror(pod) else manager.pod_changed(pod),
            on_delete=lambda pod: None if is_mirror(pod) else manager.pod_deleted(pod),
        )
        await informer.start()
        await informer.wait_for_sync(timeout=60)
        static = StaticPods(api, manager, args.manifests, args.node_name, agent.uid)
        await static.sync()
        known = {p["metadata"]["uid"] for p in informer.list()} | set(static.pods)
        for uid in await manager.remove_orphans(known):
            log.info("cleaned up pod %s deleted while noded was down", uid)

        server = NodeServer(runtime, manager, args.log_root, args.node_name)
        runner = web.AppRunner(server.app(), access_log=None)
        await runner.setup()
        ssl_ctx = serving_context(os.path.join(args.root, "pki"), args.node_name, node_ip, ca or None)
        await web.TCPSite(runner, args.address, args.port, ssl_context=ssl_ctx).start()
        log.info("serving kubelet API on %s:%d", args.address, args.port)

        loops = [
            asyncio.create_task(agent.run(stop), name="heartbeat"),
            asyncio.create_task(manager.pleg(args.relist_period, stop), name="pleg"),
            asyncio.create_task(static.run(5.0, stop), name="static-pods"),
        ]
        await stop.wait()
        log.info("stopping (pods keep running)")
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        await informer.stop()
        await manager.stop()
        await ctx.events.flush()
        await runner.cleanup()
        return 0
    except (ApiError, NodedError, OSError) as err:
        log.error("noded failed: %s", err)
        return 1
    finally:
        await runtime.close()
        await api.close()


def main(argv: Sequence[str]) -> int:
    if list(argv[:1]) == ["join"]:  # `tinykube node join --server URL --token T …` (controlplane/join.py)
        from controlplane.join import main as join_main

        return join_main(argv[1:])
    args = parser().parse_args(list(argv))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s noded %(levelname)s %(name)s: %(message)s",
    )

    async def entry() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        with contextlib.suppress(asyncio.CancelledError):
            return await run(args, stop)
        return 1

    return asyncio.run(entry())
