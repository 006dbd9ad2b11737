"""What the netns lab orchestrates, apart from how: the daemons to run (real ones or stand-ins) and the
directories a node's daemons see. `netns.up` drives any `Daemons`; `netns_daemons.TinykubeDaemons`
runs tinykube's, `netns_standin.StandinDaemons` runs stand-ins for testing the lab itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tinykube.lab.netns_plan import LabPlan, NodePlan

NETNS_DIR = "/run/netns"

# Node-private directories, bind-mounted over the paths tinykube and CNI plugins use by default.
NODE_BINDS: dict[str, str] = {
    "etc": "/etc/tinykube",
    "lib": "/var/lib/tinykube",
    "run": "/run/tinykube",
    "cni-conf": "/etc/cni/net.d",
    "cni-bin": "/opt/cni/bin",
    "cni-state": "/var/lib/cni",
    "pod-logs": "/var/log/pods",
    "netns": NETNS_DIR,
}


@dataclass(frozen=True)
class Launch:
    """One daemon to start, argv as it runs inside its namespace; or, with `oneshot`, a command that
    must finish successfully before the node's daemons start (e.g. `tinykube node join`)."""

    role: str
    argv: tuple[str, ...]
    oneshot: bool = False


@dataclass(frozen=True)
class NodeDirs:
    """A node's directories as the host sees them (`host`) and as its daemons see them (`inside`)."""

    root: Path
    logs: Path
    cgroup_pods: str  # cgroup path (relative to each hierarchy) for the node's pods

    def host(self, key: str) -> Path:
        return self.root / key

    @staticmethod
    def inside(key: str) -> str:
        return NODE_BINDS[key]


class Daemons(Protocol):
    """What runs in the lab: the real tinykube daemons, or stand-ins for testing the lab itself."""

    def control_plane(self, lab: LabPlan, cp_dir: Path) -> list[Launch]: ...

    def wait_control_plane(
        self, lab: LabPlan, cp_dir: Path, *, host_api: str, deadline: float, check: Callable[[], None]
    ) -> str:
        """Block until the control plane serves (calling `check`, which raises once a daemon died);
        return the host-side kubeconfig path ("" if none)."""
        ...

    def node_runtime(self, lab: LabPlan, node: NodePlan, dirs: NodeDirs) -> list[Launch]:
        """A node's daemons that need no API server; started while the control plane starts."""
        ...

    def node(self, lab: LabPlan, node: NodePlan, dirs: NodeDirs, cp_dir: Path) -> list[Launch]:
        """A node's daemons that talk to the API server; started once it is ready."""
        ...

    def wait_nodes(self, lab: LabPlan, kubeconfig: str, *, deadline: float, check: Callable[[], None]) -> None: ...
