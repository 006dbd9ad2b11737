"""Stand-in daemons for the netns lab: exercise namespaces, routes, the API relay, process supervision
and cleanup without the real control plane and node daemons (`tinykube lab up --stand-ins`).

Each stand-in answers on --port with its name (tinykube.lab.traffic's echo host), so a test can
tell which namespace it reached; `--leave-child` forks a grandchild in a new session that nobody records,
as a runtime's container would be, to prove `lab down` finds it through the lab's cgroups.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tinykube.lab import traffic
from tinykube.lab.netns_errors import StartError
from tinykube.lab.netns_interfaces import Launch, NodeDirs
from tinykube.lab.netns_plan import API_PORT, LabPlan, NodePlan

NODE_PORT = 10250
LIFETIME = 24 * 3600.0  # a stand-in lives as long as a lab might; `lab down` ends it


def _leave_child() -> None:
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            while True:
                time.sleep(3600)
        os._exit(0)


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m tinykube.lab.netns_standin", description=__doc__)
    p.add_argument("--name", required=True)
    p.add_argument("--port", type=int, help="TCP and UDP port to answer on")
    p.add_argument("--leave-child", action="store_true")
    args = p.parse_args(list(argv))
    if args.leave_child:
        _leave_child()
    if args.port:
        traffic.serve(args.name, args.port, LIFETIME)
    else:
        time.sleep(LIFETIME)
    return 0


class StandinDaemons:
    """Daemons for the lab that are stand-ins: a "server" answering on the API address, per node a
    "node" answering on the node address, a "cri" leaving an unrecorded child, an idle "proxy"."""

    def _argv(self, *args: str) -> tuple[str, ...]:
        return (sys.executable, "-m", "tinykube.lab.netns_standin", *args)

    def control_plane(self, lab: LabPlan, cp_dir: Path) -> list[Launch]:
        return [Launch("server", self._argv("--name", "controlplane", "--port", str(API_PORT)))]

    def wait_control_plane(
        self, lab: LabPlan, cp_dir: Path, *, host_api: str, deadline: float, check: Callable[[], None]
    ) -> str:
        host, _, port = host_api.rpartition(":")
        while True:
            check()
            if traffic.tcp_once(host, int(port), 1.0) == "controlplane":
                return ""
            if time.monotonic() >= deadline:
                raise StartError(f"stand-in control plane did not answer through {host_api}")
            time.sleep(0.02)

    def node_runtime(self, lab: LabPlan, node: NodePlan, dirs: NodeDirs) -> list[Launch]:
        return [Launch("cri", self._argv("--name", f"{node.name}-cri", "--leave-child"))]

    def node(self, lab: LabPlan, node: NodePlan, dirs: NodeDirs, cp_dir: Path) -> list[Launch]:
        return [
            Launch("node", self._argv("--name", node.name, "--port", str(NODE_PORT))),
            Launch("proxy", self._argv("--name", f"{node.name}-proxy")),
        ]

    def wait_nodes(self, lab: LabPlan, kubeconfig: str, *, deadline: float, check: Callable[[], None]) -> None:
        check()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
