"""The real daemons of a netns lab: `tinykube server` in the hub, `tinykube cri`, `node` and `proxy`
in every node. Node daemons run with tinykube's default paths, which the node's holder has
bind-mounted onto the node's own directories (see netns_interfaces.NODE_BINDS); the files the lab writes for
a node before it starts (kubeconfig, CNI plugins and conflist) go to those directories on the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tinykube.lab.netns_errors import StartError
from tinykube.lab.netns_interfaces import Launch, NodeDirs
from tinykube.lab.netns_plan import API_PORT, LabPlan, NodePlan

NODE_KUBECONFIG = "node.kubeconfig"
POLL = 0.1


def _tinykube(*args: str) -> tuple[str, ...]:
    return (sys.executable, "-m", "tinykube", *args)


def host_kubeconfig(src: Path, dst: Path, server: str) -> None:
    """Copy a kubeconfig with every cluster pointed at `server` (mode 0600: it holds a key)."""
    config: dict[str, Any] = yaml.safe_load(src.read_text())
    for cluster in config.get("clusters") or []:
        cluster["cluster"]["server"] = server
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)


def ready_nodes(nodes: list[dict[str, Any]]) -> set[str]:
    """Names of the Nodes whose Ready condition is True."""
    ready = set()
    for node in nodes:
        for cond in (node.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "Ready" and cond.get("status") == "True":
                ready.add(node["metadata"]["name"])
    return ready


def node_readiness(kubeconfig: str, *, timeout: float = 3.0) -> dict[str, bool]:
    """Ready per Node as the API server reports it (empty when it cannot be asked in time)."""
    from controlplane.client import KubeClient
    from controlplane.client.errors import ApiError
    from controlplane.resources import NODES

    async def ask() -> dict[str, bool]:
        async with KubeClient.from_kubeconfig(kubeconfig) as client:
            items = (await asyncio.wait_for(client.list(NODES), timeout))["items"]
        ready = ready_nodes(items)
        return {n["metadata"]["name"]: n["metadata"]["name"] in ready for n in items}

    try:
        return asyncio.run(ask())
    except (ApiError, OSError, TimeoutError):  # status still shows the processes
        return {}


class TinykubeDaemons:
    def __init__(self, *, proxy_mode: str = "iptables") -> None:
        self.proxy_mode = proxy_mode
        self._join_token: str | None = None

    def control_plane(self, lab: LabPlan, cp_dir: Path) -> list[Launch]:
        argv = _tinykube(
            "server",
            "--data-dir",
            str(cp_dir / "data"),
            "--listen",
            f"{lab.hub_ip}:{API_PORT}",
            "--advertise-address",
            lab.hub_ip,
            "--kubeconfig-out",
            str(cp_dir / "admin.kubeconfig"),
            "--service-cidr",
            lab.service_cidr,
        )
        return [Launch("server", argv)]

    def wait_control_plane(
        self, lab: LabPlan, cp_dir: Path, *, host_api: str, deadline: float, check: Callable[[], None]
    ) -> str:
        """Wait for the admin kubeconfig and for /readyz through the host relay; write the host's
        kubeconfig (server = the relay on 127.0.0.1) next to the state."""
        src, dst = cp_dir / "admin.kubeconfig", cp_dir.parent / "admin.kubeconfig"
        while not src.exists():
            check()
            if time.monotonic() >= deadline:
                raise StartError(f"the API server wrote no kubeconfig to {src}")
            time.sleep(POLL)
        host_kubeconfig(src, dst, f"https://{host_api}")
        asyncio.run(self._wait_ready(str(dst), deadline, check))
        return str(dst)

    async def _wait_ready(self, kubeconfig: str, deadline: float, check: Callable[[], None]) -> None:
        from controlplane.client import KubeClient

        async with KubeClient.from_kubeconfig(kubeconfig) as client:
            while True:
                check()
                with contextlib.suppress(Exception):
                    await client.request("GET", "/readyz")
                    return
                if time.monotonic() >= deadline:
                    raise StartError("the API server did not become ready (GET /readyz)")
                await asyncio.sleep(POLL)

    def _token(self, cp_dir: Path) -> str:
        """The join token, as an operator gets it (`tinykube server token create`), asked once."""
        if self._join_token is None:
            argv = _tinykube("server", "token", "create", "--data-dir", str(cp_dir / "data"))
            res = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
            if res.returncode != 0:
                raise StartError(f"no join token: {res.stderr.strip()}")
            self._join_token = res.stdout.strip()
        return self._join_token

    def node_runtime(self, lab: LabPlan, node: NodePlan, dirs: NodeDirs) -> list[Launch]:
        """The CNI agent (so plugin calls skip importing pyroute2, cni/README.md) and the runtime."""
        from cni.install import install

        agent_socket = f"{dirs.inside('run')}/cni.sock"
        install(dirs.host("cni-bin"), dirs.host("cni-conf"), pod_cidr=node.pod_cidr, agent_socket=agent_socket)
        agent = (sys.executable, "-m", "cni.agent", "--socket", agent_socket)
        cri = _tinykube(
            "cri",
            "--socket",
            f"{dirs.inside('run')}/cri.sock",
            "--root",
            f"{dirs.inside('lib')}/cri",
            "--cni-conf-dir",
            dirs.inside("cni-conf"),
            "--log-root",
            dirs.inside("pod-logs"),
            "--cgroup-root",
            dirs.cgroup_pods,
        )
        return [Launch("cni-agent", agent), Launch("cri", cri)]

    def node(self, lab: LabPlan, node: NodePlan, dirs: NodeDirs, cp_dir: Path) -> list[Launch]:
        # Each node joins like a Vagrant worker (vagrant/node.sh): the join token buys it a client
        # certificate for system:node:<name>, so no node holds admin credentials.
        kubeconfig = f"{dirs.inside('etc')}/{NODE_KUBECONFIG}"
        join = _tinykube(
            "node",
            "join",
            "--server",
            lab.api_url,
            "--token",
            self._token(cp_dir),
            "--node-name",
            node.name,
            "--kubeconfig-out",
            kubeconfig,
        )
        run, lib = dirs.inside("run"), dirs.inside("lib")
        noded = _tinykube(
            "node",
            "--kubeconfig",
            kubeconfig,
            "--cri-endpoint",
            f"unix://{run}/cri.sock",
            "--node-name",
            node.name,
            "--node-ip",
            node.ip,
            "--pod-cidr",
            node.pod_cidr,
            "--root",
            f"{lib}/node",
        )
        proxy = _tinykube(
            "proxy",
            "--kubeconfig",
            kubeconfig,
            "--mode",
            self.proxy_mode,
            "--node-name",
            node.name,
            "--node-ip",
            node.ip,
            "--cluster-cidr",
            lab.pod_cidr,
        )
        return [Launch("join", join, oneshot=True), Launch("node", noded), Launch("proxy", proxy)]

    def wait_nodes(self, lab: LabPlan, kubeconfig: str, *, deadline: float, check: Callable[[], None]) -> None:
        asyncio.run(self._wait_nodes(lab, kubeconfig, deadline, check))

    async def _wait_nodes(self, lab: LabPlan, kubeconfig: str, deadline: float, check: Callable[[], None]) -> None:
        from controlplane.client import KubeClient
        from controlplane.resources import NODES

        want = {n.name for n in lab.nodes}
        async with KubeClient.from_kubeconfig(kubeconfig) as client:
            while True:
                check()
                with contextlib.suppress(Exception):
                    if want <= ready_nodes((await client.list(NODES))["items"]):
                        return
                if time.monotonic() >= deadline:
                    raise StartError(
                        f"nodes not Ready in time: {', '.join(sorted(want))} (see the logs in the state dir)"
                    )
                await asyncio.sleep(POLL)
